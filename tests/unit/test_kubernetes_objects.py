"""The Kubernetes objects a manifest becomes: what makes them ours, what the controller decides in
them, and that a Kubernetes cluster with KubeRay and the Gateway API would take every one (strict
schemas; see kube_schemas)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from rayservice.kubernetes.gateway import gateway_problem, http_route
from rayservice.kubernetes.labels import Label
from rayservice.kubernetes.objects import cluster_objects, kubernetes_problems, service_objects
from rayservice.kubernetes.raycluster import ray_cluster
from rayservice.kubernetes.services import head_service, serve_service
from rayservice.planner.cluster import cluster_name, cluster_request, service_cluster_request
from rayservice.spec.cluster_request import ClusterRequest
from rayservice.spec.loader import load_manifest
from rayservice.spec.manifest import RayCluster, RayService
from rayservice.spec.vocabulary import Backend
from tests.unit.kube_schemas import problems

REPO = Path(__file__).resolve().parents[2]
CLUSTER = "svc-raycluster-abcde"
SERVE_CONFIG = "applications:\n  - {name: app, route_prefix: /, import_path: app:graph}\n"


def container(name: str, *ports: tuple[str, int]) -> dict[str, Any]:
    found: dict[str, Any] = {"name": name, "image": "rayproject/ray:2.60.0"}
    if ports:
        found["ports"] = [{"name": n, "containerPort": p} for n, p in ports]
    return found


def document(**spec_changes: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "serveConfigV2": SERVE_CONFIG,
        "rayClusterConfig": {
            "headGroupSpec": {
                "rayStartParams": {},
                "template": {"spec": {"containers": [container("ray-head")]}},
            },
            "workerGroupSpecs": [
                {
                    "groupName": "small",
                    "replicas": 2,
                    "maxReplicas": 4,
                    "rayStartParams": {},
                    "template": {"spec": {"containers": [container("ray-worker")]}},
                }
            ],
        },
    }
    spec.update(spec_changes)
    return {
        "apiVersion": "ray.io/v1",
        "kind": "RayService",
        "metadata": {"name": "svc"},
        "spec": spec,
    }


def loaded(doc: dict[str, Any]) -> RayService:
    manifest = load_manifest(doc, "manifest.yaml", Backend.KUBERNETES)
    assert isinstance(manifest, RayService)
    return manifest


def request_of(service: RayService, name: str = CLUSTER) -> ClusterRequest:
    """The planner's request for a cluster ``name`` of ``service``."""
    spec = service.spec.rayClusterConfig
    return service_cluster_request(service, name, spec, "hash1", service.spec.serve_config())


def plain(obj: Any) -> Any:
    """As an API server receives it (JSON)."""
    return json.loads(json.dumps(obj))


def all_valid(objects: list[dict[str, Any]]) -> dict[str, list[str]]:
    return {f"{o['kind']}/{o['metadata']['name']}": problems(plain(o)) for o in objects}


def test_a_rayservice_becomes_a_raycluster_and_its_two_services_all_valid() -> None:
    objects = service_objects(loaded(document()), request_of(loaded(document())))

    assert [o["kind"] for o in objects] == ["RayCluster", "Service", "Service"]
    assert [o["metadata"]["name"] for o in objects] == [CLUSTER, "svc-head-svc", "svc-serve-svc"]
    assert all_valid(objects) == {name: [] for name in all_valid(objects)}


def test_the_raycluster_is_labelled_ours_and_never_like_a_kuberay_rayservices() -> None:
    built = ray_cluster(request_of(loaded(document())))

    labels = built["metadata"]["labels"]
    assert labels == {
        Label.MANAGED_BY: "rayservice",
        Label.OWNER_KIND: "RayService",
        Label.OWNER_NAME: "svc",
    }
    assert not [key for key in labels if key.startswith("ray.io/originated-from")]
    assert built["metadata"]["annotations"]["rayservice.io/spec-hash"] == "hash1"


def test_workers_get_a_serve_readiness_probe_and_the_head_waits_for_the_controller() -> None:
    spec = ray_cluster(request_of(loaded(document())))["spec"]

    head, worker = spec["headGroupSpec"]["template"], spec["workerGroupSpecs"][0]["template"]
    assert head["metadata"]["labels"] == {Label.SERVE: "false"}
    assert worker["metadata"]["labels"] == {Label.SERVE: "true"}
    command = worker["spec"]["containers"][0]["readinessProbe"]["exec"]["command"][-1]
    assert "http://localhost:8000/-/healthz" in command
    assert "http://localhost:52365/api/local_raylet_healthz" in command
    assert "readinessProbe" not in head["spec"]["containers"][0]  # KubeRay's own probe stays


def test_the_probe_asks_the_port_the_serve_config_gives_and_a_users_probe_stays() -> None:
    doc = document(serveConfigV2="http_options: {port: 9000}\n" + SERVE_CONFIG)
    worker = doc["spec"]["rayClusterConfig"]["workerGroupSpecs"][0]
    worker["rayStartParams"] = {"dashboard-agent-listen-port": "52400"}
    second = copy.deepcopy(worker)
    second["groupName"] = "own-probe"
    own_probe = {"tcpSocket": {"port": 9000}}
    second["template"]["spec"]["containers"][0]["readinessProbe"] = own_probe
    doc["spec"]["rayClusterConfig"]["workerGroupSpecs"].append(second)

    groups = ray_cluster(request_of(loaded(doc)))["spec"]["workerGroupSpecs"]

    command = groups[0]["template"]["spec"]["containers"][0]["readinessProbe"]["exec"]["command"]
    assert ":9000/-/healthz" in command[-1] and ":52400/api/" in command[-1]
    assert groups[1]["template"]["spec"]["containers"][0]["readinessProbe"] == own_probe


def test_worker_counts_and_workers_to_delete_are_the_controllers_decision() -> None:
    request = request_of(loaded(document()))
    [workers] = request.workers
    fewer = request.model_copy(update={"workers": (workers.model_copy(update={"replicas": 1}),)})

    asked = ray_cluster(request)["spec"]["workerGroupSpecs"][0]
    decided = ray_cluster(fewer, {"small": ["pod-1"]})["spec"]["workerGroupSpecs"][0]

    assert (asked["replicas"], asked["minReplicas"], asked["maxReplicas"]) == (2, 0, 4)
    assert "scaleStrategy" not in asked
    assert decided["replicas"] == 1
    assert decided["scaleStrategy"] == {"workersToDelete": ["pod-1"]}


def test_the_per_cluster_head_service_is_left_to_kuberay_to_name() -> None:
    doc = document()
    head = doc["spec"]["rayClusterConfig"]["headGroupSpec"]
    head["headService"] = {"metadata": {"name": "fixed", "annotations": {"a": "b"}}}

    built = ray_cluster(request_of(loaded(doc)))["spec"]["headGroupSpec"]["headService"]

    assert built == {"metadata": {"annotations": {"a": "b"}}}


def test_each_fault_tolerant_cluster_keeps_its_gcs_state_in_a_namespace_of_its_own() -> None:
    options = {
        "redisAddress": "redis:6379",
        "redisPassword": "secret",
        "externalStorageNamespace": "team",
    }
    cluster_config = document()["spec"]["rayClusterConfig"]
    cluster_config["gcsFaultToleranceOptions"] = options
    service = loaded(document(rayClusterConfig=cluster_config))

    first = ray_cluster(request_of(service, "svc-raycluster-aaaaa"))
    second = ray_cluster(request_of(service, "svc-raycluster-bbbbb"))

    built = first["spec"]["gcsFaultToleranceOptions"]
    assert built["externalStorageNamespace"] == "team-svc-raycluster-aaaaa"
    assert second["spec"]["gcsFaultToleranceOptions"]["externalStorageNamespace"] == (
        "team-svc-raycluster-bbbbb"
    )
    assert built["redisPassword"] == {"value": "secret"}  # KubeRay takes only this form
    assert problems(plain(first)) == []


def test_fault_tolerance_by_annotation_is_passed_on_as_kuberays_annotations() -> None:
    doc = document()
    head = doc["spec"]["rayClusterConfig"]["headGroupSpec"]["template"]
    head["metadata"] = {"annotations": {"ray.io/ft-enabled": "true"}}
    head["spec"]["containers"][0]["env"] = [{"name": "RAY_REDIS_ADDRESS", "value": "redis:6379"}]

    annotations = ray_cluster(request_of(loaded(doc)))["metadata"]["annotations"]

    assert annotations["ray.io/ft-enabled"] == "true"
    assert annotations["ray.io/external-storage-namespace"] == CLUSTER


def test_services_select_the_active_cluster_with_the_ports_derived_as_locally() -> None:
    doc = document()
    head = doc["spec"]["rayClusterConfig"]["headGroupSpec"]["template"]["spec"]
    head["containers"][0] = container("ray-head", ("dashboard", 8266), ("serve", 8001))
    service = loaded(doc)

    head_svc, serve_svc = head_service(service, CLUSTER), serve_service(service, CLUSTER)

    assert head_svc["spec"]["selector"] == {Label.CLUSTER: CLUSTER, Label.NODE_TYPE: "head"}
    assert serve_svc["spec"]["selector"] == {Label.CLUSTER: CLUSTER, Label.SERVE: "true"}
    assert {p["name"]: p["port"] for p in head_svc["spec"]["ports"]} == {
        "dashboard": 8266,
        "serve": 8001,
        "metrics": 8080,
    }
    assert [(p["port"], p["targetPort"]) for p in serve_svc["spec"]["ports"]] == [(8001, 8000)]


def test_a_head_container_without_ports_gets_kuberays_default_head_ports() -> None:
    ports = head_service(loaded(document()), CLUSTER)["spec"]["ports"]

    assert sorted(p["name"] for p in ports) == sorted(
        ["client", "gcs-server", "dashboard", "metrics", "serve"]
    )


def test_the_serve_service_keeps_what_spec_serve_service_says_but_selects_our_pods() -> None:
    given = {
        "metadata": {"name": "public", "labels": {"team": "a"}, "annotations": {"x": "y"}},
        "spec": {
            "type": "LoadBalancer",
            "ports": [{"name": "serve", "port": 80}],
            "selector": {"app": "mine"},
        },
    }
    built = serve_service(loaded(document(serveService=given)), CLUSTER)

    assert built["metadata"]["name"] == "public"
    assert built["metadata"]["labels"]["team"] == "a"
    assert built["metadata"]["annotations"] == {"x": "y"}
    assert built["spec"]["type"] == "LoadBalancer"
    assert built["spec"]["ports"] == [{"name": "serve", "port": 80, "targetPort": 8000}]
    assert built["spec"]["selector"] == {Label.CLUSTER: CLUSTER, Label.SERVE: "true"}
    assert problems(plain(built)) == []


def incremental(**options: Any) -> dict[str, Any]:
    strategy = {
        "type": "NewClusterWithIncrementalUpgrade",
        "clusterUpgradeOptions": {"maxSurgePercent": 50, "stepSizePercent": 25,
                                  "intervalSeconds": 10, **options},
    }  # fmt: skip
    return document(upgradeStrategy=strategy)


def test_an_incremental_service_is_reached_through_a_gateway_with_weighted_routes() -> None:
    service = loaded(incremental(gatewayClassName="istio"))

    objects = service_objects(service, request_of(service))
    route = http_route(service, [(CLUSTER, 70), ("svc-raycluster-bbbbb", 30)])

    kinds = [(o["kind"], o["metadata"]["name"]) for o in objects]
    assert kinds[3:] == [
        ("Service", f"{CLUSTER}-serve-svc"),
        ("Gateway", "svc-gateway"),
        ("HTTPRoute", "svc-httproute"),
    ]
    assert objects[4]["spec"]["gatewayClassName"] == "istio"
    backends = route["spec"]["rules"][0]["backendRefs"]
    assert [(b["name"], b["weight"]) for b in backends] == [
        (f"{CLUSTER}-serve-svc", 70),
        ("svc-raycluster-bbbbb-serve-svc", 30),
    ]
    assert all_valid([*objects, route]) == {name: [] for name in all_valid([*objects, route])}


def test_an_incremental_service_without_a_gateway_class_is_refused_on_kubernetes() -> None:
    problem = gateway_problem(loaded(incremental()), "manifest.yaml")

    assert problem is not None
    assert problem.field == "spec.upgradeStrategy.clusterUpgradeOptions.gatewayClassName"
    assert "GatewayClass" in problem.valid
    assert gateway_problem(loaded(document()), "manifest.yaml") is None


def test_fault_tolerance_without_a_redis_address_is_refused_on_kubernetes() -> None:
    cluster_config = document()["spec"]["rayClusterConfig"]
    cluster_config["gcsFaultToleranceOptions"] = {}  # the local backend runs a Redis for it

    [problem] = kubernetes_problems(loaded(document(rayClusterConfig=cluster_config)), "m.yaml")

    assert problem.field == "spec.rayClusterConfig.gcsFaultToleranceOptions.redisAddress"


def test_a_standalone_raycluster_is_itself_with_our_labels_added() -> None:
    doc = {
        "apiVersion": "ray.io/v1",
        "kind": "RayCluster",
        "metadata": {
            "name": "c",
            "labels": {"team": "a"},
            "annotations": {"ray.io/enable-serve-service": "true"},
        },
        "spec": copy.deepcopy(document()["spec"]["rayClusterConfig"]),
    }
    manifest = load_manifest(doc, "m.yaml", Backend.KUBERNETES)
    assert isinstance(manifest, RayCluster)
    request = cluster_request(
        "c",
        manifest.key,
        manifest.spec,
        "hash1",
        annotations=manifest.metadata.annotations,
        standalone_labels=manifest.metadata.labels,
    )

    [built] = cluster_objects(request)

    assert built["metadata"]["labels"]["team"] == "a"
    assert built["metadata"]["labels"][Label.OWNER_KIND] == "RayCluster"
    assert built["metadata"]["annotations"]["ray.io/enable-serve-service"] == "true"
    head = built["spec"]["headGroupSpec"]["template"]
    assert "metadata" not in head  # no serve labels: KubeRay's serve Service selects the cluster
    assert problems(plain(built)) == []


def test_the_longest_service_name_gives_a_raycluster_name_kuberay_takes() -> None:
    doc = document()
    doc["metadata"]["name"] = "s" * 47
    service = loaded(doc)

    objects = service_objects(service, request_of(service, cluster_name(service, "uid", 1)))

    assert len(objects[0]["metadata"]["name"]) == 53
    assert all_valid(objects) == {name: [] for name in all_valid(objects)}


def repo_samples() -> list[Path]:
    return sorted((REPO / "samples").glob("*.yaml"))


@pytest.mark.parametrize("path", repo_samples(), ids=lambda p: p.name)
def test_every_sample_of_the_repository_renders_to_valid_objects(path: Path) -> None:
    from rayservice.cli.render import rendered

    objects = rendered(path.read_text(), str(path))

    assert any(o["kind"] == "RayCluster" for o in objects)
    assert all_valid(objects) == {name: [] for name in all_valid(objects)}


def test_a_head_port_is_never_listed_twice_under_two_names() -> None:
    doc = document()
    head = doc["spec"]["rayClusterConfig"]["headGroupSpec"]["template"]["spec"]
    head["containers"][0] = container("ray-head", ("dash", 8265), ("prom", 8080))

    ports = head_service(loaded(doc), CLUSTER)["spec"]["ports"]

    assert sorted((p["name"], p["port"]) for p in ports) == [("dash", 8265), ("prom", 8080)]


def test_a_redis_address_kubernetes_resolves_from_a_secret_is_one() -> None:
    doc = document()
    head = doc["spec"]["rayClusterConfig"]["headGroupSpec"]["template"]
    head["metadata"] = {"annotations": {"ray.io/ft-enabled": "true"}}
    reference = {"secretKeyRef": {"name": "redis", "key": "address"}}
    head["spec"]["containers"][0]["env"] = [{"name": "RAY_REDIS_ADDRESS", "valueFrom": reference}]

    assert kubernetes_problems(loaded(doc), "m.yaml") == []
