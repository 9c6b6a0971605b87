"""KubeRay's API server v1 routes (``/apis/v1/...``) in-process, over a real SQLite store and the
in-tree fakes of the provider, Ray Serve and Ray's job API.

Every path and its failures, with the bodies of KubeRay's own curl recipes: compute templates,
clusters (stored as RayClusters), RayServices, Serve applications on a cluster, job
submissions, and the ``{code, message}`` error shape, which the older ``/apis/ray.io/v1`` routes
must not take on. The controller does not run here: where a route needs a running cluster, the
test reconciles the stored RayCluster once (the controller's own step) and says when its head
answers.
"""

from __future__ import annotations

import copy
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi import FastAPI
from fastapi.testclient import TestClient

from rayservice.api.app import create_app
from rayservice.controller.reconciler import Reconciler
from rayservice.providers.fake import FakeProvider
from rayservice.serve_client.base import ServeConfigRejected
from rayservice.serve_client.fake import FakeServeClient, running_state
from rayservice.serve_client.fake_jobs import FakeJobClient
from rayservice.spec.events import ObjectKind
from rayservice.spec.observed import ObservedCluster
from rayservice.spec.service_exposure import DEFAULT_EXPOSURE, ExposureSettings
from rayservice.spec.vocabulary import KIND, Backend
from rayservice.store.sqlite import SqliteStore
from rayservice.traffic.fake import FakeFront
from tests.seed_003 import SEED_CLUSTER, SEED_TEMPLATE
from tests.unit.world import T0, FakeClock, new_reconciler

V1 = "/apis/v1"
NS = f"{V1}/namespaces/default"
TEMPLATES = f"{NS}/compute_templates"
CLUSTERS = f"{NS}/clusters"
SERVICES = f"{NS}/services"
SERVE = f"{NS}/serveapplication"
JOBS = f"{NS}/jobsubmissions"
REMOTE_APPS = "https://example.invalid/apps.zip"
SEED_WORKING_DIR = (
    "https://github.com/ray-project/test_dag/archive/41d09119cbdf8450599f993f51318e9e27c59098.zip"
)
LOCAL_CALLER = ("127.0.0.1", 50000)
REMOTE_CALLER = ("10.1.2.3", 5000)

# The Serve config of the seed's serveapplication request, as sent (two apps).
SEED_CONFIGYAML = (
    "applications:\n  - name: fruit_app\n    import_path: fruit.deployment_graph\n"
    "    route_prefix: /fruit\n    runtime_env:\n"
    f'      working_dir: "{SEED_WORKING_DIR}"\n'
    "    deployments:\n"
    "      - name: MangoStand\n        num_replicas: 1\n        user_config:\n          price: 3\n"
    "        ray_actor_options:\n          num_cpus: 0.1\n"
    "      - name: OrangeStand\n        num_replicas: 1\n        user_config:\n          price: 2\n"
    "        ray_actor_options:\n          num_cpus: 0.1\n"
    "      - name: PearStand\n        num_replicas: 1\n        user_config:\n          price: 1\n"
    "        ray_actor_options:\n          num_cpus: 0.1\n"
    "      - name: FruitMarket\n        num_replicas: 1\n        ray_actor_options:\n"
    "          num_cpus: 0.1\n"
    "      - name: DAGDriver\n        num_replicas: 1\n        ray_actor_options:\n"
    "          num_cpus: 0.1\n"
    "  - name: math_app\n    import_path: conditional_dag.serve_dag\n    route_prefix: /calc\n"
    "    runtime_env:\n"
    f'      working_dir: "{SEED_WORKING_DIR}"\n'
    "    deployments:\n"
    "      - name: Adder\n        num_replicas: 1\n        user_config:\n          increment: 3\n"
    "        ray_actor_options:\n          num_cpus: 0.1\n"
    "      - name: Multiplier\n        num_replicas: 1\n        user_config:\n          factor: 5\n"
    "        ray_actor_options:\n          num_cpus: 0.1\n"
    "      - name: Router\n        num_replicas: 1\n"
    "      - name: create_order\n        num_replicas: 1\n"
    "      - name: DAGDriver\n        num_replicas: 1\n"
)
APPS_CONFIGYAML = SEED_CONFIGYAML.replace(SEED_WORKING_DIR, REMOTE_APPS)


def serve_config_v2() -> str:
    config = {
        "applications": [
            {
                "name": "hello",
                "import_path": "hello:app",
                "route_prefix": "/",
                "runtime_env": {"working_dir": REMOTE_APPS},
            }
        ]
    }
    return yaml.safe_dump(config)


def service(name: str = "demo", replicas: int = 1) -> dict[str, Any]:
    """A v1 RayService body whose groups name the seed's compute template."""
    return {
        "name": name,
        "namespace": "default",
        "user": "boris",
        "serveConfigV2": serve_config_v2(),
        "clusterSpec": {
            "headGroupSpec": {
                "computeTemplate": "default-template",
                "rayStartParams": {"dashboard-host": "0.0.0.0"},
            },
            "workerGroupSpec": [
                {
                    "groupName": "small-wg",
                    "computeTemplate": "default-template",
                    "replicas": replicas,
                    "minReplicas": 0,
                    "maxReplicas": 5,
                    "rayStartParams": {"node-ip-address": "$MY_POD_IP"},
                }
            ],
        },
    }


def named(body: dict[str, Any], name: str, namespace: str = "default") -> dict[str, Any]:
    copied = copy.deepcopy(body)
    copied["name"], copied["namespace"] = name, namespace
    return copied


def wire_time(timestamp: float) -> str:
    """A stored timestamp as the v1 bodies write it (whole seconds, UTC)."""
    moment = datetime.fromtimestamp(timestamp, tz=UTC).replace(microsecond=0)
    return moment.isoformat().replace("+00:00", "Z")


@dataclass
class Api:
    app: FastAPI
    client: TestClient
    store: SqliteStore
    provider: FakeProvider
    serve: FakeServeClient
    jobs: FakeJobClient
    reconciler: Reconciler
    wakes: list[None]

    def seed_template(self) -> None:
        assert self.client.post(TEMPLATES, json=SEED_TEMPLATE).status_code == 200

    def seed_cluster(self, name: str = "test-cluster") -> None:
        self.seed_template()
        response = self.client.post(CLUSTERS, json=named(SEED_CLUSTER, name))
        assert response.status_code == 200, response.text

    def start_cluster(self, name: str = "test-cluster", head_ready: bool = True) -> ObservedCluster:
        """The cluster of a stored RayCluster as the controller starts it (one reconcile pass),
        with its head answering when ``head_ready``."""
        resource = self.store.get(ObjectKind.RAY_CLUSTER, "default", name)
        assert resource is not None
        self.reconciler.reconcile(resource)
        if head_ready:
            self.provider.make_head_ready(name)
        observed = self.provider.observe(name)
        assert observed is not None
        return observed

    def running_cluster(self) -> ObservedCluster:
        self.seed_cluster()
        return self.start_cluster()


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    yield from api_on(tmp_path, DEFAULT_EXPOSURE)


def api_on(tmp_path: Path, exposure: ExposureSettings) -> Generator[Api, None, None]:
    store = SqliteStore(tmp_path / "store.db")
    clock = FakeClock()
    provider = FakeProvider(clock=clock)
    serve = FakeServeClient(clock=clock)
    jobs = FakeJobClient(clock=clock)
    wakes: list[None] = []
    app = create_app(
        store,
        provider,
        tmp_path / "packages",
        lambda: wakes.append(None),
        serve=serve,
        jobs=jobs,
        exposure=exposure,
    )
    reconciler = new_reconciler(store, provider, serve, FakeFront(), clock)
    with TestClient(app, client=LOCAL_CALLER) as client:
        yield Api(app, client, store, provider, serve, jobs, reconciler, wakes)


def fields(response: Any) -> list[str]:
    return [p["field"] for p in response.json()["problems"]]


# -- compute templates ----------------------------------------------------------------------


def test_a_compute_template_is_stored_and_answered_in_camel_case(api: Api) -> None:
    body = SEED_TEMPLATE | {
        "memoryUnit": "Mi",
        "gpu": 1,
        "gpu_accelerator": "nvidia.com/gpu",
        "extendedResources": {"vpc.amazonaws.com/efa": 2},
    }

    response = api.client.post(TEMPLATES, json=body)

    assert response.status_code == 200
    assert response.json() == {
        "name": "default-template",
        "namespace": "default",
        "cpu": 2,
        "memory": 4,
        "gpu": 1,
        "gpuAccelerator": "nvidia.com/gpu",
        "extendedResources": {"vpc.amazonaws.com/efa": 2},
        "memoryUnit": "Mi",
    }
    stored = api.store.get(ObjectKind.COMPUTE_TEMPLATE, "default", "default-template")
    assert stored is not None and stored.manifest["spec"]["memoryUnit"] == "Mi"
    assert api.client.get(f"{TEMPLATES}/default-template").json() == response.json()


def test_a_duplicate_compute_template_is_409_with_code_6(api: Api) -> None:
    api.seed_template()

    response = api.client.post(TEMPLATES, json=SEED_TEMPLATE | {"cpu": 8})

    assert response.status_code == 409
    assert response.json() == {
        "code": 6,
        "message": 'compute template "default-template" in namespace "default" already exists',
    }
    assert api.client.get(f"{TEMPLATES}/default-template").json()["cpu"] == 2


def test_compute_templates_are_listed_per_namespace_and_everywhere(api: Api) -> None:
    api.seed_template()
    other = named(SEED_TEMPLATE, "big", "other") | {"cpu": 16}
    assert (
        api.client.post(f"{V1}/namespaces/other/compute_templates", json=other).status_code == 200
    )

    in_default = api.client.get(TEMPLATES).json()
    everywhere = api.client.get(f"{V1}/compute_templates").json()

    assert in_default == {"computeTemplates": [SEED_TEMPLATE]}
    assert sorted(
        (t["namespace"], t["name"], t["cpu"]) for t in everywhere["computeTemplates"]
    ) == [
        ("default", "default-template", 2),
        ("other", "big", 16),
    ]


def test_a_compute_template_is_deleted_and_a_missing_one_is_404(api: Api) -> None:
    api.seed_template()

    deleted = api.client.delete(f"{TEMPLATES}/default-template")
    again = api.client.delete(f"{TEMPLATES}/default-template")

    assert (deleted.status_code, deleted.json()) == (200, {})
    assert api.store.get(ObjectKind.COMPUTE_TEMPLATE, "default", "default-template") is None
    assert again.status_code == 404
    assert again.json() == {
        "code": 5,
        "message": 'compute template "default-template" in namespace "default" not found',
    }
    assert api.client.get(f"{TEMPLATES}/default-template").json()["code"] == 5


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"cpu": 0}, "cpu"),
        ({"memory": 0}, "memory"),
        ({"namespace": "other"}, "namespace"),
        ({"name": "Default_Template"}, "name"),
        ({"name": "1st-template"}, "name"),
        ({"name": ""}, "name"),
    ],
    ids=["cpu-0", "memory-0", "namespace-mismatch", "uppercase-name", "digit-first", "no-name"],
)
def test_an_invalid_compute_template_is_400_with_code_3_and_nothing_stored(
    api: Api, change: dict[str, Any], field: str
) -> None:
    response = api.client.post(TEMPLATES, json=SEED_TEMPLATE | change)

    assert response.status_code == 400
    assert response.json()["code"] == 3
    assert fields(response) == [field]
    assert field in response.json()["message"]
    assert api.store.list_resources(ObjectKind.COMPUTE_TEMPLATE) == []


def test_a_template_of_a_negative_cpu_count_is_400_located_at_cpu(api: Api) -> None:
    response = api.client.post(TEMPLATES, json=SEED_TEMPLATE | {"cpu": -1})

    assert response.status_code == 400
    assert response.json()["code"] == 3
    assert fields(response) == ["cpu"]


def test_a_namespace_that_is_not_a_dns_label_is_400(api: Api) -> None:
    response = api.client.post(
        f"{V1}/namespaces/Not_A_Label/compute_templates",
        json=SEED_TEMPLATE | {"namespace": "Not_A_Label"},
    )

    assert response.status_code == 400
    assert response.json()["code"] == 3
    assert "'Not_A_Label' is not a DNS-1035 label" in response.json()["message"]


# -- clusters -------------------------------------------------------------------------------


def test_the_seed_cluster_is_stored_as_a_ray_cluster_sized_by_its_template(api: Api) -> None:
    api.seed_template()

    response = api.client.post(CLUSTERS, json=SEED_CLUSTER)

    assert response.status_code == 200, response.text
    stored = api.store.get(ObjectKind.RAY_CLUSTER, "default", "test-cluster")
    assert stored is not None and stored.kind == "RayCluster"
    assert stored.manifest["kind"] == "RayCluster"
    assert stored.manifest["metadata"]["annotations"] == {"ray.io/enable-serve-service": "true"}
    assert stored.manifest["metadata"]["labels"] == {"ray.io/user": "boris"}
    head = stored.manifest["spec"]["headGroupSpec"]
    [container] = head["template"]["spec"]["containers"]
    assert container["resources"]["requests"] == {"cpu": "2", "memory": "4Gi"}
    assert container["resources"]["limits"] == {"cpu": "2", "memory": "4Gi"}
    assert container["image"] == "rayproject/ray:2.8.0-py310"
    assert head["rayStartParams"] == SEED_CLUSTER["clusterSpec"]["headGroupSpec"]["rayStartParams"]
    [workers] = stored.manifest["spec"]["workerGroupSpecs"]
    assert (workers["groupName"], workers["replicas"], workers["maxReplicas"]) == ("small-wg", 1, 5)
    assert len(api.wakes) == 1

    body = response.json()
    assert body["name"] == "test-cluster"
    assert body["user"] == "boris"
    assert body["clusterState"] == "provisioning"
    assert body["createdAt"] == wire_time(stored.created_at)
    assert body["events"] == []
    assert body["serviceEndpoint"] == {}
    assert body["clusterSpec"]["headGroupSpec"]["computeTemplate"] == "default-template"
    assert body["clusterSpec"]["workerGroupSpec"][0]["groupName"] == "small-wg"


def test_a_running_cluster_shows_its_state_events_and_endpoints(api: Api) -> None:
    api.seed_cluster()
    api.start_cluster()
    starting = api.client.get(f"{CLUSTERS}/test-cluster").json()
    api.provider.start_nodes("test-cluster")
    resource = api.store.get(ObjectKind.RAY_CLUSTER, "default", "test-cluster")
    assert resource is not None
    api.reconciler.reconcile(resource)

    body = api.client.get(f"{CLUSTERS}/test-cluster").json()

    assert starting["clusterState"] == "provisioning"
    assert starting["serviceEndpoint"] == {"dashboard": "8265", "serve": "8000"}
    assert body["clusterState"] == "ready"
    assert body["serviceEndpoint"] == {
        "client": "20002",
        "dashboard": "8265",
        "gcs-server": "20000",
        "serve": "8000",
    }
    assert [(e["name"], e["reason"], e["type"]) for e in body["events"]] == [
        ("RayCluster/test-cluster", "ClusterCreated", "Normal"),
        ("Service/test-cluster-serve-svc", "EndpointsUpdated", "Normal"),
    ]
    assert body["events"][0] == {
        "id": "test-cluster.0",
        "name": "RayCluster/test-cluster",
        "createdAt": wire_time(T0),
        "firstTimestamp": wire_time(T0),
        "lastTimestamp": wire_time(T0),
        "reason": "ClusterCreated",
        "message": "creating cluster test-cluster: a head and 1 worker(s)",
        "type": "Normal",
        "count": 1,
    }


def test_a_cluster_naming_a_missing_template_is_400_located_at_the_group(api: Api) -> None:
    response = api.client.post(CLUSTERS, json=SEED_CLUSTER)

    assert response.status_code == 400
    assert response.json()["code"] == 3
    assert fields(response) == [
        "clusterSpec.headGroupSpec.computeTemplate",
        "clusterSpec.workerGroupSpec[0].computeTemplate",
    ]
    assert "compute template 'default-template' does not exist" in response.json()["message"]
    assert api.store.list_resources(ObjectKind.RAY_CLUSTER) == []
    assert api.wakes == []


def test_a_duplicate_cluster_is_409(api: Api) -> None:
    api.seed_cluster()

    response = api.client.post(CLUSTERS, json=SEED_CLUSTER)

    assert response.status_code == 409
    assert response.json() == {
        "code": 6,
        "message": 'cluster "test-cluster" in namespace "default" already exists',
    }
    assert len(api.wakes) == 1


def test_clusters_are_listed_in_pages_with_limit_and_continue(api: Api) -> None:
    api.seed_template()
    for name in ("c-3", "c-1", "c-2"):
        assert api.client.post(CLUSTERS, json=named(SEED_CLUSTER, name)).status_code == 200

    first = api.client.get(CLUSTERS, params={"limit": 2}).json()
    second = api.client.get(CLUSTERS, params={"limit": 2, "continue": first["continue"]}).json()
    everything = api.client.get(f"{V1}/clusters").json()

    assert [c["name"] for c in first["clusters"]] == ["c-1", "c-2"]
    assert [c["name"] for c in second["clusters"]] == ["c-3"]
    assert "continue" not in second
    assert [c["name"] for c in everything["clusters"]] == ["c-1", "c-2", "c-3"]
    assert "continue" not in everything


def test_a_cluster_is_got_and_deleting_it_marks_it_and_wakes_the_controller(api: Api) -> None:
    api.seed_cluster()
    created_wakes = len(api.wakes)

    got = api.client.get(f"{CLUSTERS}/test-cluster")
    deleted = api.client.delete(f"{CLUSTERS}/test-cluster")

    assert got.status_code == 200 and got.json()["name"] == "test-cluster"
    assert (deleted.status_code, deleted.json()) == (200, {})
    stored = api.store.get(ObjectKind.RAY_CLUSTER, "default", "test-cluster")
    assert stored is not None and stored.deleting
    assert len(api.wakes) == created_wakes + 1
    assert api.client.get(f"{CLUSTERS}/test-cluster").json()["clusterState"] == "deleting"


def test_a_missing_cluster_is_404_for_get_and_delete(api: Api) -> None:
    got = api.client.get(f"{CLUSTERS}/nope")
    deleted = api.client.delete(f"{CLUSTERS}/nope")

    expected = {"code": 5, "message": 'cluster "nope" in namespace "default" not found'}
    assert (got.status_code, got.json()) == (404, expected)
    assert (deleted.status_code, deleted.json()) == (404, expected)
    assert api.wakes == []


# -- RayServices ----------------------------------------------------------------------------


def test_a_ray_service_is_created_from_a_v1_body(api: Api) -> None:
    api.seed_template()

    response = api.client.post(SERVICES, json=service())

    assert response.status_code == 200, response.text
    stored = api.store.get(KIND, "default", "demo")
    assert stored is not None and stored.generation == 1
    spec = stored.manifest["spec"]
    assert spec["serveConfigV2"] == serve_config_v2()
    [container] = spec["rayClusterConfig"]["headGroupSpec"]["template"]["spec"]["containers"]
    assert container["resources"]["requests"] == {"cpu": "2", "memory": "4Gi"}
    assert len(api.wakes) == 1
    body = response.json()
    assert (body["name"], body["namespace"], body["user"]) == ("demo", "default", "boris")
    assert body["serveConfigV2"] == serve_config_v2()
    assert body["createdAt"] == wire_time(stored.created_at)
    assert body["clusterSpec"]["workerGroupSpec"][0]["replicas"] == 1


def test_a_duplicate_ray_service_is_409(api: Api) -> None:
    api.seed_template()
    api.client.post(SERVICES, json=service())

    response = api.client.post(SERVICES, json=service(replicas=3))

    assert response.status_code == 409
    assert response.json() == {
        "code": 6,
        "message": 'service "demo" in namespace "default" already exists',
    }
    stored = api.store.get(KIND, "default", "demo")
    assert stored is not None and stored.generation == 1


def test_a_ray_service_is_updated_by_put_and_a_missing_one_is_404(api: Api) -> None:
    api.seed_template()
    api.client.post(SERVICES, json=service())

    updated = api.client.put(f"{SERVICES}/demo", json=service(replicas=3))
    missing = api.client.put(f"{SERVICES}/other", json=service("other"))

    assert updated.status_code == 200, updated.text
    assert updated.json()["clusterSpec"]["workerGroupSpec"][0]["replicas"] == 3
    stored = api.store.get(KIND, "default", "demo")
    assert stored is not None and stored.generation == 2
    assert stored.manifest["spec"]["rayClusterConfig"]["workerGroupSpecs"][0]["replicas"] == 3
    assert missing.status_code == 404
    assert missing.json() == {
        "code": 5,
        "message": 'service "other" in namespace "default" not found',
    }
    assert api.store.get(KIND, "default", "other") is None


def test_a_put_whose_body_names_another_service_is_400(api: Api) -> None:
    api.seed_template()
    api.client.post(SERVICES, json=service())

    response = api.client.put(f"{SERVICES}/demo", json=service("other"))

    assert response.status_code == 400
    assert fields(response) == ["name"]


def test_a_ray_service_is_got_with_its_status(api: Api) -> None:
    api.seed_template()
    api.client.post(SERVICES, json=service())

    response = api.client.get(f"{SERVICES}/demo")

    assert response.status_code == 200
    body = response.json()
    assert body["name"] == "demo"
    assert body["rayServiceStatus"] == {
        "rayServiceEvents": [],
        "serviceEndpoint": {},
        "serveApplicationStatus": [],
    }
    assert api.client.get(f"{SERVICES}/nope").json()["code"] == 5


def test_ray_services_are_listed_in_pages_each_exactly_once(api: Api) -> None:
    api.seed_template()
    names = ["svc-e", "svc-a", "svc-d", "svc-b", "svc-c"]
    for name in names:
        assert api.client.post(SERVICES, json=service(name)).status_code == 200

    pages: list[list[str]] = []
    token = ""
    while True:
        params: dict[str, Any] = {"pageSize": 2}
        if token:
            params["pageToken"] = token
        body = api.client.get(SERVICES, params=params).json()
        assert body["totalSize"] == 5
        pages.append([s["name"] for s in body["services"]])
        token = body.get("nextPageToken", "")
        if not token:
            break

    assert pages == [["svc-a", "svc-b"], ["svc-c", "svc-d"], ["svc-e"]]
    everything = api.client.get(f"{V1}/services").json()
    assert [s["name"] for s in everything["services"]] == sorted(names)
    assert everything["totalSize"] == 5
    assert "nextPageToken" not in everything


@pytest.mark.parametrize("token", ["not-a-token", "!!!!", "//8="])
def test_a_page_token_this_server_did_not_give_is_400(api: Api, token: str) -> None:
    response = api.client.get(SERVICES, params={"pageSize": 2, "pageToken": token})

    assert response.status_code == 400
    assert response.json()["code"] == 3
    assert "is not one this server gave out" in response.json()["message"]


def test_a_ray_service_is_deleted(api: Api) -> None:
    api.seed_template()
    api.client.post(SERVICES, json=service())

    deleted = api.client.delete(f"{SERVICES}/demo")
    missing = api.client.delete(f"{SERVICES}/nope")

    assert (deleted.status_code, deleted.json()) == (200, {})
    stored = api.store.get(KIND, "default", "demo")
    assert stored is not None and stored.deleting
    assert len(api.wakes) == 2
    assert missing.status_code == 404 and missing.json()["code"] == 5


def test_a_ray_service_without_a_serve_config_is_400(api: Api) -> None:
    api.seed_template()
    body = service()
    del body["serveConfigV2"]

    response = api.client.post(SERVICES, json=body)

    assert response.status_code == 400
    assert fields(response) == ["serveConfigV2"]
    assert api.store.list_resources(KIND) == []


# -- Serve applications ---------------------------------------------------------------------


def test_serve_applications_are_deployed_behind_the_heads_proxy(api: Api) -> None:
    cluster = api.running_cluster()
    head = cluster.head
    assert head is not None

    response = api.client.post(f"{SERVE}/test-cluster", json={"configyaml": APPS_CONFIGYAML})

    assert (response.status_code, response.json()) == (200, {})
    deployed = api.serve.last_deployed(cluster.dashboard_url)
    assert deployed is not None
    assert deployed["http_options"] == {"host": "127.0.0.1", "port": head.proxy_port}
    assert head.proxy_port == 20009
    assert [app["name"] for app in deployed["applications"]] == ["fruit_app", "math_app"]
    assert deployed["applications"][0]["runtime_env"] == {"working_dir": REMOTE_APPS}
    [call] = [c for c in api.serve.calls if c.operation == "deploy"]
    assert call.token == cluster.auth_token


def test_a_local_working_dir_of_a_loopback_caller_is_packaged(api: Api, tmp_path: Path) -> None:
    cluster = api.running_cluster()
    apps = tmp_path / "apps"
    apps.mkdir()
    (apps / "fruit.py").write_text("deployment_graph = None\n")
    configyaml = SEED_CONFIGYAML.replace(SEED_WORKING_DIR, apps.as_uri())

    response = api.client.post(f"{SERVE}/test-cluster", json={"configyaml": configyaml})

    assert response.status_code == 200, response.text
    deployed = api.serve.last_deployed(cluster.dashboard_url)
    assert deployed is not None
    uris = {app["runtime_env"]["working_dir"] for app in deployed["applications"]}
    [uri] = uris  # the same folder is one package
    packages = (tmp_path / "packages").as_uri()
    assert uri.startswith(packages + "/") and uri.endswith(".zip")
    assert Path(uri.removeprefix("file://")).is_file()


def test_on_kubernetes_a_folder_is_packaged_and_a_file_of_this_machine_refused(
    tmp_path: Path,
) -> None:
    on_kubernetes = api_on(tmp_path, ExposureSettings(backend=Backend.KUBERNETES))
    api = next(on_kubernetes)
    cluster = api.running_cluster()
    apps = tmp_path / "apps"
    apps.mkdir()
    (apps / "fruit.py").write_text("deployment_graph = None\n")
    (tmp_path / "fruit.zip").write_bytes(b"a zip of this machine")
    folder = SEED_CONFIGYAML.replace(SEED_WORKING_DIR, apps.as_uri())
    archive = SEED_CONFIGYAML.replace(SEED_WORKING_DIR, (tmp_path / "fruit.zip").as_uri())

    refused = api.client.post(f"{SERVE}/test-cluster", json={"configyaml": archive})
    accepted = api.client.post(f"{SERVE}/test-cluster", json={"configyaml": folder})

    assert refused.status_code == 400
    assert fields(refused) == [
        "configyaml.applications[0].runtime_env.working_dir",
        "configyaml.applications[1].runtime_env.working_dir",
    ]
    assert "folders are shipped to the cluster" in refused.json()["message"]
    assert accepted.status_code == 200, accepted.text
    deployed = api.serve.last_deployed(cluster.dashboard_url)
    assert deployed is not None  # packaged; the Serve client ships it (test_shipped_packages)
    assert deployed["applications"][0]["runtime_env"]["working_dir"].endswith(".zip")
    on_kubernetes.close()


def test_a_local_working_dir_of_a_remote_caller_is_refused(api: Api, tmp_path: Path) -> None:
    cluster = api.running_cluster()
    apps = tmp_path / "apps"
    apps.mkdir()
    configyaml = SEED_CONFIGYAML.replace(SEED_WORKING_DIR, apps.as_uri())

    with TestClient(api.app, client=REMOTE_CALLER) as remote:
        response = remote.post(f"{SERVE}/test-cluster", json={"configyaml": configyaml})

    assert response.status_code == 400
    assert response.json()["code"] == 3
    assert fields(response) == [
        "configyaml.applications[0].runtime_env.working_dir",
        "configyaml.applications[1].runtime_env.working_dir",
    ]
    assert "only for a caller on the same machine" in response.json()["message"]
    assert api.serve.last_deployed(cluster.dashboard_url) is None
    assert not (tmp_path / "packages").exists()


@pytest.mark.parametrize(
    ("configyaml", "field"),
    [
        ("applications:\n- name: a\n  route_prefix: /\n", "configyaml.applications[0].import_path"),
        ("applications: [\n", "configyaml"),
        ("- just\n- a list\n", "configyaml"),
        ("   ", "configyaml"),
    ],
    ids=["no-import-path", "not-yaml", "not-a-mapping", "blank"],
)
def test_an_invalid_serve_config_is_400_located_in_configyaml(
    api: Api, configyaml: str, field: str
) -> None:
    cluster = api.running_cluster()

    response = api.client.post(f"{SERVE}/test-cluster", json={"configyaml": configyaml})

    assert response.status_code == 400
    assert response.json()["code"] == 3
    assert field in fields(response)
    assert all(f.startswith("configyaml") for f in fields(response))
    assert api.serve.last_deployed(cluster.dashboard_url) is None


def test_serve_applications_are_read_in_the_v1_shape(api: Api) -> None:
    cluster = api.running_cluster()
    api.client.post(f"{SERVE}/test-cluster", json={"configyaml": APPS_CONFIGYAML})
    deployed = api.serve.last_deployed(cluster.dashboard_url)
    assert deployed is not None
    api.serve.set_state(cluster.dashboard_url, running_state(deployed))

    response = api.client.get(f"{SERVE}/test-cluster")

    assert response.status_code == 200
    body = response.json()
    assert body["httpOptions"]["host"] == "127.0.0.1"
    assert body["httpOptions"]["port"] == 20009
    assert body["proxyLocation"] == "EveryNode"
    assert sorted(body["applications"]) == ["fruit_app", "math_app"]
    fruit = body["applications"]["fruit_app"]
    assert (fruit["status"], fruit["routePrefix"]) == ("RUNNING", "/fruit")
    assert fruit["deployments"]["MangoStand"]["status"] == "HEALTHY"
    assert fruit["deployments"]["MangoStand"]["deploymentConfig"]["numReplicas"] == 1
    assert fruit["deployments"]["MangoStand"]["replicas"][0]["state"] == "RUNNING"
    assert fruit["deployedAppConfig"]["importPath"] == "fruit.deployment_graph"
    assert fruit["lastDeployedTimeS"] == T0
    [proxy] = body["proxies"].values()
    assert proxy["status"] == "HEALTHY"


def test_serve_applications_are_deleted_by_shutting_serve_down(api: Api) -> None:
    cluster = api.running_cluster()

    response = api.client.delete(f"{SERVE}/test-cluster")

    assert (response.status_code, response.json()) == (200, {})
    [call] = [c for c in api.serve.calls if c.operation == "shutdown"]
    assert (call.dashboard_url, call.token) == (cluster.dashboard_url, cluster.auth_token)


def test_serve_applications_of_an_unknown_cluster_are_404(api: Api) -> None:
    api.running_cluster()

    posted = api.client.post(f"{SERVE}/nope", json={"configyaml": APPS_CONFIGYAML})
    got = api.client.get(f"{SERVE}/nope")
    other_namespace = api.client.get(f"{V1}/namespaces/other/serveapplication/test-cluster")

    expected = {"code": 5, "message": 'cluster "nope" in namespace "default" not found'}
    assert (posted.status_code, posted.json()) == (404, expected)
    assert (got.status_code, got.json()) == (404, expected)
    assert other_namespace.status_code == 404
    assert api.serve.calls == []


def test_serve_applications_of_a_cluster_whose_head_is_starting_are_503(api: Api) -> None:
    api.seed_cluster()
    api.start_cluster(head_ready=False)

    response = api.client.post(f"{SERVE}/test-cluster", json={"configyaml": APPS_CONFIGYAML})

    assert response.status_code == 503
    assert response.json() == {
        "code": 14,
        "message": "cluster test-cluster is not ready yet: its head is starting; try again shortly",
    }
    assert api.serve.calls == []


def test_ray_refusing_a_serve_config_is_400(api: Api) -> None:
    api.running_cluster()
    api.serve.fail("deploy", ServeConfigRejected("bad deployment option"))

    response = api.client.post(f"{SERVE}/test-cluster", json={"configyaml": APPS_CONFIGYAML})

    assert response.status_code == 400
    assert response.json() == {
        "code": 3,
        "message": "Ray refused the Serve config: bad deployment option",
    }


# -- job submissions ------------------------------------------------------------------------

RUNTIME_ENV = "pip:\n  - requests==2.26.0\nenv_vars:\n  COUNTER: '2'\n"


def submit(api: Api, **extra: Any) -> Any:
    body = {"entrypoint": "python -c 'print(1)'", "submissionId": "job-1"} | extra
    return api.client.post(f"{JOBS}/test-cluster", json=body)


def test_a_job_is_submitted_with_its_runtime_env_as_a_mapping(api: Api) -> None:
    cluster = api.running_cluster()

    response = submit(
        api, runtimeEnv=RUNTIME_ENV, metadata={"owner": "boris"}, entrypointNumCpus=0.5
    )

    assert (response.status_code, response.json()) == (200, {"submissionId": "job-1"})
    job = api.jobs.info(cluster.dashboard_url, cluster.auth_token, "job-1")
    assert job["runtime_env"] == {"pip": ["requests==2.26.0"], "env_vars": {"COUNTER": "2"}}
    assert job["metadata"] == {"owner": "boris"}
    assert job["entrypoint"] == "python -c 'print(1)'"
    [call] = [c for c in api.jobs.calls if c.operation == "submit"]
    assert call.token == cluster.auth_token


def test_a_job_without_a_submission_id_gets_rays(api: Api) -> None:
    api.running_cluster()

    response = api.client.post(f"{JOBS}/test-cluster", json={"entrypoint": "echo hi"})

    assert response.json() == {"submissionId": "raysubmit_0000000000000001"}


def test_a_job_is_got_listed_and_its_log_read(api: Api) -> None:
    cluster = api.running_cluster()
    submit(api, runtimeEnv=RUNTIME_ENV, metadata={"owner": "boris"})
    api.jobs.set_status(cluster.dashboard_url, "job-1", "RUNNING")
    api.jobs.set_logs(cluster.dashboard_url, "job-1", "1\n")

    got = api.client.get(f"{JOBS}/test-cluster/job-1")
    listed = api.client.get(f"{JOBS}/test-cluster")
    log = api.client.get(f"{JOBS}/test-cluster/log/job-1")

    assert got.status_code == 200
    assert got.json() == {
        "entrypoint": "python -c 'print(1)'",
        "submissionId": "job-1",
        "status": "RUNNING",
        "message": "Job is currently running.",
        "startTime": str(int(T0 * 1000)),  # protojson writes 64-bit integers as strings
        "metadata": {"owner": "boris"},
        "runtimeEnv": {"pip": str(["requests==2.26.0"]), "env_vars": str({"COUNTER": "2"})},
    }
    assert listed.json() == {"submissions": [got.json()]}
    assert log.json() == {"log": "1\n"}


def test_a_job_is_stopped_then_deleted(api: Api) -> None:
    cluster = api.running_cluster()
    submit(api)

    stopped = api.client.post(f"{JOBS}/test-cluster/job-1")
    status = api.jobs.info(cluster.dashboard_url, cluster.auth_token, "job-1")["status"]
    deleted = api.client.delete(f"{JOBS}/test-cluster/job-1")

    assert (stopped.status_code, stopped.json()) == (200, {})
    assert status == "STOPPED"
    assert (deleted.status_code, deleted.json()) == (200, {})
    assert api.client.get(f"{JOBS}/test-cluster").json() == {"submissions": []}


def test_deleting_a_running_job_is_refused(api: Api) -> None:
    api.running_cluster()
    submit(api)

    response = api.client.delete(f"{JOBS}/test-cluster/job-1")

    assert response.status_code == 400
    assert response.json() == {
        "code": 9,
        "message": "job job-1 is PENDING: it has not ended; stop it first",
    }


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/test-cluster/nope"),
        ("GET", "/test-cluster/log/nope"),
        ("POST", "/test-cluster/nope"),
        ("DELETE", "/test-cluster/nope"),
    ],
    ids=["get", "log", "stop", "delete"],
)
def test_an_unknown_job_is_404(api: Api, method: str, path: str) -> None:
    api.running_cluster()

    response = api.client.request(method, f"{JOBS}{path}")

    assert response.status_code == 404
    assert response.json() == {"code": 5, "message": "Job nope does not exist"}


@pytest.mark.parametrize(
    ("runtime_env", "message"),
    [
        ("pip: [\n", "runtimeEnv is not YAML"),
        ("- requests\n", "runtimeEnv must be a YAML mapping"),
    ],
    ids=["not-yaml", "a-list"],
)
def test_a_bad_runtime_env_is_400(api: Api, runtime_env: str, message: str) -> None:
    api.running_cluster()

    response = submit(api, runtimeEnv=runtime_env)

    assert response.status_code == 400
    assert response.json()["code"] == 3
    assert response.json()["message"].startswith(message)
    assert [c for c in api.jobs.calls if c.operation == "submit"] == []


def test_a_job_without_an_entrypoint_is_400(api: Api) -> None:
    api.running_cluster()

    response = api.client.post(f"{JOBS}/test-cluster", json={"submissionId": "job-1"})

    assert response.status_code == 400
    assert fields(response) == ["entrypoint"]


def test_jobs_of_an_unknown_cluster_are_404(api: Api) -> None:
    response = api.client.get(f"{JOBS}/nope")

    assert response.status_code == 404
    assert response.json() == {
        "code": 5,
        "message": 'cluster "nope" in namespace "default" not found',
    }


# -- errors ---------------------------------------------------------------------------------


def test_an_unknown_v1_path_is_404_in_the_v1_shape(api: Api) -> None:
    response = api.client.get(f"{V1}/namespaces/default/widgets")

    assert response.status_code == 404
    assert response.json() == {"code": 5, "message": "Not Found"}


def test_a_wrong_method_on_a_v1_path_is_405_in_the_v1_shape(api: Api) -> None:
    response = api.client.patch(f"{TEMPLATES}/default-template", json={})

    assert response.status_code == 405
    assert response.json() == {"code": 3, "message": "Method Not Allowed"}


def test_a_body_that_is_not_json_is_400_with_code_3(api: Api) -> None:
    response = api.client.post(
        TEMPLATES, content=b"{not json", headers={"content-type": "application/json"}
    )

    assert response.status_code == 400
    assert response.json()["code"] == 3
    assert "JSON decode error" in response.json()["message"]
    assert api.store.list_resources(ObjectKind.COMPUTE_TEMPLATE) == []


def test_a_body_that_is_not_an_object_is_400_with_code_3(api: Api) -> None:
    response = api.client.post(TEMPLATES, json=["default-template"])

    assert response.status_code == 400
    assert response.json()["code"] == 3


def test_a_bad_query_parameter_is_400_with_code_3(api: Api) -> None:
    response = api.client.get(CLUSTERS, params={"limit": "many"})

    assert response.status_code == 400
    assert response.json()["code"] == 3
    assert response.json()["problems"][0]["field"] == "query.limit"


def test_the_ray_io_routes_keep_their_own_error_shapes(api: Api) -> None:
    base = "/apis/ray.io/v1/namespaces/default/rayservices"
    bad = {
        "manifest": {
            "apiVersion": "ray.io/v1",
            "kind": "RayService",
            "metadata": {"name": "demo"},
            "spec": {},
        },
        "source": "demo.yaml",
    }

    refused = api.client.put(f"{base}/demo", json=bad)
    missing = api.client.get(f"{base}/nope")
    unknown = api.client.get("/apis/ray.io/v1/widgets")

    assert refused.status_code == 422
    assert "code" not in refused.json()
    assert [p["field"] for p in refused.json()["problems"]] == [
        "spec.serveConfigV2",
        "spec.rayClusterConfig",
    ]
    assert all(p["source"] == "demo.yaml" for p in refused.json()["problems"])
    assert missing.status_code == 404
    assert missing.json() == {"detail": 'rayservice "nope" not found in namespace "default"'}
    assert unknown.json() == {"detail": "Not Found"}


def test_a_v1_cluster_of_type_node_port_is_warned_about_and_a_bad_type_refused(api: Api) -> None:
    api.seed_template()
    node_port = copy.deepcopy(SEED_CLUSTER)
    node_port["clusterSpec"]["headGroupSpec"]["serviceType"] = "NodePort"
    bad = copy.deepcopy(node_port)
    bad["name"] = "bad-cluster"
    bad["clusterSpec"]["headGroupSpec"]["serviceType"] = "Nodeport"

    response = api.client.post(CLUSTERS, json=node_port)
    refused = api.client.post(CLUSTERS, json=bad)

    assert response.status_code == 200
    warnings = response.headers.get_list("warning")
    assert any("test-cluster-serve-svc listens on 0.0.0.0" in w for w in warnings), warnings
    assert any("test-cluster-head-svc (Ray's dashboard" in w for w in warnings), warnings
    assert refused.status_code == 400
    assert "serviceType: unknown type 'Nodeport'" in refused.json()["message"]


def test_fields_without_meaning_here_are_named_in_a_warning(api: Api) -> None:
    api.seed_template()

    response = api.client.post(CLUSTERS, json=SEED_CLUSTER)

    assert response.status_code == 200
    [warning] = response.headers.get_list("warning")
    assert warning.startswith('299 - "accepted, with no effect on the local backend: ')
    assert "spec.headGroupSpec.rayStartParams.dashboard-host" in warning
    assert "spec.workerGroupSpecs[0].rayStartParams.node-ip-address" in warning
    # honoured on the head of a standalone cluster, so not named
    assert "metrics-export-port" not in warning
