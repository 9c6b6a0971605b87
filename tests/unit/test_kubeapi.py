"""The KubernetesApi, the same contract for the lightkube client (against an emulated API server
on loopback, see tests/kube_emulator.py) and for the fake the unit tests use."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from rayservice.kubeapi.base import (
    KubernetesApi,
    KubernetesConflict,
    KubernetesRefused,
    KubernetesUnavailable,
)
from rayservice.kubeapi.fake import FakeKubernetesApi
from rayservice.kubeapi.lightkube_api import LightkubeApi
from rayservice.kubeapi.preflight import cluster_problems
from rayservice.kubernetes.kinds import POD, RAY_CLUSTER, RAY_CLUSTER_CRD, SERVICE
from rayservice.serve_client.dashboard import DashboardServeClient
from tests.kube_emulator import ApiServer, RunningApiServer


@dataclass
class Cluster:
    """An API to test, and the knobs of the cluster behind it."""

    api: KubernetesApi
    deny: Any  # (verb, resource) -> None
    add_crd: Any  # name -> None


@pytest.fixture(scope="module")
def emulated() -> Iterator[RunningApiServer]:
    running = RunningApiServer()
    yield running
    running.stop()


@pytest.fixture(params=["fake", "lightkube"])
def cluster(
    request: pytest.FixtureRequest, tmp_path: Path, emulated: RunningApiServer
) -> Iterator[Cluster]:
    if request.param == "fake":
        fake = FakeKubernetesApi()
        fake.crds.clear()
        yield Cluster(fake, fake.denied.add, fake.crds.add)
        return
    server = emulated.server
    assert server is not None
    server.denied.clear()
    server.crds.clear()
    server.objects.clear()
    config = tmp_path / "kubeconfig"
    config.write_text(yaml.safe_dump(emulated.kubeconfig()))
    yield Cluster(LightkubeApi(config), server.denied.add, server.crds.add)


def ray_cluster(name: str, replicas: int = 1, **labels: str) -> dict[str, Any]:
    return {
        "apiVersion": "ray.io/v1",
        "kind": "RayCluster",
        "metadata": {"name": name, "namespace": "team", "labels": {"owner": "svc", **labels}},
        "spec": {"workerGroupSpecs": [{"groupName": "small", "replicas": replicas}]},
    }


def test_apply_creates_with_server_set_metadata_then_changes_in_place(cluster: Cluster) -> None:
    created = cluster.api.apply(ray_cluster("a"))
    changed = cluster.api.apply(ray_cluster("a", replicas=3))

    assert created["metadata"]["uid"] == changed["metadata"]["uid"]
    assert created["metadata"]["resourceVersion"] != changed["metadata"]["resourceVersion"]
    found = cluster.api.get(RAY_CLUSTER, "team", "a")
    assert found is not None
    assert found["spec"]["workerGroupSpecs"][0]["replicas"] == 3


def test_an_apply_naming_the_version_it_read_fails_once_another_write_came_between(
    cluster: Cluster,
) -> None:
    read = cluster.api.apply(ray_cluster("a"))
    ours = ray_cluster("a", replicas=2)
    ours["metadata"]["resourceVersion"] = read["metadata"]["resourceVersion"]
    cluster.api.apply(ray_cluster("a", replicas=5))  # someone else's write

    with pytest.raises(KubernetesConflict, match="409"):
        cluster.api.apply(ours)

    found = cluster.api.get(RAY_CLUSTER, "team", "a")
    assert found is not None
    assert found["spec"]["workerGroupSpecs"][0]["replicas"] == 5  # theirs stands
    ours["metadata"]["resourceVersion"] = found["metadata"]["resourceVersion"]
    cluster.api.apply(ours)  # read again, it passes
    found = cluster.api.get(RAY_CLUSTER, "team", "a")
    assert found is not None
    assert found["spec"]["workerGroupSpecs"][0]["replicas"] == 2


def test_get_of_a_missing_object_is_none_and_delete_is_idempotent(cluster: Cluster) -> None:
    cluster.api.apply(ray_cluster("a"))

    cluster.api.delete(RAY_CLUSTER, "team", "a")
    cluster.api.delete(RAY_CLUSTER, "team", "a")

    assert cluster.api.get(RAY_CLUSTER, "team", "a") is None


def test_list_selects_by_every_label_given_within_the_namespace(cluster: Cluster) -> None:
    cluster.api.apply(ray_cluster("a", role="active"))
    cluster.api.apply(ray_cluster("b", role="pending"))
    elsewhere = ray_cluster("c", role="active")
    elsewhere["metadata"]["namespace"] = "other"
    cluster.api.apply(elsewhere)

    def names(**labels: str) -> list[str]:
        return sorted(
            o["metadata"]["name"] for o in cluster.api.select(RAY_CLUSTER, "team", labels)
        )

    assert names() == ["a", "b"]
    assert names(owner="svc", role="active") == ["a"]
    assert names(owner="nobody") == []


def test_labels_set_on_a_pod_keep_its_other_labels(cluster: Cluster) -> None:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "head", "namespace": "team", "labels": {"ray.io/cluster": "a"}},
    }
    cluster.api.apply(pod)  # as KubeRay would create it

    cluster.api.set_labels(POD, "team", "head", {"ray.io/serve": "true"})

    found = cluster.api.get(POD, "team", "head")
    assert found is not None
    assert found["metadata"]["labels"] == {"ray.io/cluster": "a", "ray.io/serve": "true"}


def test_missing_permissions_name_the_verb_the_resource_and_why(cluster: Cluster) -> None:
    assert cluster.api.missing_permissions("team") == []

    cluster.deny(("patch", "pods"))
    cluster.deny(("get", "services/proxy"))

    assert cluster.api.missing_permissions("team") == [
        "patch pods (pods and the head's serve label)",
        "get services/proxy (Ray's dashboard through the API server)",
    ]


def test_a_crd_is_installed_or_not(cluster: Cluster) -> None:
    assert not cluster.api.crd_installed(RAY_CLUSTER_CRD)

    cluster.add_crd(RAY_CLUSTER_CRD)

    assert cluster.api.crd_installed(RAY_CLUSTER_CRD)


def test_an_object_of_an_unknown_kind_is_refused_before_anything_is_sent(cluster: Cluster) -> None:
    with pytest.raises(ValueError, match="not a kind rayservice makes"):
        cluster.api.apply({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {}})


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def test_an_unreachable_api_server_is_worth_trying_again(
    tmp_path: Path, emulated: RunningApiServer
) -> None:
    config = emulated.kubeconfig()
    config["clusters"][0]["cluster"]["server"] = f"http://127.0.0.1:{free_port()}"
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(config))

    with pytest.raises(KubernetesUnavailable, match="cannot be reached"):
        LightkubeApi(path).get(SERVICE, "team", "svc-serve-svc")


def test_a_missing_kubeconfig_or_context_is_refused_saying_which(
    tmp_path: Path, emulated: RunningApiServer
) -> None:
    with pytest.raises(KubernetesRefused, match="nowhere"):
        LightkubeApi(tmp_path / "nowhere")
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(emulated.kubeconfig()))
    with pytest.raises(KubernetesRefused, match="'staging' not found"):
        LightkubeApi(path, context="staging")


def test_a_cluster_ready_for_rayservice_has_no_problems(cluster: Cluster) -> None:
    cluster.add_crd(RAY_CLUSTER_CRD)

    assert cluster_problems(cluster.api, "team") == []


def test_a_missing_crd_and_permissions_say_what_to_install_and_grant(cluster: Cluster) -> None:
    cluster.deny(("create", "rayclusters"))

    crd, permissions = cluster_problems(cluster.api, "team")

    assert "rayclusters.ray.io" in crd and "helm install kuberay-operator" in crd
    assert "create rayclusters (one RayCluster per cluster)" in permissions
    assert "deploy/rbac.yaml" in permissions


def pod(name: str, namespace: str = "team") -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": namespace}}


@pytest.fixture
def logs_and_answers(cluster: Cluster, emulated: RunningApiServer) -> tuple[Any, Any]:
    """Where the test writes pods' logs and proxy answers, for the API under test."""
    if isinstance(cluster.api, FakeKubernetesApi):
        return cluster.api.logs, cluster.api.answers
    assert emulated.server is not None
    return emulated.server.logs, emulated.server.answers


def test_a_pods_last_lines_of_one_container(
    cluster: Cluster, logs_and_answers: tuple[Any, Any]
) -> None:
    logs, _ = logs_and_answers
    cluster.api.apply(pod("head"))
    logs["team", "head", "ray-head"] = "one\ntwo\nthree\n"

    assert cluster.api.pod_logs("team", "head", "ray-head", 2) == "two\nthree\n"


def test_what_a_pod_answers_through_the_api_server(
    cluster: Cluster, logs_and_answers: tuple[Any, Any]
) -> None:
    _, answers = logs_and_answers
    answers["team", "head", 8000, "/-/healthz"] = "success"

    assert cluster.api.proxy_get("team", "head", 8000, "/-/healthz") == "success"
    assert cluster.api.proxy_get("team", "head", 8001, "/-/healthz") is None


def test_selecting_across_namespaces(cluster: Cluster) -> None:
    cluster.api.apply(ray_cluster("a"))
    elsewhere = ray_cluster("b")
    elsewhere["metadata"]["namespace"] = "other"
    cluster.api.apply(elsewhere)

    found = cluster.api.select(RAY_CLUSTER, None, {"owner": "svc"})

    assert sorted((o["metadata"]["namespace"], o["metadata"]["name"]) for o in found) == [
        ("other", "b"),
        ("team", "a"),
    ]


def test_apply_drops_what_it_stopped_sending_and_keeps_others_labels(cluster: Cluster) -> None:
    first = ray_cluster("a")
    first["spec"]["workerGroupSpecs"][0]["scaleStrategy"] = {"workersToDelete": ["pod-1"]}
    cluster.api.apply(first)
    cluster.api.set_labels(RAY_CLUSTER, "team", "a", {"someone-else": "x"})

    cluster.api.apply(ray_cluster("a"))

    found = cluster.api.get(RAY_CLUSTER, "team", "a")
    assert found is not None
    assert "scaleStrategy" not in found["spec"]["workerGroupSpecs"][0]
    assert found["metadata"]["labels"] == {"owner": "svc", "someone-else": "x"}


def lightkube_on(emulated: RunningApiServer, tmp_path: Path) -> tuple[LightkubeApi, ApiServer]:
    """lightkube with a kubeconfig of the emulated API server, and that server."""
    config = tmp_path / "kubeconfig"
    config.write_text(yaml.safe_dump(emulated.kubeconfig()))
    assert emulated.server is not None
    return LightkubeApi(config), emulated.server


def test_rays_dashboard_is_reached_through_the_api_servers_service_proxy(
    emulated: RunningApiServer, tmp_path: Path
) -> None:
    api, server = lightkube_on(emulated, tmp_path)
    server.proxied.clear()
    url = api.service_url("team", "c-head-svc", "8265")
    applications = ("team", "c-head-svc", "8265", "GET", "/api/serve/applications/")
    server.service_answers[applications] = {"applications": {}, "proxies": {}}
    server.service_answers[(*applications[:3], "PUT", applications[4])] = {}
    serve = DashboardServeClient(http=api.http)

    serve.deploy(url, "ray-token", {"applications": []})
    state = serve.status(url, "ray-token")

    method, path, sent_headers, body = server.proxied[0]
    headers = {key.lower(): value for key, value in sent_headers.items()}
    assert (method, path, body) == ("PUT", "/api/serve/applications/", {"applications": []})
    assert headers["x-ray-authorization"] == "Bearer ray-token"
    assert headers["authorization"] == "Bearer unchecked"  # the kubeconfig's, for the API server
    assert state.apps == ()


def test_a_kind_with_no_object_yet_lists_empty(cluster: Cluster) -> None:
    assert cluster.api.select(RAY_CLUSTER, "team") == []
    assert cluster.api.select(RAY_CLUSTER, None) == []


def test_a_dashboard_without_ray_token_auth_gets_no_token(
    emulated: RunningApiServer, tmp_path: Path
) -> None:
    api, server = lightkube_on(emulated, tmp_path)
    server.proxied.clear()
    server.service_answers["team", "c-head-svc", "8265", "PUT", "/api/serve/applications/"] = {}

    DashboardServeClient(http=api.http).deploy(
        api.service_url("team", "c-head-svc", "8265"), "", {"applications": []}
    )

    [(_, _, headers, _)] = server.proxied
    assert "x-ray-authorization" not in {key.lower() for key in headers}
