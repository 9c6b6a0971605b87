"""The controller on the Kubernetes backend: the real reconciler and planner with the Kubernetes
provider and front, over the fake API and over lightkube against the emulated API server (every
scenario on both), the test acting as KubeRay's operator and the kubelet (pods for each
RayCluster's groups, labelled and ready; its head Service; proxies that answer) and as Ray Serve
(apps RUNNING once a config is deployed)."""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from rayservice.controller.process import owners_in
from rayservice.controller.reconciler import Reconciler
from rayservice.kubeapi.base import KubernetesApi
from rayservice.kubeapi.fake import FakeKubernetesApi
from rayservice.kubeapi.lightkube_api import LightkubeApi
from rayservice.kubernetes.kinds import HTTP_ROUTE, POD, RAY_CLUSTER, SERVICE, Kind
from rayservice.planner.actions import Plan
from rayservice.providers.kubernetes import KubernetesProvider
from rayservice.serve_client.fake import FakeServeClient, running_state
from rayservice.spec.events import ObjectKind
from rayservice.spec.references import as_written
from rayservice.spec.service_exposure import ExposureSettings
from rayservice.spec.status import RayServiceStatus
from rayservice.spec.vocabulary import KIND, Backend, ConditionStatus, ConditionType
from rayservice.store.sqlite import SqliteStore
from rayservice.traffic.kubernetes import KubernetesFront
from tests.kube_emulator import RunningApiServer
from tests.unit.world import NAME, NAMESPACE, FakeClock, sample_manifest

CONTROLLER = "alice-laptop"


class Cluster:
    """A Kubernetes API (the fake, or lightkube's against the emulated API server), the test as
    KubeRay's operator and the kubelet over it, and what was applied to the serve Service and
    the route, in turn."""

    def __init__(self, api: KubernetesApi, answers: dict[tuple[str, str, int, str], str]) -> None:
        self.api = api
        self.answers = answers  # what pods answer through the API server's proxy
        self.serve_selectors: list[str] = []
        self.weights: list[tuple[int, ...]] = []

    # -- the KubernetesApi, recording --------------------------------------------------------

    def apply(self, obj: dict[str, Any]) -> dict[str, Any]:
        if obj["kind"] == "Service" and obj["metadata"]["name"] == f"{NAME}-serve-svc":
            self.serve_selectors.append(obj["spec"]["selector"]["ray.io/cluster"])
        if obj["kind"] == "HTTPRoute":
            refs = obj["spec"]["rules"][0]["backendRefs"]
            self.weights.append(tuple(ref["weight"] for ref in refs))
        return self.api.apply(obj)

    def get(self, kind: Kind, namespace: str, name: str) -> dict[str, Any] | None:
        return self.api.get(kind, namespace, name)

    def select(
        self, kind: Kind, namespace: str | None, labels: Mapping[str, str] | None = None
    ) -> list[dict[str, Any]]:
        return self.api.select(kind, namespace, labels)

    def set_labels(self, kind: Kind, namespace: str, name: str, labels: Mapping[str, str]) -> None:
        self.api.set_labels(kind, namespace, name, labels)

    def delete(self, kind: Kind, namespace: str, name: str) -> None:
        self.api.delete(kind, namespace, name)

    def pod_logs(self, namespace: str, pod: str, container: str, tail: int) -> str:
        return self.api.pod_logs(namespace, pod, container, tail)

    def proxy_get(self, namespace: str, pod: str, port: int, path: str) -> str | None:
        return self.api.proxy_get(namespace, pod, port, path)

    def service_url(self, namespace: str, service: str, port: str) -> str:
        return self.api.service_url(namespace, service, port)

    def missing_permissions(self, namespace: str) -> list[str]:
        return self.api.missing_permissions(namespace)

    def crd_installed(self, name: str) -> bool:
        return self.api.crd_installed(name)

    # -- KubeRay -------------------------------------------------------------------------------

    def kuberay_acts(self) -> None:
        """Pods and a head Service for every RayCluster; none for one deleted."""
        clusters = {c["metadata"]["name"]: c for c in self.api.select(RAY_CLUSTER, NAMESPACE)}
        for kind in (POD, SERVICE):
            for obj in self.api.select(kind, NAMESPACE):
                owner = (obj["metadata"].get("labels") or {}).get("ray.io/cluster")
                if owner is not None and owner not in clusters:
                    self.api.delete(kind, NAMESPACE, obj["metadata"]["name"])
        for name, cluster in clusters.items():
            self._head_service(name)
            autoscaled = bool(cluster["spec"].get("enableInTreeAutoscaling"))
            self._pod(name, "headgroup", 0, cluster["spec"]["headGroupSpec"], autoscaled)
            for group in cluster["spec"].get("workerGroupSpecs") or []:
                for index in range(group.get("replicas", 0)):
                    self._pod(name, group["groupName"], index, group)

    def autoscaler_asks(self, cluster: str, replicas: int) -> None:
        """KubeRay's autoscaler patching the RayCluster's first worker group."""
        found = self.api.get(RAY_CLUSTER, NAMESPACE, cluster)
        assert found is not None
        found["spec"]["workerGroupSpecs"][0]["replicas"] = replicas
        self.api.apply({k: v for k, v in found.items() if k != "status"})

    def _head_service(self, cluster: str) -> None:
        labels = {"ray.io/cluster": cluster, "ray.io/node-type": "head"}
        metadata = {"name": f"{cluster}-head-svc", "namespace": NAMESPACE, "labels": labels}
        ports = [{"name": "dashboard", "port": 8265}]
        self.api.apply(
            {"apiVersion": "v1", "kind": "Service", "metadata": metadata, "spec": {"ports": ports}}
        )

    def _pod(
        self, cluster: str, group: str, index: int, spec: dict[str, Any], autoscaled: bool = False
    ) -> None:
        """A ready pod; a head with KubeRay's autoscaler beside it when the cluster asks."""
        head = group == "headgroup"
        name = f"{cluster}-head" if head else f"{cluster}-{group}-worker-{index}"
        if self.api.get(POD, NAMESPACE, name) is not None:
            return
        labels = {
            **(spec["template"].get("metadata", {}).get("labels") or {}),
            "ray.io/cluster": cluster,
            "ray.io/node-type": "head" if head else "worker",
            "ray.io/group": group,
        }
        container = spec["template"]["spec"]["containers"][0]["name"]
        self.api.apply(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": name, "namespace": NAMESPACE, "labels": labels},
                "spec": {"containers": [{"name": container}]},
                "status": {
                    "phase": "Running",
                    "conditions": [{"type": "Ready", "status": "True"}],
                    "containerStatuses": [
                        {"name": "autoscaler", "state": {"running": {}}}
                    ] if autoscaled else [],
                },
            }
        )  # fmt: skip
        if head:
            self.answers[NAMESPACE, name, 8000, "/-/healthz"] = "success"


class Controller:
    def __init__(
        self, store: SqliteStore, api: Cluster, serve: FakeServeClient, clock: FakeClock
    ) -> None:
        self.store, self.api, self.serve, self.clock = store, api, serve, clock
        self.provider = KubernetesProvider(api, CONTROLLER)
        front = KubernetesFront(api, owners_in(store), CONTROLLER)
        self.reconciler = Reconciler(
            store, self.provider, serve, front, lambda port, address: True, clock,
            jitter=lambda: 0.0, exposure=ExposureSettings(backend=Backend.KUBERNETES),
            resolve=as_written,
        )  # fmt: skip

    def reconcile(self) -> Plan[RayServiceStatus]:
        self.clock.now += 1
        resource = self.store.get(KIND, NAMESPACE, NAME)
        assert resource is not None
        plan: Plan[RayServiceStatus] = self.reconciler.reconcile(resource)  # type: ignore[assignment]
        return plan

    def serve_runs_what_it_was_given(self) -> None:
        for name in self.provider.clusters():
            observed = self.provider.observe(name)
            assert observed is not None
            deployed = self.serve.last_deployed(observed.dashboard_url)
            if deployed is not None:
                self.serve.set_state(observed.dashboard_url, running_state(deployed))

    def settle(self, passes: int = 6) -> Plan[RayServiceStatus]:
        plan = self.reconcile()
        for _ in range(passes):
            self.api.kuberay_acts()
            self.serve_runs_what_it_was_given()
            plan = self.reconcile()
        return plan


@pytest.fixture
def emulated() -> Iterator[RunningApiServer]:
    """A fresh API server per test: kmock keeps every request and object version it saw."""
    running = RunningApiServer()
    yield running
    running.stop()


@pytest.fixture(params=["fake", "emulated"])
def cluster(request: pytest.FixtureRequest, emulated: RunningApiServer, tmp_path: Path) -> Cluster:
    """The test's Kubernetes: the fake API, or lightkube against the emulated API server."""
    if request.param == "fake":
        fake = FakeKubernetesApi()
        return Cluster(fake, fake.answers)
    server = emulated.server
    assert server is not None
    config = tmp_path / "kubeconfig"
    config.write_text(yaml.safe_dump(emulated.kubeconfig()))
    return Cluster(LightkubeApi(config), server.answers)


@pytest.fixture
def world(tmp_path: Path, cluster: Cluster) -> Controller:
    clock = FakeClock()
    return Controller(SqliteStore(tmp_path / "state.db"), cluster, FakeServeClient(clock), clock)


def ready(plan: Plan[RayServiceStatus]) -> bool:
    return any(
        c.type == ConditionType.READY and c.status == ConditionStatus.TRUE
        for c in plan.status.conditions
    )


def clusters_selected(api: Cluster) -> list[str]:
    """The clusters the serve Service selected, in turn (before any, it selects none)."""
    turns: list[str] = []
    for cluster in api.serve_selectors:
        if cluster and (not turns or turns[-1] != cluster):
            turns.append(cluster)
    return turns


def ray_clusters(api: Cluster) -> list[str]:
    return sorted(c["metadata"]["name"] for c in api.select(RAY_CLUSTER, NAMESPACE))


def test_apply_brings_a_service_up_on_kuberays_pods(world: Controller) -> None:
    world.store.apply(KIND, sample_manifest(), "sample", world.clock())

    plan = world.settle()

    [cluster] = ray_clusters(world.api)
    assert ready(plan)
    assert world.api.serve_selectors[-1] == cluster
    head = world.api.get(POD, NAMESPACE, f"{cluster}-head")
    assert head is not None and head["metadata"]["labels"]["ray.io/serve"] == "true"
    deployed = world.serve.last_deployed(world.provider.observe(cluster).dashboard_url)  # type: ignore[union-attr]
    assert deployed is not None and deployed["http_options"]["host"] == "0.0.0.0"


def test_a_serve_config_change_updates_in_place(world: Controller) -> None:
    world.store.apply(KIND, sample_manifest(), "sample", world.clock())
    world.settle()
    [cluster] = ray_clusters(world.api)

    def cheaper(config: dict[str, Any]) -> None:
        config["applications"][0]["deployments"][0]["user_config"]["price"] = 4

    world.store.apply(KIND, sample_manifest(cheaper), "sample", world.clock())
    plan = world.settle()

    assert ray_clusters(world.api) == [cluster]  # no new RayCluster
    assert ready(plan)
    url = world.provider.observe(cluster).dashboard_url  # type: ignore[union-attr]
    deployed = world.serve.last_deployed(url)
    assert deployed is not None
    assert deployed["applications"][0]["deployments"][0]["user_config"]["price"] == 4


def new_cluster_spec() -> dict[str, Any]:
    document = sample_manifest()
    head = document["spec"]["rayClusterConfig"]["headGroupSpec"]
    head["rayStartParams"]["num-cpus"] = "2"
    return document


def upgrade_asked(world: Controller) -> str:
    """The sample up on its first cluster, then a cluster change applied; that cluster's name."""
    world.store.apply(KIND, sample_manifest(), "sample", world.clock())
    world.settle()
    [old] = ray_clusters(world.api)
    world.store.apply(KIND, new_cluster_spec(), "sample", world.clock())
    return old


def test_a_cluster_change_moves_the_services_once_and_retires_the_old_cluster(
    world: Controller,
) -> None:
    old = upgrade_asked(world)

    plan = world.settle()

    [new] = [name for name in ray_clusters(world.api) if name != old]
    assert ready(plan)
    moves = clusters_selected(world.api)
    assert moves == [old, new]  # flipped exactly once
    assert old in ray_clusters(world.api)  # kept for rayClusterDeletionDelaySeconds

    world.clock.now += 61
    world.settle(passes=2)

    assert ray_clusters(world.api) == [new]
    assert world.api.get(POD, NAMESPACE, f"{old}-head") is None


def test_a_restarted_controller_mid_upgrade_makes_no_second_cluster_nor_flip(
    world: Controller,
) -> None:
    old = upgrade_asked(world)
    world.reconcile()  # the pending RayCluster is asked for
    pending = ray_clusters(world.api)

    restarted = Controller(world.store, world.api, world.serve, world.clock)
    plan = restarted.settle()

    assert len(pending) == 2
    assert ray_clusters(world.api) == pending  # the same two: no duplicate
    [new] = [name for name in pending if name != old]
    moves = clusters_selected(world.api)
    assert moves == [old, new]
    assert ready(plan)


def test_the_raycluster_carries_no_secret_value(world: Controller) -> None:
    document = copy.deepcopy(sample_manifest())
    head = document["spec"]["rayClusterConfig"]["headGroupSpec"]["template"]["spec"]
    reference = {"secretKeyRef": {"name": "tokens", "key": "hf"}}
    head["containers"][0]["env"] = [{"name": "HF_TOKEN", "valueFrom": reference}]
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "tokens"},
              "data": {"hf": "aHVudGVyMg=="}}  # fmt: skip
    world.store.apply(ObjectKind.SECRET, secret, "secret", world.clock())
    world.store.apply(KIND, document, "sample", world.clock())

    world.settle()

    [cluster] = ray_clusters(world.api)
    applied = world.api.get(RAY_CLUSTER, NAMESPACE, cluster)
    assert applied is not None
    env = applied["spec"]["headGroupSpec"]["template"]["spec"]["containers"][0]["env"]
    assert env == [{"name": "HF_TOKEN", "valueFrom": reference}]


def incremental(document: dict[str, Any]) -> dict[str, Any]:
    document["spec"]["upgradeStrategy"] = {
        "type": "NewClusterWithIncrementalUpgrade",
        "clusterUpgradeOptions": {"gatewayClassName": "istio", "stepSizePercent": 50,
                                  "intervalSeconds": 5, "maxSurgePercent": 100},
    }  # fmt: skip
    return document


def test_an_incremental_upgrade_steps_the_routes_weights(world: Controller) -> None:
    clock, api = world.clock, world.api
    world.store.apply(KIND, incremental(sample_manifest()), "sample", clock())
    world.settle()
    [old] = ray_clusters(api)

    world.store.apply(KIND, incremental(new_cluster_spec()), "sample", clock())
    for _ in range(12):
        clock.now += 5
        plan = world.settle(passes=1)

    applied = [w for w in api.weights if w]  # before the first cluster, a route to none
    steps = [w for i, w in enumerate(applied) if i == 0 or w != applied[i - 1]]
    assert steps[0] == (100,)  # the old cluster alone
    assert (50, 50) in steps  # a step on the way
    assert steps[-1] == (100,)  # the new cluster alone
    assert ready(plan)
    route = api.get(HTTP_ROUTE, NAMESPACE, f"{NAME}-httproute")
    assert route is not None
    [backend] = route["spec"]["rules"][0]["backendRefs"]
    assert backend["name"] != f"{old}-serve-svc"


def test_going_back_to_the_running_spec_mid_upgrade_drops_the_pending_cluster(
    world: Controller,
) -> None:
    old = upgrade_asked(world)
    world.reconcile()  # the pending RayCluster is asked for
    assert len(ray_clusters(world.api)) == 2

    world.store.apply(KIND, sample_manifest(), "sample", world.clock())  # A -> B -> A
    plan = world.settle()

    assert ray_clusters(world.api) == [old]
    assert clusters_selected(world.api) == [old]  # never moved
    assert ready(plan)


def test_a_pending_cluster_that_never_serves_is_given_up(world: Controller) -> None:
    document = new_cluster_spec()
    document["spec"]["pendingClusterTimeoutSeconds"] = 30
    original = sample_manifest()
    original["spec"]["pendingClusterTimeoutSeconds"] = 30
    world.store.apply(KIND, original, "sample", world.clock())
    world.settle()
    [old] = ray_clusters(world.api)
    world.store.apply(KIND, document, "sample", world.clock())
    world.reconcile()
    [new] = [name for name in ray_clusters(world.api) if name != old]

    world.clock.now += 31  # KubeRay never makes its pods
    plan = world.reconcile()
    world.reconcile()

    assert clusters_selected(world.api) == [old]
    upgrading = next(
        c for c in plan.status.conditions if c.type == ConditionType.UPGRADE_IN_PROGRESS
    )
    assert upgrading.reason == "PendingClusterTimedOut"
    assert new not in ray_clusters(world.api)  # the pending one is deleted
    assert ray_clusters(world.api) == [old]


def autoscaled_and_one_more_worker_asked(world: Controller) -> tuple[dict[str, Any], str, int]:
    """The sample with Ray's autoscaler, up; then KubeRay's autoscaler asks for one more worker
    of its first group. The manifest, its cluster and the count asked."""
    document = sample_manifest()
    document["spec"]["rayClusterConfig"]["enableInTreeAutoscaling"] = True
    world.store.apply(KIND, document, "sample", world.clock())
    world.settle()
    [cluster] = ray_clusters(world.api)
    applied = world.api.get(RAY_CLUSTER, NAMESPACE, cluster)
    assert applied is not None
    asked = applied["spec"]["workerGroupSpecs"][0]["replicas"] + 1
    world.api.autoscaler_asks(cluster, asked)
    return document, cluster, asked


def test_kuberays_autoscaler_decides_the_worker_counts_and_is_not_fought(
    world: Controller,
) -> None:
    _, cluster, wanted = autoscaled_and_one_more_worker_asked(world)

    world.settle(passes=3)
    plan = world.reconcile()

    applied = world.api.get(RAY_CLUSTER, NAMESPACE, cluster)
    assert applied is not None
    assert applied["spec"]["workerGroupSpecs"][0]["replicas"] == wanted  # kept
    workers = world.provider.observe(cluster).workers  # type: ignore[union-attr]
    assert len(workers) == wanted  # KubeRay made them
    assert not plan.actions  # nothing left to do: the controller wants what it asked
    assert world.reconciler.settled(KIND, NAMESPACE, NAME) is not None  # a quiet pass, too


def test_a_worker_group_added_to_an_autoscaled_cluster_reaches_it_in_place(
    world: Controller,
) -> None:
    document, cluster, asked = autoscaled_and_one_more_worker_asked(world)
    world.settle(passes=2)
    groups = document["spec"]["rayClusterConfig"]["workerGroupSpecs"]
    groups.append({**copy.deepcopy(groups[0]), "groupName": "large", "replicas": 0})

    world.store.apply(KIND, document, "sample", world.clock())
    world.settle(passes=3)
    plan = world.reconcile()

    assert ray_clusters(world.api) == [cluster]  # in place
    applied = world.api.get(RAY_CLUSTER, NAMESPACE, cluster)
    assert applied is not None
    first, added = applied["spec"]["workerGroupSpecs"]
    assert first["replicas"] == asked  # the autoscaler's count stands
    assert added["groupName"] == "large"
    assert not plan.actions
