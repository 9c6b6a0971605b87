"""One reconcile pass at a time, against a real SQLite store and in-memory outside world.

The provider, the Serve client and the traffic front are fakes the tests drive by hand: a
head becomes ready, proxies turn healthy, Ray refuses a config, a provider call fails. The
clock is fake too, so nothing here waits.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from rayservice.planner.cluster import cluster_name
from rayservice.planner.plan import STEADY_REQUEUE
from rayservice.planner.readiness import deployable_config
from rayservice.providers.fake import FakeProvider
from rayservice.serve_client.base import ServeConfigRejected
from rayservice.spec.cluster_request import ClusterRequest, NodeGroupRequest
from rayservice.spec.errors import TemporaryError
from rayservice.spec.hashing import serve_config_hash
from rayservice.spec.manifest import RayService
from rayservice.spec.observed import NodeRole
from rayservice.spec.vocabulary import KIND
from rayservice.store.sqlite import SqliteStore
from tests.unit.world import (
    FRONT_KEY,
    NAME,
    NAMESPACE,
    OWNER,
    REMOTE_APPS,
    FakeClock,
    World,
    new_reconciler,
    sample_manifest,
    world_around,
)


def test_the_sample_reaches_ready_with_serve_endpoints(world: World) -> None:
    first = world.reconcile()

    expected = cluster_name(
        RayService.model_validate(world.resource().manifest), world.resource().uid, 1
    )
    assert world.provider.clusters(OWNER) == [expected]
    assert [type(a).__name__ for a in first.actions] == ["EnsureCluster", "EnsureFront"]
    world.reconcile()
    assert world.deploys() == 0, "nothing is deployed before the head answers"
    assert world.serve.calls == [], "Serve is not asked before the head answers"

    world.bring_up()

    resource = world.resource()
    cluster = world.cluster()
    ready = next(c for c in resource.status["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("True", "NonZeroServeEndpoints")
    assert resource.status["numServeEndpoints"] == 2  # the head and the one worker
    assert resource.status["observedGeneration"] == 1
    apps = resource.status["activeServiceStatus"]["applicationStatuses"]
    assert {name: app["status"] for name, app in apps.items()} == {
        "fruit_app": "RUNNING",
        "math_app": "RUNNING",
    }
    deployed = world.serve.last_deployed(cluster.dashboard_url)
    assert deployed is not None and cluster.head is not None
    assert deployed["http_options"] == {"host": "127.0.0.1", "port": cluster.head.proxy_port}
    assert deployed["applications"][0]["runtime_env"]["working_dir"] == REMOTE_APPS
    front = world.front.observe(FRONT_KEY)
    assert front is not None
    assert (front.spec.serve_port, front.spec.dashboard_port) == (8000, 8265)
    assert sorted(b.name for b in front.spec.serve_backends) == sorted(
        world.provider.node_names(cluster.name)
    )
    assert resource.record["active"]["name"] == cluster.name
    assert resource.record["deployed"] == {cluster.name: first_hash(world)}


def first_hash(world: World) -> str:
    """The hash of the sample's Serve config as deployed on the world's cluster."""
    head = world.cluster().head
    assert head is not None
    config = yaml.safe_load(sample_manifest()["spec"]["serveConfigV2"])
    return serve_config_hash(deployable_config(config, head.proxy_port))


def test_views_mirror_the_cluster_its_pods_and_the_services(world: World) -> None:
    world.bring_up()

    cluster = world.cluster()
    [raycluster] = world.store.views("RayCluster")
    assert raycluster.name == cluster.name
    assert raycluster.owner == OWNER
    assert raycluster.doc["status"]["desiredWorkerReplicas"] == 1
    assert raycluster.doc["status"]["availableWorkerReplicas"] == 1
    assert raycluster.doc["status"]["state"] == "ready"
    pods = {v.name: v.doc for v in world.store.views("Pod")}
    assert sorted(pods) == sorted(world.provider.node_names(cluster.name))
    head = world.provider.node_names(cluster.name, NodeRole.HEAD)[0]
    assert pods[head]["metadata"]["labels"]["ray.io/node-type"] == "head"
    assert all(p["status"]["containerStatuses"][0]["ready"] for p in pods.values())
    services = {v.name: v.doc for v in world.store.views("Service")}
    assert sorted(services) == [f"{NAME}-head-svc", f"{NAME}-serve-svc"]
    assert services[f"{NAME}-serve-svc"]["spec"]["ports"][0]["port"] == 8000
    [backend] = services[f"{NAME}-head-svc"]["status"]["backends"]
    assert (backend["name"], backend["state"]) == (head, "not checked")
    serve_backends = services[f"{NAME}-serve-svc"]["status"]["backends"]
    assert {b["state"] for b in serve_backends} == {"up"}
    assert services[f"{NAME}-serve-svc"]["spec"]["selector"] == (
        f"the Serve proxies of cluster {cluster.name} (active)"
    )
    assert raycluster.doc["status"]["role"] == "active"
    assert raycluster.doc["status"]["serveApplications"] == {
        "fruit_app": "RUNNING",
        "math_app": "RUNNING",
    }


def test_events_tell_the_story(world: World) -> None:
    world.bring_up()

    reasons = world.event_reasons()
    for reason in (
        "ClusterCreated",
        "EndpointsUpdated",
        "ServeConfigSubmitted",
        "ApplicationRunning",
        "EndpointAdded",
    ):
        assert reason in reasons
    assert reasons.index("ClusterCreated") < reasons.index("ServeConfigSubmitted")
    assert all(e.type == "Normal" for e in world.store.events(NAMESPACE, NAME))


def test_a_steady_service_does_nothing_and_writes_no_status(world: World) -> None:
    world.bring_up()
    before = world.resource()
    ensures = len(world.provider.calls_to("ensure"))

    steady = world.reconcile()

    assert steady.actions == ()
    assert steady.requeue_after == STEADY_REQUEUE
    assert world.resource().resource_version == before.resource_version
    assert len(world.provider.calls_to("ensure")) == ensures
    assert world.deploys() == 1


def test_a_rejected_config_is_recorded_warned_about_and_not_retried(world: World) -> None:
    world.serve.fail("deploy", ServeConfigRejected("Ray says: cannot import fruit"))
    world.reconcile()
    name = world.cluster().name
    world.provider.make_head_ready(name)

    world.reconcile()
    world.reconcile()

    assert world.deploys() == 1
    resource = world.resource()
    failure = resource.record["failures"][f"DeployServeConfig/{name}"]
    assert (failure["kind"], failure["message"]) == ("Rejected", "Ray says: cannot import fruit")
    assert name not in resource.record["deployed"]
    [warning] = [e for e in world.store.events(NAMESPACE, NAME) if e.type == "Warning"]
    assert (warning.reason, warning.message) == (
        "ServeConfigRejected",
        "Ray says: cannot import fruit",
    )
    assert "ServeConfigSubmitted" not in world.event_reasons()
    ready = next(c for c in resource.status["conditions"] if c["type"] == "Ready")
    assert ready["message"] == "Ray rejected the Serve config: Ray says: cannot import fruit"
    assert resource.status["observedGeneration"] == 1


def test_a_fixed_config_after_a_rejection_is_submitted(world: World) -> None:
    world.serve.fail("deploy", ServeConfigRejected("Ray says: no"))
    world.reconcile()
    world.provider.make_head_ready(world.cluster().name)
    world.reconcile()
    world.serve.clear_failures()

    def fix(config: dict[str, Any]) -> None:
        config["applications"][0]["deployments"][0]["user_config"]["price"] = 4

    world.apply(sample_manifest(fix))
    world.reconcile()

    assert world.deploys() == 2
    assert world.resource().record["failures"] == {}
    assert world.provider.clusters(OWNER) == [world.cluster().name], "same cluster"


@pytest.mark.parametrize(
    "error",
    [TemporaryError("no free port block"), RuntimeError("controller killed")],
    ids=["temporary-error-is-reported", "crash-propagates"],
)
def test_the_record_is_checkpointed_before_the_provider_acts(
    world: World, error: Exception
) -> None:
    world.provider.fail_next_ensure(error)

    if isinstance(error, TemporaryError):
        world.reconcile()
        [failure] = [e for e in world.store.events(NAMESPACE, NAME) if e.type == "Warning"]
        assert failure.reason == "ClusterCreatedFailed"
        assert "no free port block" in failure.message
        # the actions after a failed one wait for the next pass
        assert [c for c in world.front.calls if c.method == "ensure"] == []
    else:
        with pytest.raises(RuntimeError):
            world.reconcile()

    resource = world.resource()
    expected = cluster_name(RayService.model_validate(resource.manifest), resource.uid, 1)
    assert resource.record["active"]["name"] == expected
    assert world.provider.clusters() == []
    world.restart_controller()
    world.reconcile()
    assert world.provider.clusters() == [expected]


def test_a_restarted_controller_adopts_the_cluster(world: World) -> None:
    world.bring_up()
    name = world.cluster().name

    world.restart_controller()
    again = world.reconcile()

    assert world.provider.clusters() == [name]
    assert [c.name for c in world.provider.calls_to("ensure")] == [name]
    assert again.actions == ()
    assert world.deploys() == 1


def test_a_restart_before_the_head_answers_keeps_one_cluster(world: World) -> None:
    world.reconcile()

    world.restart_controller()
    world.reconcile()
    world.restart_controller()
    world.reconcile()

    assert len(world.provider.clusters()) == 1


def test_a_dead_worker_is_restarted(world: World) -> None:
    world.bring_up()
    cluster = world.cluster()
    [worker] = cluster.workers

    world.provider.kill_node(cluster.name, worker.name)
    world.reconcile()

    [restarted] = world.cluster().workers
    assert (restarted.name, restarted.restarts) == (worker.name, 1)
    assert "ClusterUpdated" in world.event_reasons()


def test_a_front_short_of_a_process_is_ensured_again_with_a_warning(world: World) -> None:
    world.bring_up()
    world.front.lose_process(FRONT_KEY, "one of its two HAProxy processes is not running")

    world.reconcile()

    observed = world.front.observe(FRONT_KEY)
    assert observed is not None and observed.degraded is None
    assert "FrontProcessLost" in world.event_reasons()


def test_ports_come_from_the_store_and_skip_unusable_ones(world: World) -> None:
    world.reconciler = new_reconciler(
        world.store,
        world.provider,
        world.serve,
        world.front,
        world.clock,
        port_usable=lambda port, address: port not in (8000, 8265),
    )

    world.reconcile()

    record = world.resource().record
    assert (record["serve_port"], record["dashboard_port"]) == (8001, 8266)
    front = world.front.observe(FRONT_KEY)
    assert front is not None and front.spec.serve_port == 8001


def test_deletion_removes_the_resource_its_views_and_ports(world: World) -> None:
    world.bring_up()
    assert world.store.views("Pod")

    world.store.mark_deleting(KIND, NAMESPACE, NAME)
    world.reconcile()

    assert world.store.get(KIND, NAMESPACE, NAME) is None
    assert world.provider.clusters() == []
    assert world.front.keys() == []
    for kind in ("RayCluster", "Pod", "Service"):
        assert world.store.views(kind) == []
    assert world.store.allocate_port("default/next", "serve", 8000, lambda p: True) == 8000
    assert world.store.allocate_port("default/next", "dashboard", 8265, lambda p: True) == 8265


def test_scaling_the_worker_group_changes_the_same_cluster(world: World) -> None:
    world.bring_up()
    name = world.cluster().name
    [first_worker] = world.cluster().workers
    scaled = sample_manifest()
    scaled["spec"]["rayClusterConfig"]["workerGroupSpecs"][0]["replicas"] = 3

    assert world.apply(scaled).generation == 2
    world.reconcile()

    assert world.provider.clusters() == [name]
    workers = [w.name for w in world.cluster().workers]
    assert len(workers) == 3 and first_worker.name in workers
    assert world.store.views("RayCluster")[0].doc["status"]["desiredWorkerReplicas"] == 3
    assert world.deploys() == 1, "a scaling change does not resubmit the Serve config"


# -- the fake provider, as the tests above rely on it ---------------------------------------


def request(
    replicas: int = 2, to_delete: tuple[str, ...] = (), group: str = "small"
) -> ClusterRequest:
    return ClusterRequest(
        name="demo-raycluster-bbbbb",
        owner="default/demo",
        spec_hash="0123456789abcdef",
        head=NodeGroupRequest(group="headgroup"),
        workers=(NodeGroupRequest(group=group, replicas=replicas),),
        workers_to_delete=to_delete,
    )


def test_fake_provider_names_nodes_like_the_local_provider() -> None:
    provider = FakeProvider(clock=FakeClock())
    provider.ensure(request())

    [head] = provider.node_names("demo-raycluster-bbbbb", NodeRole.HEAD)
    workers = provider.node_names("demo-raycluster-bbbbb", NodeRole.WORKER)

    assert re.fullmatch(r"demo-raycluster-bbbbb-head-[a-z0-9]{5}", head)
    assert len(workers) == 2
    assert all(re.fullmatch(r"demo-raycluster-bbbbb-small-worker-[a-z0-9]{5}", w) for w in workers)
    cluster = provider.observe("demo-raycluster-bbbbb")
    assert cluster is not None and not cluster.head_ready
    assert len({n.proxy_port for n in cluster.nodes}) == 3


def test_fake_provider_scales_in_place_and_drops_unknown_groups() -> None:
    provider = FakeProvider(clock=FakeClock())
    provider.ensure(request(replicas=3))
    workers = provider.node_names("demo-raycluster-bbbbb", NodeRole.WORKER)

    provider.ensure(request(replicas=2, to_delete=(workers[0],)))
    after_scale_down = provider.node_names("demo-raycluster-bbbbb", NodeRole.WORKER)
    provider.ensure(request(replicas=1, group="big"))

    assert after_scale_down == workers[1:]  # the named worker went first
    cluster = provider.observe("demo-raycluster-bbbbb")
    assert cluster is not None
    assert [w.group for w in cluster.workers] == ["big"]


def test_fake_provider_restarts_failed_nodes_and_forgets_deleted_clusters() -> None:
    provider = FakeProvider(clock=FakeClock())
    provider.ensure(request(replicas=0))
    provider.make_ready("demo-raycluster-bbbbb")
    [head] = provider.node_names("demo-raycluster-bbbbb")

    provider.kill_node("demo-raycluster-bbbbb", head)
    killed = provider.observe("demo-raycluster-bbbbb")
    provider.ensure(provider.request_of("demo-raycluster-bbbbb"))
    restarted = provider.observe("demo-raycluster-bbbbb")

    assert killed is not None and restarted is not None
    assert killed.head is not None and killed.head.phase.value == "Failed"
    assert not killed.head_ready and killed.serve_endpoints == ()
    assert restarted.head is not None
    assert (restarted.head.name, restarted.head.restarts) == (head, 1)
    provider.delete("demo-raycluster-bbbbb")
    provider.delete("demo-raycluster-bbbbb")
    assert provider.observe("demo-raycluster-bbbbb") is None
    assert provider.clusters() == []


def test_fake_provider_logs() -> None:
    provider = FakeProvider(clock=FakeClock())
    provider.ensure(request(replicas=0))
    [head] = provider.node_names("demo-raycluster-bbbbb")
    provider.set_logs("demo-raycluster-bbbbb", head, "a\nb\nc\n")

    assert provider.logs("demo-raycluster-bbbbb", tail=2) == "b\nc\n"
    with pytest.raises(TemporaryError, match="no node"):
        provider.logs("demo-raycluster-bbbbb", node="nope")
    with pytest.raises(TemporaryError, match="does not exist"):
        provider.logs("missing")


def test_a_changed_serve_service_port_moves_the_front(world: World) -> None:
    def with_port(port: int) -> dict[str, Any]:
        document = sample_manifest()
        document["spec"]["serveService"] = {"spec": {"ports": [{"name": "serve", "port": port}]}}
        return document

    before = world.apply(with_port(9100))
    world.reconcile()
    front = world.front.observe(FRONT_KEY)
    assert front is not None and front.spec.serve_port == 9100

    assert world.apply(with_port(9200)).generation == before.generation + 1
    world.reconcile()

    front = world.front.observe(FRONT_KEY)
    assert front is not None and front.spec.serve_port == 9200


class PortSpyStore(SqliteStore):
    """The SQLite store, remembering every release_ports call."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.released: list[tuple[str, str | None]] = []

    def release_ports(self, owner: str, purpose: str | None = None) -> None:
        self.released.append((owner, purpose))
        super().release_ports(owner, purpose)


def with_serve_port(port: int) -> dict[str, Any]:
    document = sample_manifest()
    document["spec"]["serveService"] = {"spec": {"ports": [{"name": "serve", "port": port}]}}
    return document


def test_a_requested_port_on_a_fresh_record_releases_nothing_and_a_changed_one_moves(
    tmp_path: Path,
) -> None:
    store = PortSpyStore(tmp_path / "store.db")
    world = world_around(store)
    # the ports a first pass took before it crashed, ahead of writing its record
    assert store.allocate_port(OWNER, "serve", 9100, lambda port: True) == 9100
    assert store.allocate_port(OWNER, "dashboard", 8265, lambda port: True) == 8265
    world.apply(with_serve_port(9100))
    assert world.resource().record == {}

    world.reconcile()

    assert store.released == [], "a record with no port yet has nothing to move"
    record = world.resource().record
    assert (record["serve_port"], record["dashboard_port"]) == (9100, 8265)
    assert store.allocate_port(OWNER, "serve", 8000, lambda port: True) == 9100, "still held"
    assert store.allocate_port("default/other", "serve", 9100, lambda port: True) == 9101

    world.apply(with_serve_port(9200))
    world.reconcile()

    assert store.released == [(OWNER, "serve")]
    record = world.resource().record
    assert (record["serve_port"], record["dashboard_port"]) == (9200, 8265)
    assert store.allocate_port(OWNER, "dashboard", 9000, lambda port: True) == 8265
    assert store.allocate_port("default/third", "serve", 9100, lambda port: True) == 9100
    state = world.front.observe(FRONT_KEY)
    assert state is not None
    assert (state.spec.serve_port, state.spec.dashboard_port) == (9200, 8265)


def test_a_front_that_failed_to_start_is_not_listed_as_a_service(world: World) -> None:
    world.apply()
    world.front.fail_next_ensure(TemporaryError("haproxy did not start"))

    world.reconcile()

    assert world.store.views("Service") == [], "no endpoint was opened, so none is shown"
    assert "EndpointsUpdatedFailed" in world.event_reasons()
    world.reconcile()  # the next pass retries and succeeds
    names = sorted(v.name for v in world.store.views("Service"))
    assert names == [f"{NAME}-head-svc", f"{NAME}-serve-svc"]


def test_a_deleted_and_recreated_service_shows_only_its_own_events(world: World) -> None:
    world.bring_up()
    world.store.mark_deleting(KIND, NAMESPACE, NAME)
    world.reconcile()
    assert world.store.get(KIND, NAMESPACE, NAME) is None

    world.apply()

    assert world.event_reasons() == []
    world.reconcile()
    assert world.event_reasons()[0] == "ClusterCreated"


def test_a_steady_pass_asks_the_front_once(world: World) -> None:
    world.apply()
    world.bring_up()
    world.reconcile()  # settles: endpoints and status as they are
    world.front.calls.clear()

    plan = world.reconcile()

    assert plan.actions == ()
    assert [c.method for c in world.front.calls] == ["observe"]
    assert [v.name for v in world.store.views("Service")], "the services are still listed"


def test_events_name_the_object_they_are_about(world: World) -> None:
    world.bring_up()
    name = world.cluster().name
    about = {
        (e.reason, e.involved_kind, e.involved_name) for e in world.store.events(NAMESPACE, NAME)
    }

    assert ("ClusterCreated", "RayCluster", name) in about
    assert ("ServeConfigSubmitted", "RayCluster", name) in about
    assert ("EndpointsUpdated", "Service", f"{NAME}-serve-svc") in about
    assert ("EndpointAdded", "Pod", world.cluster().nodes[0].name) in about
    assert ("ApplicationRunning", "RayService", NAME) in about


def test_a_steady_service_settles_until_an_input_changes(world: World) -> None:
    world.bring_up()
    world.reconcile()  # the first pass that finds nothing to do
    assert world.reconciler.settled(KIND, NAMESPACE, NAME) is not None, "nothing changed: settled"

    world.provider.kill_node(world.cluster().name, world.cluster().nodes[-1].name)
    assert world.reconciler.settled(KIND, NAMESPACE, NAME) is None, "an observation changed"

    world.reconcile()
    world.reconcile()
    world.apply(sample_manifest(lambda config: config.update(proxy_location="HeadOnly")))
    assert world.reconciler.settled(KIND, NAMESPACE, NAME) is None, "the stored resource changed"


def test_a_settled_service_wakes_for_its_timer(world: World) -> None:
    world.bring_up()
    retiring = {"name": "replaced-cluster", "delete_at": world.clock.now + 5, "reason": "test"}
    world.store.write_record(
        KIND, NAMESPACE, NAME, {**world.resource().record, "retiring": [retiring]}
    )
    world.clock.now += 1
    plan = world.reconciler.reconcile(world.resource())
    assert plan.wake_at == retiring["delete_at"] and plan.actions == ()

    world.clock.now += 3.5
    settled = world.reconciler.settled(KIND, NAMESPACE, NAME)
    assert settled is not None and settled.requeue_after == 0.5, "back when the timer is due"
    world.clock.now += 0.5
    assert world.reconciler.settled(KIND, NAMESPACE, NAME) is None, "the timer is due: plan again"


def test_an_apply_during_a_quiet_pass_is_not_mistaken_for_that_pass(world: World) -> None:
    world.bring_up()
    world.reconcile()
    read_by_the_pass = world.resource()
    world.apply(sample_manifest(lambda config: config.update(proxy_location="HeadOnly")))

    quiet = world.reconciler.reconcile(read_by_the_pass)  # the pass still plans generation 1

    assert quiet.actions == () and quiet.events == ()
    assert world.reconciler.settled(KIND, NAMESPACE, NAME) is None, (
        "generation 2 needs its own pass"
    )
