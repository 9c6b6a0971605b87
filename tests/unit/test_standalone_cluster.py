"""A standalone RayCluster through the reconciler and the fakes: its one cluster, its fronts,
its status, spec changes under each upgradeStrategy, suspend and deletion."""

from __future__ import annotations

import copy
import re
import socket
from pathlib import Path
from typing import Any

import pytest

from rayservice.api import admission
from rayservice.cli.describe_pages import describe_raycluster
from rayservice.controller.reconciler import Reconciler
from rayservice.planner.actions import DeleteCluster, EnsureCluster, EnsureFront
from rayservice.planner.pod_readiness import DASHBOARD_CHECK, REGISTERED_CHECK
from rayservice.providers.fake import FakeProvider
from rayservice.providers.local import PORT_OF_OPTION
from rayservice.serve_client.fake import FakeServeClient
from rayservice.spec.errors import InvalidSpec
from rayservice.spec.events import ObjectKind
from rayservice.spec.ignored import FIXED_PORT_PARAMS, ignored_fields
from rayservice.spec.manifest import RayCluster
from rayservice.spec.service_exposure import DEFAULT_EXPOSURE
from rayservice.spec.status import RayClusterStatus
from rayservice.spec.vocabulary import ClusterState, ConditionStatus, ConditionType, EventReason
from rayservice.store.base import StoredResource
from rayservice.store.sqlite import SqliteStore
from rayservice.traffic.fake import FakeFront
from tests.unit.world import FakeClock, new_reconciler, sample_manifest

CLUSTER = ObjectKind.RAY_CLUSTER
NAME, NAMESPACE = "test-cluster", "default"


def cluster_manifest(*, serve: bool = False, **spec: object) -> dict[str, Any]:
    annotations = {"ray.io/enable-serve-service": "true"} if serve else {}
    return {
        "apiVersion": "ray.io/v1",
        "kind": "RayCluster",
        "metadata": {"name": NAME, "namespace": NAMESPACE, "annotations": annotations},
        "spec": {
            "headGroupSpec": {"rayStartParams": {"num-cpus": "1"}},
            "workerGroupSpecs": [
                {"groupName": "small-wg", "replicas": 1, "minReplicas": 0, "maxReplicas": 5}
            ],
            **spec,
        },
    }


class Cluster:
    def __init__(self, tmp_path: Path) -> None:
        self.store = SqliteStore(tmp_path / "state.db")
        self.clock = FakeClock()
        self.provider = FakeProvider(clock=self.clock)
        self.front = FakeFront()
        self.reconciler: Reconciler = new_reconciler(
            self.store, self.provider, FakeServeClient(), self.front, self.clock
        )

    def apply(self, document: dict[str, Any]) -> StoredResource:
        return admission.admit(
            self.store, document, "cluster.yaml", Path.cwd(), Path("/nonexistent"),
            self.clock(), may_read_local_paths=True, exposure=DEFAULT_EXPOSURE,
        )  # fmt: skip

    def resource(self) -> StoredResource:
        resource = self.store.get(CLUSTER, NAMESPACE, NAME)
        assert resource is not None
        return resource

    def reconcile(self) -> Any:
        self.clock.now += 1
        return self.reconciler.reconcile(self.resource())

    def status(self) -> RayClusterStatus:
        return RayClusterStatus.model_validate(self.resource().status)

    def reasons(self) -> list[str]:
        return [e.reason for e in self.store.events(NAMESPACE, NAME)]


@pytest.fixture
def cluster(tmp_path: Path) -> Cluster:
    return Cluster(tmp_path)


def test_a_cluster_is_made_named_like_the_object_with_a_head_service_only(cluster: Cluster) -> None:
    cluster.apply(cluster_manifest())

    first = cluster.reconcile()

    ensure = next(a for a in first.actions if isinstance(a, EnsureCluster))
    assert ensure.request.name == NAME and ensure.request.owner == f"{NAMESPACE}/{NAME}"
    [front] = [a for a in first.actions if isinstance(a, EnsureFront)]
    assert front.spec.serve_port == 0 and not front.spec.has_serve
    assert cluster.status().state == ClusterState.PROVISIONING
    services = [v.name for v in cluster.store.views(ObjectKind.SERVICE)]
    assert services == [f"{NAME}-head-svc"]


def test_the_cluster_is_ready_once_head_and_workers_run(cluster: Cluster) -> None:
    cluster.apply(cluster_manifest())
    cluster.reconcile()
    cluster.provider.make_ready(NAME)

    cluster.reconcile()

    status = cluster.status()
    assert status.state == ClusterState.READY
    assert (status.desiredWorkerReplicas, status.availableWorkerReplicas) == (1, 1)
    head = status.condition(ConditionType.HEAD_POD_READY)
    provisioned = status.condition(ConditionType.RAY_CLUSTER_PROVISIONED)
    assert head is not None and head.status == ConditionStatus.TRUE
    assert provisioned is not None and provisioned.status == ConditionStatus.TRUE
    assert status.endpoints["dashboard"] == str(cluster.resource().record["dashboard_port"])
    assert status.head.serviceName == f"{NAME}-head-svc"
    pods = {v.name: v.doc for v in cluster.store.views(ObjectKind.POD)}
    # a standalone cluster's worker is ready once it joined, Serve proxy or not
    assert all(doc["status"]["containerStatuses"][0]["ready"] for doc in pods.values())
    checks = {doc["status"]["readinessCheck"]["check"] for doc in pods.values()}
    assert checks == {DASHBOARD_CHECK, REGISTERED_CHECK}
    [view] = cluster.store.views(ObjectKind.RAY_CLUSTER)
    page = describe_raycluster(view.doc, [])
    assert f"Owner:            {NAME} (standalone)" in page
    assert re.search(r"small-wg +1/1", page) and "Serve Applications:  <none>" in page
    assert "HeadPodReady" in page and "RayClusterProvisioned" in page


def test_the_serve_annotation_gives_a_serve_service_over_every_node(cluster: Cluster) -> None:
    cluster.apply(cluster_manifest(serve=True))
    cluster.reconcile()
    cluster.provider.make_ready(NAME)

    cluster.reconcile()

    observed = cluster.front.observe(f"{NAMESPACE}.{NAME}")
    assert observed is not None and observed.spec.serve_port >= 8000
    assert {b.name for b in observed.spec.serve_backends} == set(cluster.provider.node_names(NAME))
    services = sorted(v.name for v in cluster.store.views(ObjectKind.SERVICE))
    assert services == [f"{NAME}-head-svc", f"{NAME}-serve-svc"]
    assert cluster.status().endpoints["serve"] == str(observed.spec.serve_port)


def test_the_serve_service_comes_and_goes_with_the_annotation(cluster: Cluster) -> None:
    cluster.apply(cluster_manifest(serve=True))
    cluster.reconcile()
    first = cluster.resource().record["serve_port"]
    assert first >= 8000

    cluster.apply(cluster_manifest())
    cluster.reconcile()
    assert cluster.resource().record["serve_port"] == 0
    assert not cluster.store.port_is_held(first), "its port is given back"

    cluster.apply(cluster_manifest(serve=True))
    cluster.reconcile()
    assert cluster.resource().record["serve_port"] == first
    services = sorted(v.name for v in cluster.store.views(ObjectKind.SERVICE))
    assert services == [f"{NAME}-head-svc", f"{NAME}-serve-svc"]


def test_a_head_service_named_in_the_manifest_is_the_clusters(cluster: Cluster) -> None:
    head = {
        "rayStartParams": {"num-cpus": "1"},
        "headService": {"metadata": {"name": "my-head"}, "spec": {"type": "LoadBalancer"}},
    }
    cluster.apply(cluster_manifest(headGroupSpec=head))
    cluster.reconcile()
    cluster.provider.make_ready(NAME)

    cluster.reconcile()

    assert cluster.status().head.serviceName == "my-head"
    [service] = cluster.store.views(ObjectKind.SERVICE)
    assert (service.name, service.doc["spec"]["type"]) == ("my-head", "LoadBalancer")
    assert "externalIPs" not in service.doc["spec"], "head Services stay on loopback by default"


def test_a_cluster_whose_two_services_share_a_name_is_refused(cluster: Cluster) -> None:
    head = {
        "rayStartParams": {"num-cpus": "1"},
        "headService": {"metadata": {"name": f"{NAME}-serve-svc"}},
    }

    with pytest.raises(InvalidSpec) as refused:
        cluster.apply(cluster_manifest(serve=True, headGroupSpec=head))

    [problem] = refused.value.problems
    assert problem.field == "spec.headGroupSpec.headService.metadata.name"
    assert "also names its other Service" in problem.message


def test_a_stored_cluster_with_a_service_type_admission_now_refuses_still_runs(
    cluster: Cluster,
) -> None:
    document = cluster_manifest()
    document["spec"]["headGroupSpec"]["serviceType"] = "Nodeport"  # an earlier release took it
    cluster.store.apply(CLUSTER, document, "cluster.yaml", cluster.clock())

    cluster.reconcile()

    [service] = cluster.store.views(ObjectKind.SERVICE)
    assert service.doc["spec"]["type"] == "ClusterIP"


def test_a_spec_change_under_none_keeps_running_nodes_and_says_so(cluster: Cluster) -> None:
    cluster.apply(cluster_manifest())
    cluster.reconcile()
    cluster.provider.make_ready(NAME)
    cluster.reconcile()
    changed = cluster_manifest()
    changed["spec"]["headGroupSpec"]["rayStartParams"]["num-cpus"] = "2"
    cluster.apply(changed)

    result = cluster.reconcile()

    assert not any(isinstance(a, DeleteCluster) for a in result.actions)
    assert any(isinstance(a, EnsureCluster) for a in result.actions)
    assert EventReason.CLUSTER_SPEC_CHANGED in cluster.reasons()
    assert cluster.provider.clusters() == [NAME]


def test_a_spec_change_under_recreate_replaces_the_cluster(cluster: Cluster) -> None:
    recreate = {"type": "Recreate"}
    cluster.apply(cluster_manifest(upgradeStrategy=recreate))
    cluster.reconcile()
    cluster.provider.make_ready(NAME)
    cluster.reconcile()
    changed = cluster_manifest(upgradeStrategy=recreate)
    changed["spec"]["headGroupSpec"]["rayStartParams"]["num-cpus"] = "2"
    cluster.apply(changed)

    deleted = cluster.reconcile()
    created = cluster.reconcile()

    assert [a.event for a in deleted.actions if isinstance(a, DeleteCluster)] == [
        EventReason.CLUSTER_RECREATING
    ]
    assert any(isinstance(a, EnsureCluster) for a in created.actions)
    assert cluster.provider.request_of(NAME).head.num_cpus == 2


def test_suspend_stops_the_nodes_and_keeps_the_object(cluster: Cluster) -> None:
    cluster.apply(cluster_manifest())
    cluster.reconcile()
    cluster.apply(cluster_manifest(suspend=True))

    cluster.reconcile()

    assert cluster.provider.clusters() == []
    assert cluster.status().state == ClusterState.SUSPENDED


def test_deletion_removes_the_cluster_its_fronts_and_the_object(cluster: Cluster) -> None:
    cluster.apply(cluster_manifest(serve=True))
    cluster.reconcile()
    cluster.store.mark_deleting(CLUSTER, NAMESPACE, NAME)

    cluster.reconcile()

    assert cluster.provider.clusters() == []
    assert cluster.front.keys() == []
    assert cluster.store.get(CLUSTER, NAMESPACE, NAME) is None
    assert cluster.store.views(ObjectKind.SERVICE) == []


def test_a_raycluster_and_a_rayservice_may_not_share_a_name(cluster: Cluster) -> None:
    service = copy.deepcopy(sample_manifest())
    service["metadata"]["name"] = NAME
    cluster.apply(service)

    with pytest.raises(InvalidSpec, match="both would own the Services"):
        cluster.apply(cluster_manifest())
    assert cluster.store.get(CLUSTER, NAMESPACE, NAME) is None


def test_the_head_keeps_the_ports_its_ray_start_params_fix(cluster: Cluster) -> None:
    document = cluster_manifest()
    document["spec"]["headGroupSpec"]["rayStartParams"]["metrics-export-port"] = "18080"
    document["spec"]["workerGroupSpecs"][0]["rayStartParams"] = {"metrics-export-port": "18081"}
    manifest = RayCluster.model_validate(cluster.apply(document).manifest)

    first = cluster.reconcile()

    ensure = next(a for a in first.actions if isinstance(a, EnsureCluster))
    assert ensure.request.head.fixed_ports == {"metrics-export-port": 18080}
    assert all(group.fixed_ports == {} for group in ensure.request.workers)
    ignored = ignored_fields(manifest)
    assert "spec.headGroupSpec.rayStartParams.metrics-export-port" not in ignored
    assert "spec.workerGroupSpecs[0].rayStartParams.metrics-export-port" in ignored


def test_a_fixed_port_in_use_is_refused_unless_the_cluster_holds_it(cluster: Cluster) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        document = cluster_manifest()
        document["spec"]["headGroupSpec"]["rayStartParams"]["metrics-export-port"] = port

        with pytest.raises(InvalidSpec, match=f"port {port} on 127.0.0.1 is already in use"):
            cluster.apply(document)
        assert cluster.store.get(CLUSTER, NAMESPACE, NAME) is None

    cluster.apply(document)  # free now
    with socket.socket() as held_by_the_cluster:
        held_by_the_cluster.bind(("127.0.0.1", int(port)))
        held_by_the_cluster.listen()
        document["spec"]["workerGroupSpecs"][0]["replicas"] = 2
        assert cluster.apply(document).generation == 2  # the same fixed port: no check


def test_a_fixed_port_that_is_no_number_is_refused(cluster: Cluster) -> None:
    document = cluster_manifest()
    document["spec"]["headGroupSpec"]["rayStartParams"]["metrics-export-port"] = "eighty"

    with pytest.raises(InvalidSpec, match="metrics-export-port"):
        cluster.apply(document)


def test_the_local_provider_knows_every_port_a_head_may_fix() -> None:
    assert set(PORT_OF_OPTION) == FIXED_PORT_PARAMS
