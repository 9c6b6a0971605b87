"""Secrets and ConfigMaps on the Kubernetes backend: applied to the cluster as they are (before
they are stored, so a cluster that refuses one or cannot be reached stores nothing), and deleted
from it with them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from rayservice.api.app import create_app
from rayservice.kubeapi.fake import FakeKubernetesApi
from rayservice.kubeapi.mirror import ConfigMirror
from rayservice.kubernetes.kinds import CONFIG_MAP, SECRET
from rayservice.planner.change import running_alone
from rayservice.providers.fake import FakeProvider
from rayservice.spec.events import ObjectKind
from rayservice.spec.manifest import RayService
from rayservice.spec.references import as_written
from rayservice.spec.service_exposure import ExposureSettings
from rayservice.spec.vocabulary import KIND, Backend
from rayservice.store.sqlite import SqliteStore
from tests.unit.test_config_objects import (
    CORE,
    LOCAL_CALLER,
    SERVICE_PATH,
    b64,
    config_map,
    put,
    secret,
    service_taking_password,
)


@pytest.fixture
def cluster() -> FakeKubernetesApi:
    return FakeKubernetesApi()


@pytest.fixture
def client(tmp_path: Path, cluster: FakeKubernetesApi) -> Iterator[tuple[TestClient, SqliteStore]]:
    store = SqliteStore(tmp_path / "store.db")
    app = create_app(
        store,
        FakeProvider(clock=lambda: 0.0),
        tmp_path / "p",
        lambda: None,
        exposure=ExposureSettings(backend=Backend.KUBERNETES),
        mirror=ConfigMirror(cluster, "alice-laptop"),
    )
    with TestClient(app, client=LOCAL_CALLER) as test_client:
        yield test_client, store


def test_a_secret_and_a_config_map_go_to_the_cluster_as_they_are(
    client: tuple[TestClient, SqliteStore], cluster: FakeKubernetesApi
) -> None:
    api, _ = client
    document = secret(stringData={"password": "hunter2"})
    document["metadata"]["labels"] = {"team": "a"}

    assert put(api, document, f"{CORE}/secrets/redis-pw").status_code == 200
    assert (
        put(api, config_map(data={"mode": "fast"}), f"{CORE}/configmaps/settings").status_code
        == 200
    )

    applied = cluster.get(SECRET, "default", "redis-pw")
    assert applied is not None
    assert applied["data"] == {"password": b64("hunter2")}
    assert applied["metadata"]["labels"] == {
        "team": "a",
        "app.kubernetes.io/managed-by": "rayservice",
        "rayservice.io/controller": "alice-laptop",
    }
    settings = cluster.get(CONFIG_MAP, "default", "settings")
    assert settings is not None and settings["data"] == {"mode": "fast"}


def test_a_deleted_secret_leaves_the_cluster_too(
    client: tuple[TestClient, SqliteStore], cluster: FakeKubernetesApi
) -> None:
    api, _ = client
    put(api, secret(stringData={"password": "hunter2"}), f"{CORE}/secrets/redis-pw")

    assert api.delete(f"{CORE}/secrets/redis-pw").status_code == 200

    assert cluster.get(SECRET, "default", "redis-pw") is None


def test_an_unreachable_cluster_stores_nothing(
    client: tuple[TestClient, SqliteStore], cluster: FakeKubernetesApi
) -> None:
    api, store = client
    cluster.reachable = False

    answer = put(api, secret(stringData={"password": "hunter2"}), f"{CORE}/secrets/redis-pw")

    assert answer.status_code == 503
    assert "cannot be reached" in answer.text
    assert store.get(ObjectKind.SECRET, "default", "redis-pw") is None


def test_a_secret_someone_else_made_there_is_neither_taken_nor_deleted(
    client: tuple[TestClient, SqliteStore], cluster: FakeKubernetesApi
) -> None:
    api, store = client
    theirs = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "redis-pw", "namespace": "default"},
        "data": {"k": b64("x")},
    }
    cluster.apply(theirs)

    answer = put(api, secret(stringData={"password": "hunter2"}), f"{CORE}/secrets/redis-pw")

    assert answer.status_code == 400
    assert "not this controller's" in answer.text
    assert store.get(ObjectKind.SECRET, "default", "redis-pw") is None
    kept = cluster.get(SECRET, "default", "redis-pw")
    assert kept is not None and kept["data"] == {"k": b64("x")}


def test_on_kubernetes_a_changed_secret_makes_no_new_cluster_and_says_nothing(
    client: tuple[TestClient, SqliteStore],
) -> None:
    api, store = client
    path = f"{CORE}/secrets/redis-pw"
    put(api, secret(stringData={"password": "a"}), path)
    service = service_taking_password()
    assert put(api, service, SERVICE_PATH).status_code == 200
    running = store.get(KIND, "default", "rayservice-sample")
    assert running is not None
    record = running_alone(
        RayService.model_validate(running.manifest),
        as_written(RayService.model_validate(running.manifest), {}),
    )
    store.write_record(KIND, "default", "rayservice-sample", record.model_dump(mode="json"))

    rotated = put(api, secret(stringData={"password": "b"}), path)
    preview = put(api, service, SERVICE_PATH, dryRun="All")

    assert rotated.headers.get_list("warning") == []  # the pods read it when they start
    assert preview.json()["kind"] == "no-op"  # the same spec: nothing to do there


def test_on_kubernetes_a_secret_only_the_cluster_has_is_there_for_the_pods(
    client: tuple[TestClient, SqliteStore], cluster: FakeKubernetesApi
) -> None:
    api, _ = client
    theirs = secret(data={"password": b64("hunter2")})  # made there by kubectl, say
    cluster.apply({**theirs, "metadata": {**theirs["metadata"], "namespace": "default"}})

    answer = put(api, service_taking_password(), SERVICE_PATH)

    assert answer.status_code == 200
    assert answer.headers.get_list("warning") == []


def test_on_kubernetes_a_secret_nobody_has_is_a_warning_saying_the_pods_wait(
    client: tuple[TestClient, SqliteStore], cluster: FakeKubernetesApi
) -> None:
    api, _ = client
    other = config_map(data={"mode": "fast"})  # the cluster has other objects, not that one
    cluster.apply({**other, "metadata": {**other["metadata"], "namespace": "default"}})

    answer = put(api, service_taking_password(), SERVICE_PATH)

    [warning] = answer.headers.get_list("warning")
    assert "Secret default/redis-pw not found" in warning
    assert "neither rayservice nor the Kubernetes cluster has it: its pods wait for it" in warning


def test_on_kubernetes_a_cluster_out_of_reach_leaves_the_warning_unsure(
    client: tuple[TestClient, SqliteStore], cluster: FakeKubernetesApi
) -> None:
    api, _ = client
    cluster.reachable = False

    answer = put(api, service_taking_password(), SERVICE_PATH)

    [warning] = answer.headers.get_list("warning")
    assert "unless the Kubernetes cluster has, its pods wait for it" in warning


def test_the_values_an_environment_would_take_from_the_clusters_objects(
    cluster: FakeKubernetesApi,
) -> None:
    mirror = ConfigMirror(cluster, "alice-laptop")
    made = secret(data={"password": b64("hunter2")})
    cluster.apply({**made, "metadata": {**made["metadata"], "namespace": "default"}})
    settings = config_map(data={"mode": "fast"})
    settings["binaryData"] = {"blob": b64("\x00\x01")}
    cluster.apply({**settings, "metadata": {**settings["metadata"], "namespace": "default"}})

    broken = secret(data={"password": "not base64!"})
    broken["metadata"] = {"name": "broken", "namespace": "default"}
    cluster.apply(broken)

    assert mirror.values("Secret", "default", "redis-pw") == {"password": b"hunter2"}
    assert mirror.values("ConfigMap", "default", "settings") == {"mode": b"fast"}  # no files
    assert mirror.values("Secret", "default", "broken") == {"password": b""}
    assert mirror.values("Secret", "default", "nowhere") is None
