"""The TrafficFront on Kubernetes: Services that select the active cluster (moved once, when the
controller asks), routes that weigh clusters in an incremental upgrade, and nothing left behind.
Against the fake API; the test plays KubeRay where pods are needed."""

from __future__ import annotations

from typing import Any

import pytest

from rayservice.controller.views import service_views
from rayservice.kubeapi.fake import FakeKubernetesApi
from rayservice.kubernetes.kinds import GATEWAY, HTTP_ROUTE, SERVICE
from rayservice.spec.errors import TemporaryError
from rayservice.spec.manifest import Manifest, RayCluster
from rayservice.spec.observed import Backend, FrontSpec
from rayservice.traffic.kubernetes import KubernetesFront
from tests.unit.test_kubernetes_objects import document, incremental, loaded
from tests.unit.test_kubernetes_provider import run_pod

KEY = "default.svc"
OLD, NEW = "svc-raycluster-old11", "svc-raycluster-new22"


def spec_on(*clusters: tuple[str, int], head: bool = True) -> FrontSpec:
    """A front whose first cluster is the active one, each cluster with its percent of the
    traffic and two nodes (``head``: the active cluster's head is there)."""
    backends = tuple(
        Backend(f"{cluster}-{node}", "127.0.0.1", 8000, 100, cluster=cluster)
        for cluster, _ in clusters
        for node in ("head", "worker")
    )
    active = clusters[0][0]
    dashboard = Backend(f"{active}-head", "127.0.0.1", 8265, cluster=active) if head else None
    return FrontSpec(8000, 8265, backends, dashboard, shares=tuple(clusters))


class Owners:
    def __init__(self, owner: Manifest | None, key: str = KEY) -> None:
        self.owner, self.key = owner, key

    def __call__(self, key: str) -> Manifest | None:
        return self.owner if key == self.key else None


@pytest.fixture
def api() -> FakeKubernetesApi:
    return FakeKubernetesApi()


def front(api: FakeKubernetesApi, doc: dict[str, Any] | None = None) -> KubernetesFront:
    return KubernetesFront(api, Owners(loaded(doc or document())), "alice-laptop")


def selector(api: FakeKubernetesApi, name: str) -> dict[str, str]:
    found = api.get(SERVICE, "default", name)
    assert found is not None
    selected: dict[str, str] = found["spec"]["selector"]
    return selected


def names(api: FakeKubernetesApi) -> list[tuple[str, str]]:
    return sorted((kind.kind, name) for kind, _, name in api.objects)


def test_the_services_select_the_active_cluster(api: FakeKubernetesApi) -> None:
    state = front(api).ensure(KEY, spec_on((OLD, 100)))

    assert selector(api, "svc-serve-svc") == {"ray.io/cluster": OLD, "ray.io/serve": "true"}
    assert selector(api, "svc-head-svc") == {"ray.io/cluster": OLD, "ray.io/node-type": "head"}
    assert state.spec == spec_on((OLD, 100))
    head = api.get(SERVICE, "default", "svc-head-svc")
    assert head is not None
    assert head["metadata"]["labels"]["rayservice.io/controller"] == "alice-laptop"


class Recording(FakeKubernetesApi):
    """Keeps the selector of every serve Service applied."""

    def __init__(self) -> None:
        super().__init__()
        self.serve_selectors: list[str] = []

    def apply(self, obj: dict[str, Any]) -> dict[str, Any]:
        if obj["kind"] == "Service" and obj["metadata"]["name"] == "svc-serve-svc":
            self.serve_selectors.append(obj["spec"]["selector"]["ray.io/cluster"])
        return super().apply(obj)


def test_the_services_move_to_the_new_cluster_once_when_it_becomes_active() -> None:
    api = Recording()
    kept = front(api)

    for active in (OLD, OLD, NEW, NEW):
        kept.ensure(KEY, spec_on((active, 100)))

    assert api.serve_selectors == [OLD, OLD, NEW, NEW]  # one move, and only to NEW
    assert selector(api, "svc-serve-svc")["ray.io/cluster"] == NEW


def test_a_restarted_controller_reads_the_front_back(api: FakeKubernetesApi) -> None:
    front(api).ensure(KEY, spec_on((OLD, 100)))

    found = front(api).observe(KEY)

    assert found is not None and found.spec == spec_on((OLD, 100))
    assert front(api).observe("default.other") is None
    assert front(api).keys() == [KEY]


def test_an_incremental_upgrade_weighs_the_clusters_through_a_gateway(
    api: FakeKubernetesApi,
) -> None:
    doc = incremental(gatewayClassName="istio")
    stepping = front(api, doc)

    stepping.ensure(KEY, spec_on((OLD, 70), (NEW, 30)))
    route = api.get(HTTP_ROUTE, "default", "svc-httproute")

    assert route is not None
    weights = [(b["name"], b["weight"]) for b in route["spec"]["rules"][0]["backendRefs"]]
    assert weights == [(f"{OLD}-serve-svc", 70), (f"{NEW}-serve-svc", 30)]
    assert selector(api, "svc-serve-svc")["ray.io/cluster"] == OLD  # not moved while stepping

    stepping.ensure(KEY, spec_on((NEW, 100)))  # done: the old cluster retires

    assert ("Service", f"{OLD}-serve-svc") not in names(api)
    assert ("Service", f"{NEW}-serve-svc") in names(api)
    assert selector(api, "svc-serve-svc")["ray.io/cluster"] == NEW


def test_a_gateway_no_longer_asked_for_goes(api: FakeKubernetesApi) -> None:
    front(api, incremental(gatewayClassName="istio")).ensure(KEY, spec_on((OLD, 100)))

    front(api).ensure(KEY, spec_on((OLD, 100)))

    assert api.get(GATEWAY, "default", "svc-gateway") is None
    assert api.get(HTTP_ROUTE, "default", "svc-httproute") is None
    assert ("Service", f"{OLD}-serve-svc") not in names(api)


def test_delete_removes_only_this_controllers_objects_of_the_service(
    api: FakeKubernetesApi,
) -> None:
    front(api, incremental(gatewayClassName="istio")).ensure(KEY, spec_on((OLD, 100)))
    other_doc = document()
    other_doc["metadata"]["name"] = "other"
    others = KubernetesFront(api, Owners(loaded(other_doc), "default.other"), "alice-laptop")
    others.ensure("default.other", spec_on((NEW, 100)))
    kept = names(api)

    front(api).delete(KEY)

    assert names(api) == [("Service", "other-head-svc"), ("Service", "other-serve-svc")]
    assert len(kept) == 7  # 5 of svc's (two Services, its cluster's, a Gateway, a route)


def test_another_controllers_objects_are_left_alone(api: FakeKubernetesApi) -> None:
    bobs = KubernetesFront(api, Owners(loaded(document())), "bob-laptop")
    bobs.ensure(KEY, spec_on((OLD, 100)))  # bob's own service of the same name and namespace
    theirs = names(api)

    mine = front(api)
    mine.delete(KEY)

    assert names(api) == theirs
    assert mine.keys() == []
    assert bobs.keys() == [KEY]


def test_without_the_gateway_apis_crds_a_plain_service_still_gets_its_services(
    api: FakeKubernetesApi,
) -> None:
    api.unserved = {GATEWAY, HTTP_ROUTE}

    front(api).ensure(KEY, spec_on((OLD, 100)))
    front(api).delete(KEY)

    assert names(api) == []


def test_while_the_active_clusters_head_is_gone_the_services_stay_on_it(
    api: FakeKubernetesApi,
) -> None:
    front(api).ensure(KEY, spec_on((OLD, 100), head=False))

    assert selector(api, "svc-serve-svc")["ray.io/cluster"] == OLD


def test_a_front_with_no_cluster_keeps_the_selector_it_finds(api: FakeKubernetesApi) -> None:
    front(api).ensure(KEY, spec_on((OLD, 100)))

    front(api).ensure(KEY, FrontSpec(8000, 8265))  # a controller that lost its record

    assert selector(api, "svc-serve-svc")["ray.io/cluster"] == OLD


def test_a_front_spec_edited_past_reading_is_written_again(api: FakeKubernetesApi) -> None:
    front(api).ensure(KEY, spec_on((OLD, 100)))
    head = api.objects[SERVICE, "default", "svc-head-svc"]
    head["metadata"]["annotations"]["rayservice.io/front-spec"] = "{not json"

    assert front(api).observe(KEY) is None


def test_a_standalone_rayclusters_services_are_kuberays(api: FakeKubernetesApi) -> None:
    cluster = RayCluster.model_validate(
        {"apiVersion": "ray.io/v1", "kind": "RayCluster", "metadata": {"name": "svc"},
         "spec": document()["spec"]["rayClusterConfig"]}
    )  # fmt: skip
    standalone = KubernetesFront(api, Owners(cluster), "alice-laptop")

    state = standalone.ensure(KEY, spec_on((OLD, 100)))

    assert names(api) == []
    assert standalone.observe(KEY) == state


def test_a_front_without_its_owner_waits(api: FakeKubernetesApi) -> None:
    with pytest.raises(TemporaryError, match="no RayService or RayCluster"):
        KubernetesFront(api, Owners(None), "alice-laptop").ensure(KEY, spec_on((OLD, 100)))


def test_the_backends_in_the_serve_services_are_ready_workers_and_serving_heads(
    api: FakeKubernetesApi,
) -> None:
    kept = front(api)
    backends = (
        Backend("h", "127.0.0.1", 8000, 100, cluster=OLD),
        Backend("w1", "127.0.0.1", 8000, 100, cluster=OLD),
        Backend("w2", "127.0.0.1", 8000, 100, cluster=OLD),
    )
    kept.ensure(KEY, FrontSpec(8000, 8265, backends, Backend("h", "127.0.0.1", 8265, cluster=OLD)))
    for name, group, ready in (
        ("h", "headgroup", True),
        ("w1", "small", True),
        ("w2", "small", False),
    ):
        run_pod(api, name, group, ready=ready)
        pod = api.objects[next(k for k in api.objects if k[2] == name)]
        pod["metadata"]["labels"]["ray.io/cluster"] = OLD

    before = kept.observe(KEY)
    api.set_labels(
        next(k for k in api.objects if k[2] == "h")[0], "default", "h", {"ray.io/serve": "true"}
    )
    after = kept.observe(KEY)

    assert before is not None and before.healthy_backends == ("w1",)
    assert after is not None and after.healthy_backends == ("h", "w1")


def test_the_services_addresses_are_the_ones_kubernetes_gave_them(api: FakeKubernetesApi) -> None:
    kept = front(api)
    kept.ensure(KEY, spec_on((OLD, 100)))
    for name, address in (("svc-head-svc", "10.96.0.10"), ("svc-serve-svc", "10.96.0.11")):
        api.objects[SERVICE, "default", name]["spec"]["clusterIP"] = address  # the API server's

    state = kept.observe(KEY)
    assert state is not None
    views = service_views("default", loaded(document()), state, 0.0, {OLD: "active"})

    assert state.service_addresses == (
        ("svc-head-svc", "10.96.0.10"),
        ("svc-serve-svc", "10.96.0.11"),
    )
    assert {v.name: v.doc["spec"]["clusterIP"] for v in views} == {
        "svc-serve-svc": "10.96.0.11",
        "svc-head-svc": "10.96.0.10",
    }
    assert all("externalIPs" not in v.doc["spec"] for v in views)


def test_a_serve_service_deleted_by_hand_is_applied_again(api: FakeKubernetesApi) -> None:
    kept = front(api)
    kept.ensure(KEY, spec_on((OLD, 100)))
    api.delete(SERVICE, "default", "svc-serve-svc")

    state = kept.observe(KEY)

    assert (
        state is not None
        and state.degraded == "Service svc-serve-svc is missing; it is applied again"
    )


def test_a_standalone_rayclusters_address_is_kuberays_head_services(
    api: FakeKubernetesApi,
) -> None:
    cluster = RayCluster.model_validate(
        {"apiVersion": "ray.io/v1", "kind": "RayCluster", "metadata": {"name": "svc"},
         "spec": document()["spec"]["rayClusterConfig"]}
    )  # fmt: skip
    standalone = KubernetesFront(api, Owners(cluster), "alice-laptop")
    standalone.ensure(KEY, spec_on(("svc", 100)))
    labels = {"ray.io/cluster": "svc", "ray.io/node-type": "head"}
    api.apply(
        {"apiVersion": "v1", "kind": "Service",
         "metadata": {"name": "svc-head-svc", "namespace": "default", "labels": labels},
         "spec": {"clusterIP": "10.96.0.12"}}
    )  # fmt: skip

    state = standalone.observe(KEY)

    assert state is not None and state.service_addresses == (("svc-head-svc", "10.96.0.12"),)
