"""The REST API through FastAPI's TestClient: admission, objects and lists, deletion."""

from __future__ import annotations

import copy
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import pytest
import yaml
from fastapi.testclient import TestClient

from rayservice import __version__
from rayservice.api.app import create_app
from rayservice.providers.fake import FakeProvider
from rayservice.spec.cluster_request import ClusterRequest, NodeGroupRequest
from rayservice.spec.events import ObjectKind, ObjectRef
from rayservice.spec.hashing import cluster_spec_hash
from rayservice.spec.manifest import RayService
from rayservice.spec.vocabulary import KIND
from rayservice.store.base import View
from rayservice.store.sqlite import SqliteStore

RAY = "/apis/ray.io/v1"
DEMO = f"{RAY}/namespaces/default/rayservices/demo"
REMOTE_APPS = "https://example.invalid/apps.zip"
# TestClient's default caller ("testclient") is no address, so the API takes it for a remote
# one; the CLI's requests come from loopback
LOCAL_CALLER = ("127.0.0.1", 50000)


def manifest(working_dir: str = REMOTE_APPS) -> dict[str, Any]:
    config = {
        "applications": [
            {
                "name": "hello",
                "import_path": "hello:app",
                "route_prefix": "/",
                "runtime_env": {"working_dir": working_dir},
            }
        ]
    }
    return {
        "apiVersion": "ray.io/v1",
        "kind": "RayService",
        "metadata": {"name": "demo"},
        "spec": {
            "serveConfigV2": yaml.safe_dump(config),
            "rayClusterConfig": {
                "headGroupSpec": {"rayStartParams": {"num-cpus": "1"}, "template": {}},
                "workerGroupSpecs": [
                    {"groupName": "small", "replicas": 1, "minReplicas": 0, "maxReplicas": 3}
                ],
            },
        },
    }


@dataclass
class Api:
    client: TestClient
    store: SqliteStore
    provider: FakeProvider
    packages: Path
    base_dir: Path
    wakes: list[None]

    def put(self, document: dict[str, Any], path: str = DEMO, base_dir: Path | None = None) -> Any:
        body = {
            "manifest": document,
            "source": "demo.yaml",
            "baseDir": str(base_dir or self.base_dir),
        }
        return self.client.put(path, json=body)

    def dry_run(self, document: dict[str, Any], dry_run: str = "All") -> Any:
        body = {"manifest": document, "source": "demo.yaml", "baseDir": str(self.base_dir)}
        return self.client.put(DEMO, json=body, params={"dryRun": dry_run})


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    store = SqliteStore(tmp_path / "store.db")
    provider = FakeProvider(clock=lambda: 0.0)
    packages = tmp_path / "packages"
    wakes: list[None] = []
    app = create_app(store, provider, packages, lambda: wakes.append(None))
    base_dir = tmp_path / "manifests"
    base_dir.mkdir()
    with TestClient(app, client=LOCAL_CALLER) as client:
        yield Api(client, store, provider, packages, base_dir, wakes)


def edited(change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    document = copy.deepcopy(manifest())
    change(document)
    return document


def test_put_stores_a_valid_manifest_and_wakes_the_controller(api: Api) -> None:
    response = api.put(manifest())

    assert response.status_code == 200
    body = response.json()
    assert body["kind"] == "RayService"
    assert body["metadata"]["name"] == "demo"
    assert body["metadata"]["namespace"] == "default"
    assert body["metadata"]["generation"] == 1
    assert body["metadata"]["annotations"]["rayservice.io/applied-from"] == "demo.yaml"
    assert body["spec"]["serveConfigV2"] == manifest()["spec"]["serveConfigV2"]
    assert len(api.wakes) == 1
    stored = api.store.get(KIND, "default", "demo")
    assert stored is not None and stored.uid == body["metadata"]["uid"]


def test_put_of_a_changed_spec_bumps_the_generation(api: Api) -> None:
    api.put(manifest())

    def scale(d: dict[str, Any]) -> None:
        d["spec"]["rayClusterConfig"]["workerGroupSpecs"][0]["replicas"] = 2

    response = api.put(edited(scale))

    assert response.json()["metadata"]["generation"] == 2
    assert len(api.wakes) == 2


def _bad_name(d: dict[str, Any]) -> None:
    d["metadata"]["name"] = "Bad_Name"


def _negative_replicas(d: dict[str, Any]) -> None:
    d["spec"]["rayClusterConfig"]["workerGroupSpecs"][0]["replicas"] = -1


def _unknown_param(d: dict[str, Any]) -> None:
    d["spec"]["rayClusterConfig"]["headGroupSpec"]["rayStartParams"]["num-cpuz"] = "1"


def _no_import_path(d: dict[str, Any]) -> None:
    d["spec"]["serveConfigV2"] = "applications:\n- name: hello\n  route_prefix: /\n"


def _not_yaml(d: dict[str, Any]) -> None:
    d["spec"]["serveConfigV2"] = "applications: [\n"


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        (_bad_name, "metadata.name", "is not a DNS-1035 label"),
        (
            _negative_replicas,
            "spec.rayClusterConfig.workerGroupSpecs[0].replicas",
            "must be at least 0, got -1",
        ),
        (
            _unknown_param,
            "spec.rayClusterConfig.headGroupSpec.rayStartParams.num-cpuz",
            "is not an option of ray start",
        ),
        (
            _no_import_path,
            "spec.serveConfigV2.applications[0].import_path",
            "import_path",
        ),
        (_not_yaml, "spec.serveConfigV2", "not valid YAML"),
    ],
    ids=[
        "bad-name",
        "negative-replicas",
        "unknown-ray-start-param",
        "serve-config-missing-import-path",
        "serve-config-not-yaml",
    ],
)
def test_invalid_manifests_get_422_with_located_problems_and_nothing_is_stored(
    api: Api, change: Callable[[dict[str, Any]], None], field: str, message: str
) -> None:
    response = api.put(edited(change))

    assert response.status_code == 422
    problems = response.json()["problems"]
    assert all(set(p) == {"source", "field", "message", "valid"} for p in problems)
    matching = [p for p in problems if p["field"] == field]
    assert matching, [p["field"] for p in problems]
    assert message in matching[0]["message"]
    assert matching[0]["source"] == "demo.yaml"
    assert api.store.list_resources(KIND) == []
    assert api.wakes == []


def test_unknown_ray_start_param_suggests_the_close_option(api: Api) -> None:
    response = api.put(edited(_unknown_param))

    [problem] = response.json()["problems"]
    assert "num-cpus" in problem["valid"]


def test_list_has_kubernetes_list_shape(api: Api) -> None:
    api.put(manifest())

    everywhere = api.client.get(f"{RAY}/rayservices").json()
    in_default = api.client.get(f"{RAY}/namespaces/default/rayservices").json()
    in_other = api.client.get(f"{RAY}/namespaces/other/rayservices").json()

    assert everywhere["kind"] == "List"
    assert [i["metadata"]["name"] for i in everywhere["items"]] == ["demo"]
    assert in_default["items"] == everywhere["items"]
    assert in_other == {**in_other, "kind": "List", "items": []}


def test_get_one_and_get_missing(api: Api) -> None:
    api.put(manifest())

    found = api.client.get(DEMO)
    missing = api.client.get(f"{RAY}/namespaces/default/rayservices/nope")

    assert found.status_code == 200
    assert found.json()["metadata"]["name"] == "demo"
    assert missing.status_code == 404
    assert "nope" in missing.json()["detail"]


def test_delete_marks_the_service_deleting(api: Api) -> None:
    api.put(manifest())

    response = api.client.delete(DEMO)

    assert response.status_code == 200
    assert "deletionTimestamp" in response.json()["metadata"]
    stored = api.store.get(KIND, "default", "demo")
    assert stored is not None and stored.deleting is True
    assert len(api.wakes) == 2
    assert api.client.delete(f"{RAY}/namespaces/default/rayservices/nope").status_code == 404


def test_a_local_working_dir_is_packaged_to_a_file_uri(api: Api) -> None:
    apps = api.base_dir / "apps"
    apps.mkdir()
    (apps / "hello.py").write_text("app = None\n")

    response = api.put(manifest(working_dir="./apps"))

    assert response.status_code == 200, response.json()
    stored = api.store.get(KIND, "default", "demo")
    assert stored is not None
    config = yaml.safe_load(stored.manifest["spec"]["serveConfigV2"])
    uri = config["applications"][0]["runtime_env"]["working_dir"]
    assert uri.startswith("file://") and uri.endswith(".zip")
    package = Path(unquote(urlparse(uri).path))
    assert package.parent == api.packages.resolve()
    assert package.is_file()
    assert response.json()["spec"]["serveConfigV2"] == stored.manifest["spec"]["serveConfigV2"]


def test_a_missing_working_dir_is_refused(api: Api) -> None:
    response = api.put(manifest(working_dir="./missing"))

    assert response.status_code == 422
    [problem] = response.json()["problems"]
    assert problem["field"] == "spec.serveConfigV2.applications[0].runtime_env.working_dir"
    assert "'./missing' is not a directory" in problem["message"]
    assert api.store.list_resources(KIND) == []


def with_serve_port(port: int) -> dict[str, Any]:
    def add(d: dict[str, Any]) -> None:
        d["spec"]["serveService"] = {"spec": {"ports": [{"name": "serve", "port": port}]}}

    return edited(add)


def test_a_serve_port_in_use_is_refused(api: Api) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]

        response = api.put(with_serve_port(port))

    assert response.status_code == 422
    [problem] = response.json()["problems"]
    assert problem["field"] == "spec.serveService.spec.ports[0].port"
    assert str(port) in problem["message"]
    assert api.store.list_resources(KIND) == []


def test_a_serve_port_held_by_another_service_is_refused(api: Api, tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    other = edited(lambda d: d["metadata"].__setitem__("name", "other"))
    api.put(other, path=f"{RAY}/namespaces/default/rayservices/other")
    api.store.write_record(KIND, "default", "other", {"serve_port": port})

    refused = api.put(with_serve_port(port))
    api.store.write_record(KIND, "default", "other", {})
    accepted = api.put(with_serve_port(port))

    assert refused.status_code == 422
    assert accepted.status_code == 200


def test_a_service_may_keep_the_serve_port_it_already_holds(api: Api) -> None:
    with socket.socket() as front:  # the service's own front listens on its port
        front.bind(("127.0.0.1", 0))
        front.listen()
        port = front.getsockname()[1]
        api.store.apply(KIND, {**with_serve_port(port), "metadata": {"name": "demo"}}, "", 0.0)
        api.store.write_record(KIND, "default", "demo", {"serve_port": port})

        response = api.put(with_serve_port(port))

    assert response.status_code == 200, response.json()


def test_logs_come_from_the_provider(api: Api) -> None:
    api.provider.ensure(
        ClusterRequest(
            name="demo-raycluster-bbbbb",
            owner="default/demo",
            spec_hash="0123456789abcdef",
            head=NodeGroupRequest(group="headgroup"),
        )
    )
    [head] = api.provider.node_names("demo-raycluster-bbbbb")
    api.provider.set_logs("demo-raycluster-bbbbb", head, "one\ntwo\nthree\n")

    tail = api.client.get(f"{DEMO}/logs", params={"tail": 2})
    unknown = api.client.get(f"{DEMO}/logs", params={"pod": "demo-raycluster-bbbbb-nope"})
    no_cluster = api.client.get(f"{RAY}/namespaces/default/rayservices/other/logs")

    assert (tail.status_code, tail.text) == (200, "two\nthree\n")
    assert unknown.status_code == 404
    assert no_cluster.status_code == 404


def test_views_and_events_are_listed(api: Api) -> None:
    pod = View("Pod", "default", "demo-head", "default/demo", {"kind": "Pod", "x": 1})
    api.store.replace_views("default/demo", [pod])
    api.store.add_event("default", "demo", "Normal", "ClusterCreated", "creating", 0.0)

    pods = api.client.get("/api/v1/namespaces/default/pods").json()
    events = api.client.get(f"{DEMO}/events").json()

    assert pods["items"] == [{"kind": "Pod", "x": 1}]
    assert api.client.get("/api/v1/namespaces/other/pods").json()["items"] == []
    assert [(e["reason"], e["count"]) for e in events["items"]] == [("ClusterCreated", 1)]


def test_an_event_has_kubernetes_event_shape(api: Api) -> None:
    cluster = ObjectRef(ObjectKind.RAY_CLUSTER, "demo-raycluster-bbbbb")
    for seconds in (0.0, 30.0, 90.0):
        api.store.add_event(
            "default", "demo", "Warning", "Unhealthy", "head down", seconds, cluster
        )
    api.store.add_event("default", "demo", "Normal", "ClusterCreated", "creating", 100.0)

    repeated, own = api.client.get(f"{DEMO}/events").json()["items"]

    assert repeated == {
        "apiVersion": "v1",
        "kind": "Event",
        "involvedObject": {
            "kind": "RayCluster",
            "name": "demo-raycluster-bbbbb",
            "namespace": "default",
        },
        "type": "Warning",
        "reason": "Unhealthy",
        "message": "head down",
        "count": 3,
        "firstTimestamp": "1970-01-01T00:00:00Z",
        "lastTimestamp": "1970-01-01T00:01:30Z",
    }
    assert own["involvedObject"] == {"kind": "RayService", "name": "demo", "namespace": "default"}
    assert (own["count"], own["firstTimestamp"]) == (1, own["lastTimestamp"])


def test_a_path_and_body_mismatch_stores_nothing(api: Api) -> None:
    response = api.put(manifest(), path=f"{RAY}/namespaces/default/rayservices/other")

    assert response.status_code == 422
    assert response.json()["problems"][0]["field"] == "metadata.name"
    assert api.store.list_resources(KIND) == []


def test_a_serve_port_in_use_names_the_entry_that_holds_it(api: Api) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        document = manifest()
        document["spec"]["serveService"] = {
            "spec": {
                "ports": [
                    {"name": "dashboard", "port": 8265},
                    {"name": "serve", "port": port},
                ]
            }
        }

        response = api.put(document)

    assert response.status_code == 422
    [problem] = response.json()["problems"]
    assert problem["field"] == "spec.serveService.spec.ports[1].port"


# -- dry run (?dryRun=All) ----------------------------------------------------------------


def _scale(d: dict[str, Any]) -> None:
    d["spec"]["rayClusterConfig"]["workerGroupSpecs"][0]["replicas"] = 2


def _reroute(d: dict[str, Any]) -> None:
    config = yaml.safe_load(d["spec"]["serveConfigV2"])
    config["applications"][0]["route_prefix"] = "/hello"
    d["spec"]["serveConfigV2"] = yaml.safe_dump(config)


def _reformat(d: dict[str, Any]) -> None:
    config = yaml.safe_load(d["spec"]["serveConfigV2"])
    d["spec"]["serveConfigV2"] = yaml.safe_dump(config, default_flow_style=True)


def _add_head_gpu(d: dict[str, Any]) -> None:
    d["spec"]["rayClusterConfig"]["headGroupSpec"]["rayStartParams"]["num-gpus"] = "1"


def test_a_dry_run_of_a_new_service_answers_create_and_stores_nothing(api: Api) -> None:
    response = api.dry_run(manifest())

    assert response.status_code == 200, response.json()
    assert response.json() == {
        "kind": "create",
        "summary": "default/demo is not stored yet: it is created, on a new cluster.",
        "fields": [],
        "generation": 1,
    }
    assert api.store.list_resources(KIND) == []
    assert api.wakes == []


def test_a_dry_run_lists_the_causing_fields_and_changes_nothing(api: Api) -> None:
    api.put(manifest())
    before = api.store.get(KIND, "default", "demo")

    def scale_and_reroute(d: dict[str, Any]) -> None:
        _scale(d)
        _reroute(d)

    response = api.dry_run(edited(scale_and_reroute))

    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["kind"] == "in-place worker-count change"
    assert body["fields"] == [
        {
            "path": "spec.rayClusterConfig.workerGroupSpecs[0].replicas",
            "before": 1,
            "after": 2,
            "group": "workers",
        },
        {
            "path": "spec.serveConfigV2.applications[0].route_prefix",
            "before": "/",
            "after": "/hello",
            "group": "serve",
        },
    ]
    assert body["generation"] == 2
    assert api.store.get(KIND, "default", "demo") == before  # generation, resourceVersion, spec
    assert api.store.events("default", "demo") == []
    assert len(api.wakes) == 1  # only the real apply woke the loop


def test_a_field_absent_on_one_side_has_no_value_on_that_side(api: Api) -> None:
    api.put(manifest())

    body = api.dry_run(edited(_add_head_gpu)).json()

    assert body["kind"] == "new cluster"
    assert body["fields"] == [
        {
            "path": "spec.rayClusterConfig.headGroupSpec.rayStartParams.num-gpus",
            "after": "1",
            "group": "cluster",
        }
    ]


@pytest.mark.parametrize(
    ("change", "kind"),
    [
        (lambda d: None, "no-op"),
        (_reformat, "no-op"),
        (_scale, "in-place worker-count change"),
        (_reroute, "in-place Serve update"),
    ],
    ids=["same", "serve-config-reformatted", "scaled", "rerouted"],
)
def test_the_generation_a_dry_run_predicts_is_the_one_apply_gives(
    api: Api, change: Callable[[dict[str, Any]], None], kind: str
) -> None:
    api.put(manifest())

    predicted = api.dry_run(edited(change)).json()
    applied = api.put(edited(change)).json()

    assert predicted["kind"] == kind
    assert predicted["generation"] == applied["metadata"]["generation"]


def test_a_dry_run_compares_packaged_working_dirs(api: Api) -> None:
    apps = api.base_dir / "apps"
    apps.mkdir()
    (apps / "hello.py").write_text("app = None\n")
    api.put(manifest(working_dir="./apps"))

    unchanged = api.dry_run(manifest(working_dir="./apps")).json()
    (apps / "hello.py").write_text("app = 'changed'\n")
    changed = api.dry_run(manifest(working_dir="./apps")).json()

    assert (unchanged["kind"], unchanged["fields"], unchanged["generation"]) == ("no-op", [], 1)
    assert changed["kind"] == "in-place Serve update"
    [field] = changed["fields"]
    assert field["path"] == "spec.serveConfigV2.applications[0].runtime_env.working_dir"
    assert field["before"] != field["after"]
    assert field["after"].startswith("file://") and field["after"].endswith(".zip")
    stored = api.store.get(KIND, "default", "demo")
    assert stored is not None and stored.generation == 1


def test_an_invalid_manifest_in_a_dry_run_gets_422_and_nothing_changes(api: Api) -> None:
    api.put(manifest())
    before = api.store.get(KIND, "default", "demo")

    response = api.dry_run(edited(_negative_replicas))

    assert response.status_code == 422
    fields = [p["field"] for p in response.json()["problems"]]
    assert "spec.rayClusterConfig.workerGroupSpecs[0].replicas" in fields
    assert api.store.get(KIND, "default", "demo") == before
    assert len(api.wakes) == 1


def test_a_dry_run_value_other_than_all_is_refused(api: Api) -> None:
    response = api.dry_run(manifest(), dry_run="Server")

    assert response.status_code == 400
    assert 'dryRun must be "All"' in response.json()["detail"]
    assert api.store.list_resources(KIND) == []
    assert api.wakes == []


def _record_of(document: dict[str, Any], name: str) -> dict[str, Any]:
    """A controller record slot for a cluster made from ``document``'s spec."""
    spec = RayService.model_validate(document).spec
    return {
        "name": name,
        "spec_hash": cluster_spec_hash(spec.rayClusterConfig),
        "hashed_by": __version__,
        "cluster_spec": spec.rayClusterConfig.model_dump(mode="json"),
        "serve_config": spec.serve_config(),
    }


def test_the_dry_run_asks_the_controllers_record_during_an_upgrade(api: Api) -> None:
    # A is running, B was applied and its pending cluster is starting: applying A again
    # rolls the upgrade back (the stored manifest alone would say "new cluster")
    running, upgraded = manifest(), edited(_add_head_gpu)
    api.put(upgraded)
    record = {
        "phase": "Starting",
        "active": _record_of(running, "demo-raycluster-a"),
        "pending": _record_of(upgraded, "demo-raycluster-b"),
    }
    api.store.write_record(KIND, "default", "demo", record)

    answer = api.dry_run(running).json()

    assert answer["kind"] == "rollback"
    assert "pending cluster demo-raycluster-b is deleted" in answer["summary"]


def test_re_applying_the_running_spec_under_strategy_none_is_not_warned_about(api: Api) -> None:
    def strategy_none(d: dict[str, Any]) -> None:
        d["spec"]["upgradeStrategy"] = {"type": "None"}

    running, held = edited(strategy_none), edited(strategy_none)
    _add_head_gpu(held)
    api.put(held)
    record = {"phase": "Held", "active": _record_of(running, "demo-raycluster-a")}
    api.store.write_record(KIND, "default", "demo", record)

    back = api.put(running)
    again = api.put(held)

    assert "warning" not in back.headers, back.headers.get("warning")
    assert "NOT be applied" not in api.dry_run(running).json()["summary"]
    assert "set it to NewCluster" in again.headers["warning"]


def named_serve_service(name: str, service: str = "demo") -> dict[str, Any]:
    def add(d: dict[str, Any]) -> None:
        d["metadata"]["name"] = service
        d["spec"]["serveService"] = {
            "metadata": {"name": name, "labels": {"team": "fruit"}, "annotations": {"a": "b"}}
        }

    return edited(add)


def test_a_serve_service_name_another_object_has_is_refused(api: Api) -> None:
    api.put(edited(lambda d: d["metadata"].__setitem__("name", "other")),
            path=f"{RAY}/namespaces/default/rayservices/other")  # fmt: skip
    api.put(named_serve_service("fruit-svc", "third"),
            path=f"{RAY}/namespaces/default/rayservices/third")  # fmt: skip

    taken_generated = api.put(named_serve_service("other-head-svc"))
    taken_custom = api.put(named_serve_service("fruit-svc"))
    free = api.put(named_serve_service("demo-fruit"))

    for refused, owner in ((taken_generated, "other"), (taken_custom, "third")):
        assert refused.status_code == 422
        [problem] = refused.json()["problems"]
        assert problem["field"] == "spec.serveService.metadata.name"
        assert f"RayService default/{owner}" in problem["message"]
    assert free.status_code == 200


def test_a_generated_service_name_another_object_gave_its_service_is_refused(api: Api) -> None:
    api.put(named_serve_service("demo-serve-svc", "third"),
            path=f"{RAY}/namespaces/default/rayservices/third")  # fmt: skip
    head = copy.deepcopy(manifest()["spec"]["rayClusterConfig"]["headGroupSpec"])
    head["headService"] = {"metadata": {"name": "demo-serve-svc"}}
    cluster = {
        "apiVersion": "ray.io/v1",
        "kind": "RayCluster",
        "metadata": {"name": "standalone"},
        "spec": {"headGroupSpec": head},
    }

    generated = api.put(manifest())
    head_named = api.put(cluster, path=f"{RAY}/namespaces/default/rayclusters/standalone")

    for refused, field, owner in (
        (generated, "metadata.name", "third"),
        (head_named, "spec.headGroupSpec.headService.metadata.name", "third"),
    ):
        assert refused.status_code == 422, refused.text
        [problem] = refused.json()["problems"]
        assert problem["field"] == field
        assert f"RayService default/{owner}" in problem["message"]


def test_a_taken_serve_port_named_in_the_head_container_is_a_warning_not_a_refusal(
    api: Api,
) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]

        def name_port(d: dict[str, Any]) -> None:
            container = {
                "name": "ray-head",
                "image": "rayproject/ray:2.60.0",
                "ports": [{"name": "serve", "containerPort": port}],
            }
            d["spec"]["rayClusterConfig"]["headGroupSpec"]["template"] = {
                "spec": {"containers": [container]}
            }

        response = api.put(edited(name_port))

    assert response.status_code == 200
    [warning] = response.headers.get_list("warning")
    assert f"port {port}, named serve in the head container, is in use" in warning
    assert "demo-serve-svc gets the next free port" in warning
