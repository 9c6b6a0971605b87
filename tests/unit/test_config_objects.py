"""Secrets and ConfigMaps: Kubernetes' rules when applied, their API, and how the CLI shows them
(a Secret's values never)."""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient

from rayservice.api.app import create_app
from rayservice.cli import main as cli_main
from rayservice.cli.main import main
from rayservice.client import RayServiceClient
from rayservice.planner.change import running_alone
from rayservice.providers.fake import FakeProvider
from rayservice.spec.config_objects import MAX_VALUES_BYTES, load_config_object, values
from rayservice.spec.errors import InvalidSpec
from rayservice.spec.events import ObjectKind, ObjectRef
from rayservice.spec.manifest import RayService
from rayservice.spec.references import resolve
from rayservice.spec.vocabulary import KIND, EventType
from rayservice.store.referenced import referenced
from rayservice.store.sqlite import SqliteStore
from tests.unit.world import sample_manifest

CORE = "/api/v1/namespaces/default"
LOCAL_CALLER = ("127.0.0.1", 50000)
SECRET_TEXT = "hunter2-very-secret"


def secret(**fields: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "redis-pw"}, **fields}


def config_map(**fields: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings"}, **fields}


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


# -- loading ---------------------------------------------------------------------------------


def test_a_secrets_string_data_is_stored_in_its_data_as_base64() -> None:
    stored = load_config_object(
        secret(data={"user": b64("ray")}, stringData={"password": SECRET_TEXT}), "s.yaml"
    )

    assert stored["data"] == {"user": b64("ray"), "password": b64(SECRET_TEXT)}
    assert "stringData" not in stored
    assert stored["type"] == "Opaque"
    assert stored["metadata"] == {"name": "redis-pw", "namespace": "default"}
    assert values(stored) == {"user": b"ray", "password": SECRET_TEXT.encode()}


def test_base64_wrapped_over_lines_is_read_as_kubernetes_reads_it() -> None:
    wrapped = b64("a certificate, long enough to be wrapped").replace("ZW", "ZW\n", 1) + "\n"
    stored = load_config_object(secret(data={"ca.crt": wrapped}), "s.yaml")

    assert values(stored) == {"ca.crt": b"a certificate, long enough to be wrapped"}


def test_a_config_maps_text_and_binary_values_are_read() -> None:
    stored = load_config_object(
        config_map(data={"LOG_LEVEL": "debug"}, binaryData={"blob": b64("\x00\x01")}), "c.yaml"
    )

    assert values(stored) == {"LOG_LEVEL": b"debug", "blob": b"\x00\x01"}


@pytest.mark.parametrize(
    ("document", "field", "message"),
    [
        (secret(data={"password": "not base64!"}), "data.password", "is not valid base64"),
        (secret(dta={"k": "a"}), "dta", 'unknown field "dta"'),
        (secret(stringData={"pass word": "x"}), 'stringData["pass word"]', "is not a valid key"),
        (config_map(data={"k": 1}), "data.k", "must be a string"),
        (
            config_map(data={"k": "1"}, binaryData={"k": b64("1")}),
            "data.k",
            "the key 'k' is also in binaryData",
        ),
        (
            {**config_map(), "metadata": {"name": "Not_A_Name"}},
            "metadata.name",
            "is not a valid ConfigMap name",
        ),
        ({**secret(), "metadata": {}}, "metadata.name", "is required"),
        ({**secret(), "metadata": None}, "metadata", "must be a mapping"),
        (secret(stringData={"pin": 482913}), "stringData.pin", "must be a string, got a number"),
        (secret(stringData={"password": None}), "stringData.password", "got nothing"),
        (config_map(data=["LOG_LEVEL"]), "data", "must be a mapping"),
        (config_map(data={"..": "x"}), 'data[".."]', "is not a valid key"),
        (
            config_map(data={"big": "x" * (MAX_VALUES_BYTES + 1)}),
            "data",
            f"a ConfigMap may hold {MAX_VALUES_BYTES}",
        ),
    ],
)
def test_what_kubernetes_refuses_is_refused_with_its_field(
    document: dict[str, Any], field: str, message: str
) -> None:
    with pytest.raises(InvalidSpec) as refused:
        load_config_object(document, "c.yaml")

    matching = [p for p in refused.value.problems if p.field == field]
    assert matching, [p.field for p in refused.value.problems]
    assert message in matching[0].message
    assert matching[0].source == "c.yaml"
    assert "482913" not in str(refused.value)  # a value is never quoted back


# -- the API ---------------------------------------------------------------------------------


@pytest.fixture
def api(tmp_path: Path) -> Iterator[tuple[TestClient, SqliteStore, list[None]]]:
    store = SqliteStore(tmp_path / "store.db")
    wakes: list[None] = []
    app = create_app(
        store, FakeProvider(clock=lambda: 0.0), tmp_path / "p", lambda: wakes.append(None)
    )
    with TestClient(app, client=LOCAL_CALLER) as client:
        yield client, store, wakes


def put(client: TestClient, document: dict[str, Any], path: str, **params: str) -> Any:
    body = {"manifest": document, "source": "s.yaml", "baseDir": "."}
    return client.put(path, json=body, params=params)


def test_a_secret_is_applied_read_listed_and_deleted(
    api: tuple[TestClient, SqliteStore, list[None]],
) -> None:
    client, store, wakes = api
    path = f"{CORE}/secrets/redis-pw"

    applied = put(client, secret(stringData={"password": SECRET_TEXT}), path)

    assert applied.status_code == 200
    assert applied.json()["data"] == {"password": b64(SECRET_TEXT)}
    assert applied.json()["metadata"]["resourceVersion"] == "1"
    assert len(wakes) == 1
    assert client.get(path).json()["kind"] == "Secret"
    assert [s["metadata"]["name"] for s in client.get(f"{CORE}/secrets").json()["items"]] == [
        "redis-pw"
    ]
    assert client.get("/api/v1/secrets").json()["items"][0]["metadata"]["namespace"] == "default"
    assert client.get(f"{CORE}/configmaps").json()["items"] == []
    assert client.delete(path).status_code == 200
    assert client.get(path).status_code == 404
    assert client.delete(path).status_code == 404
    assert store.list_resources(ObjectKind.SECRET) == []


def test_a_dry_run_names_the_keys_that_change_never_their_values(
    api: tuple[TestClient, SqliteStore, list[None]],
) -> None:
    client, store, _ = api
    path = f"{CORE}/secrets/redis-pw"
    assert (
        put(client, secret(stringData={"password": "a", "user": "u"}), path, dryRun="All").json()[
            "kind"
        ]
        == "create"
    )
    put(client, secret(stringData={"password": "a", "user": "u"}), path)

    same = put(client, secret(data={"password": b64("a"), "user": b64("u")}), path, dryRun="All")
    changed = put(
        client, secret(stringData={"password": SECRET_TEXT, "user": "u"}), path, dryRun="All"
    )

    assert same.json()["kind"] == "no-op"
    assert changed.json()["kind"] == "values change"
    assert "password" in changed.json()["summary"] and SECRET_TEXT not in changed.text
    [stored] = store.list_resources(ObjectKind.SECRET)
    assert values(stored.manifest)["password"] == b"a"  # a dry run stores nothing


@pytest.mark.parametrize(
    ("document", "path", "field"),
    [
        (config_map(), f"{CORE}/secrets/settings", "kind"),  # a ConfigMap at a Secret's path
        (secret(), f"{CORE}/secrets/other", "metadata.name"),
        (secret(data={"k": "?"}), f"{CORE}/secrets/redis-pw", "data.k"),
    ],
)
def test_a_refused_object_answers_422_and_stores_nothing(
    api: tuple[TestClient, SqliteStore, list[None]], document: dict[str, Any], path: str, field: str
) -> None:
    client, store, wakes = api

    response = put(client, document, path)

    assert response.status_code == 422
    assert [p["field"] for p in response.json()["problems"]] == [field]
    assert store.list_resources(ObjectKind.SECRET) == []
    assert wakes == []


def test_an_immutable_secret_keeps_its_values(
    api: tuple[TestClient, SqliteStore, list[None]],
) -> None:
    client, _, _ = api
    path = f"{CORE}/secrets/redis-pw"
    put(client, secret(stringData={"password": "a"}, immutable=True), path)

    changed = put(client, secret(stringData={"password": "b"}, immutable=True), path)
    unset = put(client, secret(stringData={"password": "a"}), path)
    labelled = {**secret(stringData={"password": "a"}, immutable=True)}
    labelled["metadata"] = {"name": "redis-pw", "labels": {"team": "serve"}}
    preview = put(client, labelled, path, dryRun="All")

    assert changed.status_code == 422 and "immutable" in changed.json()["problems"][0]["message"]
    assert unset.status_code == 422 and unset.json()["problems"][0]["field"] == "immutable"
    assert preview.json()["kind"] == "settings change"
    assert "metadata.labels" in preview.json()["summary"]


def test_no_revision_keeps_an_old_secret_value(
    api: tuple[TestClient, SqliteStore, list[None]],
) -> None:
    client, store, _ = api
    path = f"{CORE}/secrets/redis-pw"
    put(client, secret(stringData={"password": "one"}), path)
    put(client, secret(stringData={"password": "two"}), path)

    assert store.revisions(ObjectKind.SECRET, "default", "redis-pw") == []


def test_a_refused_object_with_no_metadata_answers_422(
    api: tuple[TestClient, SqliteStore, list[None]],
) -> None:
    client, _, _ = api

    response = put(client, {**secret(), "metadata": None}, f"{CORE}/secrets/redis-pw")

    assert response.status_code == 422


def test_deleting_a_secret_keeps_the_events_of_a_service_of_the_same_name(
    api: tuple[TestClient, SqliteStore, list[None]],
) -> None:
    client, store, _ = api
    store.add_event(
        "default", "redis-pw", EventType.NORMAL, "Created", "a service's event", 0.0,
        ObjectRef(ObjectKind.RAY_SERVICE, "redis-pw"),
    )  # fmt: skip
    put(client, secret(), f"{CORE}/secrets/redis-pw")

    client.delete(f"{CORE}/secrets/redis-pw")

    assert [e.message for e in store.events("default", "redis-pw")] == ["a service's event"]


# -- the command line ------------------------------------------------------------------------


@pytest.fixture
def cli(
    api: tuple[TestClient, SqliteStore, list[None]], monkeypatch: pytest.MonkeyPatch
) -> TestClient:
    client, _, _ = api

    class InProcess(RayServiceClient):
        def __init__(self, base_url: str, *, token: str | None = None) -> None:
            super().__init__(base_url, token=token)
            self._http = client

    monkeypatch.setattr(cli_main, "RayServiceClient", InProcess)
    return client


def test_the_cli_never_prints_a_secrets_values(
    cli: TestClient, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    document = secret(stringData={"password": SECRET_TEXT}) | {"type": "Opaque"}
    # what kubectl leaves on objects it applied: the whole object, values included
    document["metadata"]["annotations"] = {
        "kubectl.kubernetes.io/last-applied-configuration": f'{{"password":"{SECRET_TEXT}"}}'
    }
    monkeypatch.setattr("sys.stdin", io.StringIO(yaml.safe_dump(document)))
    assert main(["apply", "-f", "-"]) == 0
    assert main(["get", "secrets"]) == 0
    assert main(["get", "secret", "redis-pw", "-o", "yaml"]) == 0
    assert main(["get", "secrets", "-o", "json"]) == 0
    assert main(["describe", "secret", "redis-pw"]) == 0

    out = capsys.readouterr().out
    assert SECRET_TEXT not in out and b64(SECRET_TEXT) not in out
    assert "secret/redis-pw applied" in out
    assert "redis-pw   Opaque   1      " in out
    assert "password: <19 bytes>" in out
    assert "password:  19 bytes" in out


def test_the_cli_shows_a_config_map_and_deletes_it(
    cli: TestClient, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(
        "sys.stdin", io.StringIO(yaml.safe_dump(config_map(data={"LOG_LEVEL": "debug"})))
    )
    assert main(["apply", "-f", "-"]) == 0
    assert main(["describe", "configmap", "settings"]) == 0
    assert main(["delete", "cm", "settings"]) == 0

    out = capsys.readouterr().out
    assert "LOG_LEVEL:\n----\ndebug" in out
    assert 'configmap "settings" deleted' in out
    assert cli.get(f"{CORE}/configmaps/settings").status_code == 404


def test_delete_of_a_file_goes_on_past_an_object_already_gone(
    cli: TestClient,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    path = tmp_path / "two.yaml"
    path.write_text(yaml.safe_dump_all([secret(), config_map()]))
    assert main(["apply", "-f", str(path)]) == 0
    assert main(["delete", "secret", "redis-pw"]) == 0

    code = main(["delete", "-f", str(path)])

    assert code == 1
    captured = capsys.readouterr()
    assert 'secrets "redis-pw" not found' in captured.err
    assert 'configmap "settings" deleted' in captured.out
    assert cli.get(f"{CORE}/configmaps/settings").status_code == 404


# -- what a Secret does to the services that take values from it -----------------------------

SERVICE_PATH = "/apis/ray.io/v1/namespaces/default/rayservices/rayservice-sample"


def service_taking_password() -> dict[str, Any]:
    """The sample RayService, its head taking REDIS_PASSWORD from key password of redis-pw."""
    document = sample_manifest()
    head = document["spec"]["rayClusterConfig"]["headGroupSpec"]["template"]["spec"]
    reference = {"secretKeyRef": {"name": "redis-pw", "key": "password"}}
    head["containers"][0]["env"] = [{"name": "REDIS_PASSWORD", "valueFrom": reference}]
    return document


def as_if_running(store: SqliteStore) -> None:
    """The controller's record of the sample service running alone on a cluster with the
    values stored now."""
    resource = store.get(KIND, "default", "rayservice-sample")
    assert resource is not None
    service = RayService.model_validate(resource.manifest)
    spec = service.spec.rayClusterConfig
    resolution = resolve(spec, referenced(store, "default", spec).found, "default")
    record = running_alone(service, resolution).model_dump(mode="json")
    store.write_record(KIND, "default", "rayservice-sample", record)


def test_a_secret_dry_run_and_apply_name_the_service_and_key_they_change(
    api: tuple[TestClient, SqliteStore, list[None]],
) -> None:
    client, store, _ = api
    path = f"{CORE}/secrets/redis-pw"
    put(client, secret(stringData={"password": "a", "user": "u"}), path)
    assert put(client, service_taking_password(), SERVICE_PATH).status_code == 200
    before_a_cluster = put(client, secret(stringData={"password": "b"}), path, dryRun="All")
    assert before_a_cluster.json()["summary"].endswith(
        "no cluster of it runs yet: its first cluster starts with these values"
    )
    as_if_running(store)

    unused = put(client, secret(stringData={"password": "a", "user": "x"}), path, dryRun="All")
    rotated = put(client, secret(stringData={"password": SECRET_TEXT}), path, dryRun="All")

    assert "RayService" not in unused.json()["summary"], "no service takes key user"
    summary = rotated.json()["summary"]
    assert summary.startswith("Keys whose value changes: password, user.")
    assert "RayService default/rayservice-sample takes key password in" in summary
    assert "headGroupSpec.template.spec.containers[0].env[0].valueFrom.secretKeyRef" in summary
    assert "A new cluster is created with the new spec" in summary
    assert SECRET_TEXT not in rotated.text

    applied = put(client, secret(stringData={"password": SECRET_TEXT}), path)

    [warning] = applied.headers.get_list("warning")
    assert "RayService default/rayservice-sample takes key password" in warning
    assert SECRET_TEXT not in warning


def test_deleting_a_secret_a_service_takes_warns_that_no_new_cluster_can_start(
    api: tuple[TestClient, SqliteStore, list[None]],
    cli: TestClient,
    capsys: pytest.CaptureFixture[str],
) -> None:
    put(cli, secret(stringData={"password": "a"}), f"{CORE}/secrets/redis-pw")
    put(cli, service_taking_password(), SERVICE_PATH)
    as_if_running(api[1])

    assert main(["delete", "secret", "redis-pw"]) == 0

    err = capsys.readouterr().err
    assert "Warning: RayService default/rayservice-sample takes key password in" in err
    assert "its running cluster keeps the values it started with" in err
    assert "no new cluster can start until it can be resolved (Secret default/redis-pw" in err

    put(cli, secret(stringData={"password": "a"}), f"{CORE}/secrets/redis-pw", dryRun="All")
    again = put(cli, secret(stringData={"password": "a"}), f"{CORE}/secrets/redis-pw")
    [warning] = again.headers.get_list("warning")
    assert "its running cluster already has these values: nothing restarts" in warning


def test_a_service_dry_run_counts_the_secrets_of_its_own_file(
    cli: TestClient,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    alone = put(cli, service_taking_password(), SERVICE_PATH, dryRun="All").json()
    assert "no cluster starts until spec.rayClusterConfig can be resolved" in alone["summary"]
    assert "Secret default/redis-pw not found" in alone["summary"]

    path = tmp_path / "both.yaml"
    path.write_text(
        yaml.safe_dump_all([service_taking_password(), secret(stringData={"password": "a"})])
    )
    assert main(["apply", "--dry-run", "-f", str(path)]) == 0
    assert main(["apply", "-f", str(path)]) == 0

    captured = capsys.readouterr()
    assert "cannot be resolved" not in captured.out and "not found" not in captured.out
    assert captured.err == "", "the Secret is applied first: no warning"
    assert captured.out.index("secret/redis-pw applied") < captured.out.index(
        "rayservice.ray.io/rayservice-sample applied"
    )


def test_applying_a_service_whose_secret_is_missing_warns(
    api: tuple[TestClient, SqliteStore, list[None]],
) -> None:
    client, _, _ = api

    applied = put(client, service_taking_password(), SERVICE_PATH)

    assert applied.status_code == 200
    [warning] = applied.headers.get_list("warning")
    assert "Secret default/redis-pw not found" in warning
    assert "no cluster starts for it until then" in warning
