"""Cluster upgrades, driven pass by pass through the Reconciler against the fakes.

The world of ``test_reconciler`` (fake provider, Serve client and front, a real SQLite store,
a fake clock that moves one second per pass) plays a RayService whose ``rayClusterConfig``
changes: what needs a new cluster and what does not, when traffic switches, how long the old
cluster lives, what a restarted controller remembers, and how incremental upgrades move
traffic and Serve capacity step by step.

Cluster variants differ by an environment variable of the head container (a field the local
backend uses), so "a", "b" and "c" below are three incompatible cluster specs.
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from rayservice.planner.actions import DeleteCluster
from rayservice.planner.cluster import cluster_name
from rayservice.planner.front import server_weight
from rayservice.serve_client.fake import running_state
from rayservice.spec.manifest import RayService
from rayservice.spec.observed import FrontSpec, NodeRole, ObservedCluster, ServeState
from rayservice.store.base import Event
from rayservice.store.sqlite import SqliteStore
from tests.unit.world import (
    FRONT_KEY,
    NAME,
    NAMESPACE,
    OWNER,
    World,
    sample_manifest,
    world_around,
)

MARK = "UPGRADE_MARK"
INCREMENTAL = "NewClusterWithIncrementalUpgrade"
SURGE, STEP, INTERVAL = 50, 25, 10
OPTIONS = {"maxSurgePercent": SURGE, "stepSizePercent": STEP, "intervalSeconds": INTERVAL}
PAUSE = "rayservice.io/rollout-paused"
PROMOTE = "rayservice.io/rollout-promote"
DEPLOYING = {"fruit_app": "DEPLOYING", "math_app": "DEPLOYING"}


# -- manifests ------------------------------------------------------------------------------


def manifest(
    variant: str = "a",
    *,
    price: int = 3,
    strategy: str | None = None,
    options: dict[str, Any] | None = None,
    annotations: dict[str, str] | None = None,
    edit: Callable[[dict[str, Any]], None] | None = None,
    **spec: Any,
) -> dict[str, Any]:
    """The sample RayService with cluster ``variant``, MangoStand's ``price``, an upgrade
    strategy, annotations, extra top-level spec fields and a last edit of the cluster spec."""

    def set_price(config: dict[str, Any]) -> None:
        config["applications"][0]["deployments"][0]["user_config"]["price"] = price

    document = sample_manifest(set_price)
    cluster = document["spec"]["rayClusterConfig"]
    if variant != "a":
        head = cluster["headGroupSpec"]["template"]["spec"]["containers"][0]
        head["env"] = [{"name": MARK, "value": variant}]
    if strategy is not None:
        document["spec"]["upgradeStrategy"] = {"type": strategy}
        if options is not None:
            document["spec"]["upgradeStrategy"]["clusterUpgradeOptions"] = options
    if annotations:
        document["metadata"]["annotations"] = annotations
    document["spec"].update(spec)
    if edit is not None:
        edit(cluster)
    return document


def incremental(variant: str = "a", **kwargs: Any) -> dict[str, Any]:
    return manifest(variant, strategy=INCREMENTAL, options=OPTIONS, **kwargs)


# -- the world ------------------------------------------------------------------------------


@pytest.fixture
def world(tmp_path: Path) -> World:
    """The reconciler's world with nothing applied yet (tests choose the first manifest)."""
    return world_around(SqliteStore(tmp_path / "store.db"))


def start(world: World, document: dict[str, Any]) -> str:
    """Apply ``document`` and bring its first cluster up to Ready; its name."""
    world.apply(document)
    world.bring_up()
    assert condition(world, "Ready")[0] == "True"
    return world.cluster().name


def observed(world: World, name: str) -> ObservedCluster:
    cluster = world.provider.observe(name)
    assert cluster is not None, f"{name} does not exist"
    return cluster


def url(world: World, name: str) -> str:
    return observed(world, name).dashboard_url


def name_of_generation(world: World, generation: int) -> str:
    resource = world.resource()
    return cluster_name(RayService.model_validate(resource.manifest), resource.uid, generation)


def clusters(world: World) -> list[str]:
    return world.provider.clusters(OWNER)


def deployed(world: World, dashboard_url: str) -> list[dict[str, Any]]:
    """Every Serve config PUT to one dashboard, oldest first."""
    return world.serve.deployed.get(dashboard_url, [])


def price_in(config: dict[str, Any]) -> int:
    price = config["applications"][0]["deployments"][0]["user_config"]["price"]
    assert isinstance(price, int)
    return price


def set_apps(world: World, name: str, statuses: dict[str, str] | None = None) -> None:
    """Serve on ``name`` reports the last config it was given, its apps in ``statuses``
    (RUNNING when not listed)."""
    config = world.serve.last_deployed(url(world, name))
    assert config is not None, f"nothing was deployed to {name}"
    state = running_state(config)
    apps = tuple(
        dataclasses.replace(app, status=(statuses or {}).get(app.name, "RUNNING"))
        for app in state.apps
    )
    world.serve.set_state(url(world, name), ServeState(apps, state.target_capacity))


def serve_follows_configs(world: World) -> None:
    """Ray applies every config at once: each cluster that was given one runs it."""
    for name in clusters(world):
        cluster = observed(world, name)
        if cluster.head_ready and world.serve.last_deployed(cluster.dashboard_url) is not None:
            set_apps(world, name)


def take_config(world: World, name: str) -> None:
    """The pending cluster's head answers and takes its Serve config; Ray starts deploying."""
    world.provider.make_head_ready(name)
    world.reconcile()
    set_apps(world, name, DEPLOYING)


def bring_up_pending(world: World, name: str) -> None:
    """The pending cluster's head answers, takes its Serve config, runs it, proxies healthy."""
    world.provider.make_head_ready(name)
    world.reconcile()
    set_apps(world, name)
    world.provider.mark_proxies_ready(name)


def record(world: World) -> dict[str, Any]:
    return world.resource().record


def status(world: World) -> dict[str, Any]:
    return world.resource().status


def condition(world: World, kind: str) -> tuple[str, str]:
    [found] = [c for c in status(world)["conditions"] if c["type"] == kind]
    return found["status"], found["reason"]


def events(world: World, reason: str) -> list[Event]:
    return [e for e in world.store.events(NAMESPACE, NAME) if e.reason == reason]


def front(world: World) -> FrontSpec:
    state = world.front.observe(FRONT_KEY)
    assert state is not None
    return state.spec


def backend_clusters(world: World) -> set[str]:
    """The clusters whose nodes are servers of ``<name>-serve-svc``."""
    names = clusters(world) + [
        r["name"] for r in record(world)["retiring"] if r["name"] not in clusters(world)
    ]
    return {
        cluster
        for backend in front(world).serve_backends
        for cluster in names
        if backend.name.startswith(f"{cluster}-")
    }


def weights(world: World, cluster: str) -> list[int]:
    return [b.weight for b in front(world).serve_backends if b.name.startswith(f"{cluster}-")]


def split_of(world: World) -> tuple[int | None, int, int | None, int]:
    """(capacity, traffic) of the active slot, then of the pending one (None, 0 when none)."""
    stored = record(world)
    active, pending = stored["active"], stored["pending"]
    if pending is None:
        return active["target_capacity"], active["traffic_percent"], None, 0
    return (
        active["target_capacity"],
        active["traffic_percent"],
        pending["target_capacity"],
        pending["traffic_percent"],
    )


def upgrade_to_switch(world: World) -> tuple[str, str]:
    """A NewCluster upgrade from variant a to b, up to the moment traffic switched."""
    old = start(world, manifest())
    world.apply(manifest("b"))
    world.reconcile()
    new = record(world)["pending"]["name"]
    bring_up_pending(world, new)
    world.reconcile()
    assert record(world)["active"]["name"] == new
    return old, new


# -- what needs a new cluster ---------------------------------------------------------------


def scale_to_two(cluster: dict[str, Any]) -> None:
    cluster["workerGroupSpecs"][0]["replicas"] = 2


def widen_bounds(cluster: dict[str, Any]) -> None:
    cluster["workerGroupSpecs"][0].update(minReplicas=0, maxReplicas=9)


def suspend_workers(cluster: dict[str, Any]) -> None:
    cluster["workerGroupSpecs"][0]["suspend"] = True


def append_group(cluster: dict[str, Any]) -> None:
    extra = copy.deepcopy(cluster["workerGroupSpecs"][0])
    extra.update(groupName="extra-group", replicas=2)
    cluster["workerGroupSpecs"].append(extra)


@pytest.mark.parametrize(
    ("edit", "workers"),
    [
        (scale_to_two, {"small-group": 2}),
        (widen_bounds, {"small-group": 1}),
        (suspend_workers, {}),
        (append_group, {"small-group": 1, "extra-group": 2}),
    ],
    ids=["replicas", "min-max-replicas", "suspend", "appended-worker-group"],
)
def test_scaling_fields_and_appended_groups_change_the_cluster_in_place(
    world: World, edit: Callable[[dict[str, Any]], None], workers: dict[str, int]
) -> None:
    name = start(world, manifest())
    [first_worker] = observed(world, name).workers

    assert world.apply(manifest(edit=edit)).generation == 2
    world.reconcile()
    world.reconcile()

    assert clusters(world) == [name]
    stored = record(world)
    assert stored["pending"] is None
    assert stored["active"]["name"] == name
    groups: dict[str, int] = {}
    for node in observed(world, name).workers:
        groups[node.group] = groups.get(node.group, 0) + 1
    assert groups == workers
    if workers.get("small-group"):
        assert first_worker.name in [w.name for w in observed(world, name).workers]
    assert events(world, "UpgradeStarted") == []
    assert condition(world, "UpgradeInProgress") == ("False", "NoPendingCluster")
    assert len(deployed(world, url(world, name))) == 1, "the Serve config is not resubmitted"


def test_workers_to_delete_removes_the_named_worker_in_place(world: World) -> None:
    name = start(world, manifest())
    [doomed] = [w.name for w in observed(world, name).workers]
    world.apply(manifest(edit=scale_to_two))
    world.reconcile()
    [newest] = [w.name for w in observed(world, name).workers if w.name != doomed]

    def delete_the_oldest(cluster: dict[str, Any]) -> None:
        cluster["workerGroupSpecs"][0]["replicas"] = 1
        cluster["workerGroupSpecs"][0]["scaleStrategy"] = {"workersToDelete": [doomed]}

    world.apply(manifest(edit=delete_the_oldest))
    world.reconcile()

    assert clusters(world) == [name]
    assert [w.name for w in observed(world, name).workers] == [newest], "not the newest"
    assert record(world)["pending"] is None
    assert events(world, "UpgradeStarted") == []


def test_a_worker_group_inserted_before_the_others_needs_a_new_cluster(world: World) -> None:
    old = start(world, manifest())

    def insert_first(cluster: dict[str, Any]) -> None:
        extra = copy.deepcopy(cluster["workerGroupSpecs"][0])
        extra["groupName"] = "extra-group"
        cluster["workerGroupSpecs"].insert(0, extra)

    world.apply(manifest(edit=insert_first))
    world.reconcile()

    assert clusters(world) == sorted([old, name_of_generation(world, 2)])
    assert record(world)["pending"]["name"] == name_of_generation(world, 2)


# -- NewCluster -----------------------------------------------------------------------------


def test_new_cluster_upgrade_switches_once_every_app_runs_with_an_endpoint(world: World) -> None:
    old = start(world, manifest())
    old_url = url(world, old)
    old_nodes = sorted(world.provider.node_names(old))

    assert world.apply(manifest("b")).generation == 2
    world.reconcile()

    new = name_of_generation(world, 2)
    assert new != old
    assert clusters(world) == sorted([old, new])
    assert (record(world)["active"]["name"], record(world)["pending"]["name"]) == (old, new)
    [started] = events(world, "UpgradeStarted")
    assert new in started.message and old in started.message
    assert status(world)["pendingServiceStatus"]["rayClusterName"] == new
    assert status(world)["activeServiceStatus"]["rayClusterName"] == old
    assert condition(world, "UpgradeInProgress") == ("True", "BothActivePendingClustersExist")
    assert status(world)["observedGeneration"] == 1, "the new config is on no cluster yet"
    assert observed(world, new).head is not None
    assert dict(world.provider.request_of(new).head.env) == {MARK: "b"}
    assert sorted(b.name for b in front(world).serve_backends) == old_nodes

    take_config(world, new)

    new_url = url(world, new)
    [config] = deployed(world, new_url)
    head = observed(world, new).head
    assert head is not None
    assert config["http_options"] == {"host": "127.0.0.1", "port": head.proxy_port}
    assert len(deployed(world, old_url)) == 1, "the active cluster keeps its config"

    # not while any app is still deploying, even with healthy proxies
    world.provider.mark_proxies_ready(new)
    for apps in (
        {"fruit_app": "DEPLOYING", "math_app": "DEPLOYING"},
        {"fruit_app": "RUNNING", "math_app": "DEPLOYING"},
        {"fruit_app": "RUNNING", "math_app": "UNHEALTHY"},
    ):
        set_apps(world, new, apps)
        world.reconcile()
        assert record(world)["active"]["name"] == old, apps
        assert backend_clusters(world) == {old}, apps
    assert status(world)["observedGeneration"] == 2, "the config reached the pending cluster"

    # not while every app runs but no proxy is healthy
    world.provider.mark_proxies_ready(new, ready=False)
    set_apps(world, new)
    world.reconcile()
    assert record(world)["active"]["name"] == old
    assert backend_clusters(world) == {old}
    assert events(world, "UpgradeCompleted") == []

    world.provider.mark_proxies_ready(new)
    world.reconcile()
    switched_at = world.clock.now

    stored = record(world)
    assert stored["active"]["name"] == new
    assert stored["pending"] is None
    assert [(r["name"], r["delete_at"]) for r in stored["retiring"]] == [(old, switched_at + 60)]
    assert sorted(b.name for b in front(world).serve_backends) == sorted(
        world.provider.node_names(new)
    )
    dashboard = front(world).dashboard_backend
    assert dashboard is not None
    assert dashboard.name == world.provider.node_names(new, NodeRole.HEAD)[0]
    [completed] = events(world, "UpgradeCompleted")
    assert old in completed.message and new in completed.message
    assert status(world)["activeServiceStatus"]["rayClusterName"] == new
    assert status(world)["pendingServiceStatus"]["rayClusterName"] == ""
    assert condition(world, "UpgradeInProgress") == ("False", "NoPendingCluster")
    assert condition(world, "Ready") == ("True", "NonZeroServeEndpoints")
    assert status(world)["numServeEndpoints"] == 2
    assert clusters(world) == sorted([old, new]), "the old cluster lives on for a while"

    world.clock.now = switched_at + 58
    world.reconcile()
    assert old in clusters(world), "one second before rayClusterDeletionDelaySeconds"
    world.reconcile()

    assert clusters(world) == [new]
    assert record(world)["retiring"] == []
    assert any(old in e.message for e in events(world, "ClusterDeleted"))
    assert len(deployed(world, old_url)) == 1
    assert len(deployed(world, new_url)) == 1


def test_the_deletion_delay_is_the_services_own(world: World) -> None:
    old = start(world, manifest(rayClusterDeletionDelaySeconds=5))
    world.apply(manifest("b", rayClusterDeletionDelaySeconds=5))
    world.reconcile()
    new = record(world)["pending"]["name"]
    bring_up_pending(world, new)
    world.reconcile()
    switched_at = world.clock.now

    assert record(world)["retiring"][0]["delete_at"] == switched_at + 5
    for _ in range(4):
        world.reconcile()
        assert old in clusters(world)
    world.reconcile()
    assert clusters(world) == [new]


def test_a_restart_during_the_deletion_delay_keeps_the_stored_delete_time(world: World) -> None:
    old, new = upgrade_to_switch(world)
    delete_at = record(world)["retiring"][0]["delete_at"]

    world.clock.now += 30
    world.restart_controller()
    world.reconcile()

    assert [(r["name"], r["delete_at"]) for r in record(world)["retiring"]] == [(old, delete_at)]
    assert clusters(world) == sorted([old, new])
    world.clock.now = delete_at - 2
    world.restart_controller()
    world.reconcile()
    assert old in clusters(world), "not deleted early"
    world.reconcile()
    assert clusters(world) == [new], "deleted on time, not 60 s after the restart"


def test_a_controller_down_past_the_deletion_time_deletes_on_its_first_pass(world: World) -> None:
    old, new = upgrade_to_switch(world)
    delete_at = record(world)["retiring"][0]["delete_at"]

    world.clock.now = delete_at + 3600
    world.restart_controller()
    plan = world.reconcile()

    assert [a.name for a in plan.actions if isinstance(a, DeleteCluster)] == [old]
    assert clusters(world) == [new]


def test_a_restart_with_the_pending_cluster_up_keeps_one_pending_cluster(world: World) -> None:
    old = start(world, manifest())
    world.apply(manifest("b"))
    world.reconcile()
    new = record(world)["pending"]["name"]
    created_at = record(world)["pending"]["created_at"]
    take_config(world, new)

    for _ in range(3):
        world.restart_controller()
        world.reconcile()

    assert clusters(world) == sorted([old, new])
    assert {c.name for c in world.provider.calls_to("ensure")} == {old, new}
    assert record(world)["pending"]["name"] == new
    assert record(world)["pending"]["created_at"] == created_at
    assert len(deployed(world, url(world, new))) == 1, "the accepted config is remembered"
    assert len(events(world, "UpgradeStarted")) == 1

    set_apps(world, new)
    world.provider.mark_proxies_ready(new)
    world.reconcile()
    assert record(world)["active"]["name"] == new


def test_a_crash_while_creating_the_pending_cluster_resumes_with_the_same_name(
    world: World,
) -> None:
    old = start(world, manifest())
    world.apply(manifest("b"))
    world.provider.fail_next_ensure(RuntimeError("controller killed"))

    with pytest.raises(RuntimeError):
        world.reconcile()
    new = record(world)["pending"]["name"]
    assert clusters(world) == [old]

    world.restart_controller()
    world.reconcile()
    world.reconcile()

    assert clusters(world) == sorted([old, new])
    assert new == name_of_generation(world, 2)


def test_a_serve_change_during_an_upgrade_goes_to_the_pending_cluster_only(world: World) -> None:
    old = start(world, manifest())
    old_url = url(world, old)
    world.apply(manifest("b"))
    world.reconcile()
    new = record(world)["pending"]["name"]
    take_config(world, new)
    new_url = url(world, new)

    assert world.apply(manifest("b", price=4)).generation == 3
    world.reconcile()
    world.reconcile()

    assert [price_in(c) for c in deployed(world, new_url)] == [3, 4]
    assert [price_in(c) for c in deployed(world, old_url)] == [3]
    assert clusters(world) == sorted([old, new]), "the pending cluster is kept"
    assert record(world)["pending"]["name"] == new
    assert status(world)["observedGeneration"] == 3

    set_apps(world, new)
    world.provider.mark_proxies_ready(new)
    world.reconcile()
    world.reconcile()

    assert record(world)["active"]["name"] == new
    assert [price_in(c) for c in deployed(world, new_url)] == [3, 4], "no PUT after the switch"
    assert [price_in(c) for c in deployed(world, old_url)] == [3]


def test_a_second_incompatible_change_replaces_the_pending_cluster(world: World) -> None:
    old = start(world, manifest())
    world.apply(manifest("b"))
    world.reconcile()
    replaced = record(world)["pending"]["name"]
    take_config(world, replaced)

    assert world.apply(manifest("c")).generation == 3
    world.reconcile()

    new = name_of_generation(world, 3)
    assert new not in (old, replaced)
    assert clusters(world) == sorted([old, new])
    assert record(world)["pending"]["name"] == new
    assert record(world)["active"]["name"] == old
    assert [c.name for c in world.provider.calls_to("delete")] == [replaced]
    [event] = events(world, "PendingClusterReplaced")
    assert replaced in event.message
    assert len(events(world, "UpgradeStarted")) == 2
    assert status(world)["pendingServiceStatus"]["rayClusterName"] == new
    assert dict(world.provider.request_of(new).head.env) == {MARK: "c"}

    bring_up_pending(world, new)
    world.reconcile()
    assert record(world)["active"]["name"] == new
    assert backend_clusters(world) == {new}


def test_going_back_to_the_active_spec_drops_the_pending_cluster(world: World) -> None:
    old = start(world, manifest())
    world.apply(manifest("b"))
    world.reconcile()
    pending = record(world)["pending"]["name"]
    take_config(world, pending)
    assert condition(world, "RollbackInProgress") == ("False", "NoRollback")

    assert world.apply(manifest("a")).generation == 3
    world.reconcile()

    assert clusters(world) == [old]
    assert record(world)["pending"] is None
    assert record(world)["rolled_back"] == [pending]
    assert condition(world, "RollbackInProgress") == ("True", "DeletingPendingCluster")
    [rollback] = events(world, "RollbackStarted")
    assert pending in rollback.message

    world.reconcile()

    assert condition(world, "RollbackInProgress") == ("False", "NoRollback")
    assert record(world)["rolled_back"] == []
    assert record(world)["active"]["name"] == old
    assert condition(world, "UpgradeInProgress") == ("False", "NoPendingCluster")
    assert status(world)["pendingServiceStatus"]["rayClusterName"] == ""
    assert status(world)["observedGeneration"] == 3
    assert len(deployed(world, url(world, old))) == 1
    assert backend_clusters(world) == {old}


def give_up(world: World) -> tuple[str, str]:
    """Variant b's pending cluster takes its config but its apps never run: it is given up
    once pendingClusterTimeoutSeconds (the default 600 s) have passed."""
    old = start(world, manifest())
    world.apply(manifest("b"))
    world.reconcile()
    pending = record(world)["pending"]["name"]
    created_at = record(world)["pending"]["created_at"]
    take_config(world, pending)
    world.provider.mark_proxies_ready(pending)
    set_apps(world, pending, {"fruit_app": "DEPLOYING", "math_app": "DEPLOYING"})

    world.clock.now = created_at + 598
    world.reconcile()
    assert record(world)["pending"]["name"] == pending, "599 s is not 600 s"
    world.reconcile()
    return old, pending


def test_a_pending_cluster_that_never_gets_ready_is_given_up(world: World) -> None:
    old, pending = give_up(world)

    assert clusters(world) == [old]
    stored = record(world)
    assert stored["pending"] is None
    assert stored["active"]["name"] == old
    assert stored["given_up"] is not None and pending in stored["given_up"]["reason"]
    [warning] = events(world, "UpgradeTimedOut")
    assert warning.type == "Warning"
    assert pending in warning.message and "600s" in warning.message
    assert backend_clusters(world) == {old}
    assert condition(world, "Ready") == ("True", "NonZeroServeEndpoints")
    assert status(world)["pendingServiceStatus"]["rayClusterName"] == ""

    world.reconcile()

    upgrade = next(c for c in status(world)["conditions"] if c["type"] == "UpgradeInProgress")
    assert (upgrade["status"], upgrade["reason"]) == ("False", "PendingClusterTimedOut")
    assert pending in upgrade["message"]


def test_the_pass_that_gives_up_already_says_why(world: World) -> None:
    give_up(world)

    assert condition(world, "UpgradeInProgress") == ("False", "PendingClusterTimedOut")


def test_a_given_up_upgrade_is_not_retried_for_the_same_spec(world: World) -> None:
    old, pending = give_up(world)

    for _ in range(5):
        world.reconcile()
    world.clock.now += 3600
    world.reconcile()
    assert world.apply(manifest("b")).generation == 2, "the same spec applied again"
    world.reconcile()

    assert clusters(world) == [old]
    assert {c.name for c in world.provider.calls_to("ensure")} == {old, pending}
    assert len(events(world, "UpgradeStarted")) == 1
    assert sum(e.count for e in events(world, "UpgradeTimedOut")) == 1
    assert condition(world, "UpgradeInProgress") == ("False", "PendingClusterTimedOut")


@pytest.mark.parametrize(
    "change",
    [manifest("c"), manifest("b", price=4)],
    ids=["cluster-spec-changed", "serve-config-changed"],
)
def test_a_given_up_upgrade_is_retried_once_the_spec_changes(
    world: World, change: dict[str, Any]
) -> None:
    old, pending = give_up(world)

    assert world.apply(change).generation == 3
    world.reconcile()

    retry = name_of_generation(world, 3)
    assert retry != pending
    assert clusters(world) == sorted([old, retry])
    assert record(world)["pending"]["name"] == retry
    assert record(world)["given_up"] is None
    assert len(events(world, "UpgradeStarted")) == 2
    assert condition(world, "UpgradeInProgress") == ("True", "BothActivePendingClustersExist")


def test_going_back_to_the_active_spec_forgets_a_given_up_upgrade(world: World) -> None:
    old, _ = give_up(world)

    world.apply(manifest("a"))
    world.reconcile()

    assert clusters(world) == [old]
    assert record(world)["given_up"] is None
    assert condition(world, "UpgradeInProgress") == ("False", "NoPendingCluster")
    world.apply(manifest("b"))
    world.reconcile()
    assert record(world)["pending"]["name"] == name_of_generation(world, 4)


def test_observed_generation_and_conditions_through_an_upgrade(world: World) -> None:
    start(world, manifest())
    world.apply(manifest("b"))
    world.reconcile()
    new = record(world)["pending"]["name"]
    upgrading = next(c for c in status(world)["conditions"] if c["type"] == "UpgradeInProgress")
    assert upgrading["status"] == "True"
    assert upgrading["observedGeneration"] == 2
    assert new in upgrading["message"]
    assert "waiting for the head" in upgrading["message"]
    assert status(world)["observedGeneration"] == 1

    take_config(world, new)
    assert status(world)["observedGeneration"] == 1, "PUT in this pass, accepted after it"
    world.reconcile()
    assert status(world)["observedGeneration"] == 2
    set_apps(world, new)
    world.provider.mark_proxies_ready(new)
    assert condition(world, "UpgradeInProgress") == ("True", "BothActivePendingClustersExist")
    apps = status(world)["pendingServiceStatus"]["applicationStatuses"]
    assert sorted(apps) == ["fruit_app", "math_app"]

    world.reconcile()

    assert status(world)["observedGeneration"] == 2
    assert status(world)["pendingServiceStatus"] == {
        "rayClusterName": "",
        "applicationStatuses": {},
        "targetCapacity": None,
        "trafficRoutedPercent": None,
    }
    done = next(c for c in status(world)["conditions"] if c["type"] == "UpgradeInProgress")
    assert (done["status"], done["reason"]) == ("False", "NoPendingCluster")
    assert done["lastTransitionTime"] != upgrading["lastTransitionTime"]


# -- upgradeStrategy None -------------------------------------------------------------------


def test_strategy_none_holds_a_cluster_change_and_still_applies_serve_changes(
    world: World,
) -> None:
    name = start(world, manifest(strategy="None"))
    dashboard = url(world, name)

    assert world.apply(manifest("b", strategy="None")).generation == 2
    world.reconcile()
    world.reconcile()

    assert clusters(world) == [name]
    assert record(world)["pending"] is None
    assert dict(world.provider.request_of(name).head.env) == {}
    assert condition(world, "UpgradeInProgress") == ("False", "UpgradeStrategyNone")
    assert events(world, "UpgradeStarted") == []

    world.apply(manifest("b", strategy="None", price=4))
    world.reconcile()
    world.reconcile()

    assert clusters(world) == [name]
    assert [price_in(c) for c in deployed(world, dashboard)] == [3, 4]
    assert status(world)["observedGeneration"] == 3
    assert condition(world, "UpgradeInProgress") == ("False", "UpgradeStrategyNone")
    upgrade = next(c for c in status(world)["conditions"] if c["type"] == "UpgradeInProgress")
    assert name in upgrade["message"] and "not applied" in upgrade["message"]

    world.apply(manifest("b"))  # the default strategy again: now the change goes through
    world.reconcile()
    assert record(world)["pending"]["name"] == name_of_generation(world, 4)


def test_switching_to_strategy_none_during_an_upgrade_drops_the_pending_cluster(
    world: World,
) -> None:
    old = start(world, manifest())
    world.apply(manifest("b"))
    world.reconcile()
    pending = record(world)["pending"]["name"]

    world.apply(manifest("b", strategy="None"))
    world.reconcile()

    assert clusters(world) == [old]
    assert record(world)["pending"] is None
    assert condition(world, "UpgradeInProgress") == ("False", "UpgradeStrategyNone")
    assert [c.name for c in world.provider.calls_to("delete")] == [pending]


# -- NewClusterWithIncrementalUpgrade -------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Moment:
    """One pass of an incremental upgrade as the outside world saw it."""

    at: float
    split: tuple[int | None, int, int | None, int]
    weights: dict[str, list[int]]  # per cluster, its servers' weights in the front
    capacity_on: dict[str, int]  # per cluster, target_capacity of the last config it got


def moment(world: World) -> Moment:
    deployed_capacity = {}
    for name in clusters(world):
        cluster = observed(world, name)
        last = world.serve.last_deployed(cluster.dashboard_url)
        if last is not None:
            deployed_capacity[name] = last.get("target_capacity", 100)
    return Moment(
        at=world.clock.now,
        split=split_of(world),
        weights={name: weights(world, name) for name in clusters(world)},
        capacity_on=deployed_capacity,
    )


def run(world: World, seconds: int) -> list[Moment]:
    """Reconcile once a second for ``seconds``, Ray applying every config at once."""
    moments = []
    for _ in range(seconds):
        world.reconcile()
        serve_follows_configs(world)
        moments.append(moment(world))
    return moments


def check_rules(moments: list[Moment], old: str, new: str) -> None:
    """Capacities within 100 + surge; traffic on a cluster never more than its capacity, in
    the record and as actually deployed; the front's weights are the traffic shares."""
    for m in moments:
        active_cap, active_traffic, pending_cap, pending_traffic = m.split
        active_cap = 100 if active_cap is None else active_cap
        if pending_cap is None:
            continue
        assert active_traffic + pending_traffic == 100, m
        assert active_traffic <= active_cap and pending_traffic <= pending_cap, m
        assert active_cap + pending_cap <= 100 + SURGE, m
        for cluster, traffic in ((old, active_traffic), (new, pending_traffic)):
            servers = m.weights.get(cluster, [])
            assert servers == [server_weight(traffic, len(servers))] * len(servers), m
            if traffic:
                assert m.capacity_on[cluster] >= traffic, f"traffic ahead of capacity: {m}"


def start_incremental(world: World) -> tuple[str, str]:
    """An incremental upgrade from a to b whose pending cluster is up and serving."""
    old = start(world, incremental())
    assert world.apply(incremental("b")).generation == 2
    world.reconcile()
    new = record(world)["pending"]["name"]
    bring_up_pending(world, new)
    return old, new


def incremental_at(
    world: World, seconds: int, split: tuple[int | None, int, int | None, int]
) -> tuple[str, str]:
    """An incremental upgrade from a to b run for ``seconds``, checked to be at ``split``."""
    old, new = start_incremental(world)
    run(world, seconds)
    assert split_of(world) == split
    return old, new


def changes(moments: list[Moment]) -> list[tuple[float, tuple[int | None, int, int | None, int]]]:
    """The passes at which the split moved, with the split they moved to."""
    return [
        (after.at, after.split)
        for before, after in itertools.pairwise(moments)
        if after.split != before.split
    ]


def test_an_incremental_upgrade_moves_in_steps_at_the_interval(world: World) -> None:
    old = start(world, incremental())
    assert split_of(world) == (None, 100, None, 0)
    world.apply(incremental("b"))
    world.reconcile()
    begun = world.clock.now
    new = record(world)["pending"]["name"]

    # the pending cluster starts with no traffic and no capacity; the first step waits one
    # full interval from this pass
    assert split_of(world) == (None, 100, 0, 0)
    assert record(world)["last_step_at"] == begun
    assert events(world, "TrafficStepped") == []
    assert weights(world, old) == [server_weight(100, 2)] * 2
    assert weights(world, new) == [], "the pending cluster did not exist when the front was set"

    world.provider.make_head_ready(new)
    moments = [moment(world)]
    moments += run(world, 2)
    assert weights(world, new) == [0, 0], "its nodes are in the front, without traffic"
    [config] = deployed(world, url(world, new))
    assert config["target_capacity"] == 0
    world.provider.mark_proxies_ready(new)
    moments += run(world, 90)

    check_rules(moments, old, new)
    assert changes(moments) == [
        (begun + 10, (100, 100, 50, 0)),
        (begun + 20, (100, 75, 50, 25)),
        (begun + 30, (100, 50, 50, 50)),
        (begun + 40, (50, 50, 50, 50)),
        (begun + 50, (50, 50, 100, 50)),
        (begun + 60, (50, 25, 100, 75)),
        (begun + 70, (50, 0, 100, 100)),
        (begun + 80, (0, 0, 100, 100)),
        (begun + 81, (100, 100, None, 0)),  # done: the pending cluster is now the active one
    ]
    assert record(world)["active"]["name"] == new
    assert [r["name"] for r in record(world)["retiring"]] == [old]
    assert weights(world, new) == [100, 100], "one cluster: plain weights"
    assert weights(world, old) == []
    capacities = [c.get("target_capacity", 100) for c in deployed(world, url(world, old))]
    assert [c for i, c in enumerate(capacities) if i == 0 or capacities[i - 1] != c] == [
        100,
        50,
        0,
    ]
    assert [c.get("target_capacity", 100) for c in deployed(world, url(world, new))] == [0, 50, 100]
    steps = events(world, "TrafficStepped")
    assert len(steps) == 8
    assert len(events(world, "UpgradeCompleted")) == 1
    submitted = [e.message for e in events(world, "ServeConfigSubmitted")]
    assert f"Serve target_capacity 0% -> 50%: submitting it to cluster {new}" in submitted
    assert f"Serve target_capacity full -> 50%: submitting it to cluster {old}" in submitted
    assert f"Serve target_capacity 50% -> full: submitting it to cluster {new}" in submitted


def test_traffic_waits_for_the_pending_cluster_to_serve(world: World) -> None:
    old = start(world, incremental())
    world.apply(incremental("b"))
    world.reconcile()
    begun = world.clock.now
    new = record(world)["pending"]["name"]

    moments = run(world, 30)  # the head never answers
    # a capacity step needs nothing from the pending cluster; the traffic step due at +20 waits
    assert moments[0].split == (None, 100, 0, 0)
    assert changes(moments) == [(begun + INTERVAL, (100, 100, SURGE, 0))]
    assert moments[-1].split == (100, 100, SURGE, 0)

    world.provider.make_head_ready(new)
    moments = run(world, 30)  # apps RUNNING, but no healthy proxy
    assert {m.split for m in moments} == {(100, 100, SURGE, 0)}
    assert record(world)["last_step_at"] == begun + INTERVAL
    assert status(world)["pendingServiceStatus"]["trafficRoutedPercent"] == 0
    assert weights(world, new) == [0, 0]

    world.provider.mark_proxies_ready(new)
    moments = run(world, 1)
    assert moments[-1].split == (100, 75, SURGE, 25), "due long ago: moves at once when ready"
    check_rules(moments, old, new)


def test_incremental_status_shows_capacity_and_traffic_of_both_clusters(world: World) -> None:
    old, new = start_incremental(world)
    active = status(world)["activeServiceStatus"]
    pending = status(world)["pendingServiceStatus"]
    assert (active["targetCapacity"], active["trafficRoutedPercent"]) == (100, 100)
    assert (pending["targetCapacity"], pending["trafficRoutedPercent"]) == (0, 0)
    run(world, 20)  # the capacity step at +10, the first traffic step at +20

    active = status(world)["activeServiceStatus"]
    pending = status(world)["pendingServiceStatus"]
    assert (active["rayClusterName"], active["targetCapacity"], active["trafficRoutedPercent"]) == (
        old,
        100,
        75,
    )
    assert (
        pending["rayClusterName"],
        pending["targetCapacity"],
        pending["trafficRoutedPercent"],
    ) == (new, SURGE, 25)
    upgrade = next(c for c in status(world)["conditions"] if c["type"] == "UpgradeInProgress")
    assert upgrade["status"] == "True"
    assert "25% of traffic and 50% capacity" in upgrade["message"]
    assert weights(world, old) == [75, 75]
    assert weights(world, new) == [25, 25]


def test_the_pause_annotation_stops_steps_until_it_is_removed(world: World) -> None:
    old, new = incremental_at(world, 20, (100, 75, SURGE, 25))

    paused = world.apply(incremental("b", annotations={PAUSE: "true"}))
    assert paused.generation == 2, "annotations are not spec"
    moments = run(world, 60)

    assert {m.split for m in moments} == {(100, 75, SURGE, 25)}
    assert len(events(world, "TrafficStepped")) == 2  # the capacity and the first traffic step
    assert clusters(world) == sorted([old, new])

    world.apply(incremental("b"))
    moments = run(world, 1)
    assert moments[-1].split == (100, 50, SURGE, 50)


def test_the_promote_annotation_switches_at_once_when_the_pending_cluster_serves(
    world: World,
) -> None:
    old = start(world, incremental())
    world.apply(incremental("b"))
    world.reconcile()
    new = record(world)["pending"]["name"]

    world.apply(incremental("b", annotations={PROMOTE: new}))
    run(world, 5)
    assert record(world)["pending"]["name"] == new, "not before it serves"

    world.apply(incremental("b", annotations={PROMOTE: "some-other-cluster"}))
    world.provider.make_head_ready(new)
    world.provider.mark_proxies_ready(new)
    run(world, 3)
    assert record(world)["pending"]["name"] == new, "the annotation names another cluster"

    world.apply(incremental("b", annotations={PROMOTE: new}))
    world.reconcile()

    stored = record(world)
    assert stored["active"]["name"] == new
    assert stored["active"]["target_capacity"] == 100
    assert stored["pending"] is None
    assert [r["name"] for r in stored["retiring"]] == [old]
    assert backend_clusters(world) == {new}
    assert weights(world, new) == [100, 100]
    assert len(events(world, "RolloutPromoted")) == 1
    assert len(events(world, "UpgradeCompleted")) == 1
    run(world, 2)
    assert deployed(world, url(world, new))[-1].get("target_capacity", 100) == 100


def test_an_incremental_rollback_steps_traffic_back_then_drops_the_pending_cluster(
    world: World,
) -> None:
    old, new = start_incremental(world)
    forward = run(world, 40)
    assert split_of(world) == (50, 50, 50, 50)
    last_step_at = record(world)["last_step_at"]

    assert world.apply(incremental("a")).generation == 3
    world.reconcile()
    rolled_back_at = world.clock.now

    assert record(world)["phase"] == "RollingBack" and record(world)["pending"]
    assert condition(world, "RollbackInProgress") == ("True", "StepTrafficBack")
    assert condition(world, "UpgradeInProgress") == ("False", "NoPendingCluster")
    assert len(events(world, "RollbackStarted")) == 1
    rolling_back = moment(world)
    back = run(world, 80)

    check_rules(forward + back, old, new)
    moved = changes([rolling_back, *back])
    traffic_on_new = [split[3] for _, split in moved]
    assert traffic_on_new == sorted(traffic_on_new, reverse=True), "traffic only comes back"
    assert all(at - rolled_back_at >= 0 for at, _ in moved)
    # the steps back keep the cadence; once no traffic is left on it, the pending cluster goes
    assert moved == [
        (last_step_at + 10, (100, 50, 50, 50)),
        (last_step_at + 20, (100, 75, 50, 25)),
        (last_step_at + 30, (100, 100, 50, 0)),
        (last_step_at + 31, (None, 100, None, 0)),
    ]
    assert clusters(world) == [old]
    assert record(world)["pending"] is None
    assert split_of(world) == (None, 100, None, 0)
    assert backend_clusters(world) == {old}
    assert weights(world, old) == [100, 100]
    assert len(events(world, "RollbackCompleted")) == 1
    assert condition(world, "RollbackInProgress") == ("False", "NoRollback")
    assert deployed(world, url(world, old))[-1].get("target_capacity") is None
    assert events(world, "UpgradeCompleted") == []


def test_an_incremental_rollback_before_any_traffic_moved_drops_the_pending_cluster_at_once(
    world: World,
) -> None:
    old = start(world, incremental())
    world.apply(incremental("b"))
    world.reconcile()
    pending = record(world)["pending"]["name"]

    world.apply(incremental("a"))
    world.reconcile()

    assert clusters(world) == [old]
    assert split_of(world) == (None, 100, None, 0)
    assert condition(world, "RollbackInProgress") == ("True", "DeletingPendingCluster")
    assert pending in record(world)["rolled_back"]


def test_a_slow_moment_late_in_an_incremental_upgrade_does_not_give_it_up(world: World) -> None:
    """pendingClusterTimeoutSeconds is for a pending cluster that never gets ready. One that
    already carries traffic and is briefly busy (Serve scaling up after a capacity step) must
    not be deleted with its traffic thrown onto an active cluster whose capacity was lowered."""
    old = start(world, incremental(pendingClusterTimeoutSeconds=45))
    world.apply(incremental("b", pendingClusterTimeoutSeconds=45))
    world.reconcile()
    new = record(world)["pending"]["name"]
    created_at = record(world)["pending"]["created_at"]
    bring_up_pending(world, new)
    moments = run(world, 50)
    assert split_of(world) == (50, 50, 100, 50)
    assert record(world)["last_step_at"] == created_at + 5 * INTERVAL
    assert record(world)["last_step_at"] + INTERVAL > created_at + 45, "next step after 45 s"

    set_apps(world, new, {"fruit_app": "DEPLOYING"})  # scaling up to its new capacity
    for _ in range(15):
        world.reconcile()
        moments.append(moment(world))
    assert split_of(world) == (50, 50, 100, 50), "no traffic moves while it is busy"
    assert clusters(world) == sorted([old, new])
    assert events(world, "UpgradeTimedOut") == []

    moments += run(world, 40)

    check_rules(moments, old, new)
    assert record(world)["active"]["name"] == new
    assert len(events(world, "UpgradeCompleted")) == 1


def test_an_incremental_upgrade_stalled_for_the_timeout_is_given_up(world: World) -> None:
    """Never two clusters for ever: a pending cluster that stops serving mid-way and makes no
    progress for pendingClusterTimeoutSeconds after its last step is given up."""
    old = start(world, incremental(pendingClusterTimeoutSeconds=45))
    world.apply(incremental("b", pendingClusterTimeoutSeconds=45))
    world.reconcile()
    new = record(world)["pending"]["name"]
    bring_up_pending(world, new)
    run(world, 50)
    last_step_at = record(world)["last_step_at"]
    assert last_step_at == record(world)["pending"]["created_at"] + 5 * INTERVAL
    assert split_of(world) == (50, 50, 100, 50)

    set_apps(world, new, {"math_app": "UNHEALTHY"})
    world.clock.now = last_step_at + 43
    world.reconcile()
    assert record(world)["pending"]["name"] == new, "44 s after the last step"
    world.reconcile()

    assert clusters(world) == [old]
    assert split_of(world) == (None, 100, None, 0)
    assert backend_clusters(world) == {old}
    assert weights(world, old) == [100, 100]
    world.reconcile()  # the full capacity goes out on the next pass
    assert deployed(world, url(world, old))[-1].get("target_capacity") is None
    [warning] = events(world, "UpgradeTimedOut")
    assert new in warning.message


def test_a_restart_mid_rollout_keeps_the_step_cadence(world: World) -> None:
    old, new = incremental_at(world, 22, (100, 75, SURGE, 25))
    last_step_at = record(world)["last_step_at"]
    assert last_step_at == record(world)["pending"]["created_at"] + 2 * INTERVAL

    world.restart_controller()
    moments = run(world, 12)

    assert changes(moments) == [(last_step_at + INTERVAL, (100, 50, SURGE, 50))]
    assert clusters(world) == sorted([old, new])


def test_with_no_deletion_delay_the_old_cluster_goes_after_the_front_switched(
    world: World,
) -> None:
    old = start(world, manifest(rayClusterDeletionDelaySeconds=0))
    world.apply(manifest("b", rayClusterDeletionDelaySeconds=0))
    world.reconcile()
    new = record(world)["pending"]["name"]
    bring_up_pending(world, new)

    plan = world.reconcile()

    kinds = [(type(a).__name__, getattr(a, "name", None)) for a in plan.actions]
    assert kinds == [("EnsureFront", None), ("DeleteCluster", old)]
    assert clusters(world) == [new]
    assert backend_clusters(world) == {new}


def test_switching_an_incremental_upgrade_to_new_cluster_restores_full_capacity(
    world: World,
) -> None:
    old, new = incremental_at(world, 22, (100, 75, SURGE, 25))

    world.apply(manifest("b"))  # the default strategy, NewCluster
    moments = run(world, 1)

    assert record(world)["pending"]["name"] == new
    assert record(world)["pending"]["target_capacity"] is None
    assert record(world)["active"]["target_capacity"] is None
    assert backend_clusters(world) == {old}, "all traffic back on the active cluster"
    assert moments[-1].capacity_on[new] == 100, "the pending cluster runs at full capacity"

    run(world, 2)

    assert record(world)["active"]["name"] == new
    assert record(world)["active"]["target_capacity"] is None
    assert backend_clusters(world) == {new}
    assert "target_capacity" not in deployed(world, url(world, new))[-1]


def test_switching_a_new_cluster_upgrade_to_incremental_starts_the_steps_from_zero(
    world: World,
) -> None:
    old = start(world, manifest())
    world.apply(manifest("b"))
    world.reconcile()
    new = record(world)["pending"]["name"]
    take_config(world, new)
    assert "target_capacity" not in deployed(world, url(world, new))[-1]

    world.apply(incremental("b"))
    world.provider.mark_proxies_ready(new)
    moments = run(world, 90)

    check_rules(moments, old, new)
    assert moments[0].split == (None, 100, 0, 0), "from capacity 0, like any incremental start"
    [(first_step_at, first_split), *_] = changes(moments)
    assert first_split == (100, 100, SURGE, 0)
    assert first_step_at - moments[0].at >= INTERVAL, "the first step waits an interval"
    assert max(m.capacity_on.get(new, 0) + m.capacity_on.get(old, 0) for m in moments) <= 150
    assert record(world)["active"]["name"] == new
    assert len(events(world, "UpgradeCompleted")) == 1


def test_replacing_an_incremental_pending_cluster_under_new_cluster_restores_the_active_one(
    world: World,
) -> None:
    old, replaced = incremental_at(world, 42, (50, 50, SURGE, 50))

    world.apply(manifest("c"))  # another cluster spec and the default strategy, NewCluster
    world.reconcile()

    assert clusters(world) == sorted([old, name_of_generation(world, 3)])
    assert replaced not in clusters(world)
    assert record(world)["active"]["target_capacity"] is None
    assert record(world)["active"]["traffic_percent"] == 100
    assert "target_capacity" not in deployed(world, url(world, old))[-1]


def test_a_paused_new_cluster_upgrade_switches_only_when_promoted(world: World) -> None:
    old = start(world, manifest())
    world.apply(manifest("b", annotations={PAUSE: "true"}))
    world.reconcile()
    new = record(world)["pending"]["name"]
    bring_up_pending(world, new)

    for _ in range(5):
        world.reconcile()
    assert record(world)["active"]["name"] == old, "paused: ready, but no switch"
    assert backend_clusters(world) == {old}

    world.apply(manifest("b", annotations={PAUSE: "true", PROMOTE: new}))
    world.reconcile()

    assert record(world)["active"]["name"] == new
    assert backend_clusters(world) == {new}
    assert [r["name"] for r in record(world)["retiring"]] == [old]


# -- review fixes ---------------------------------------------------------------------------


def roll_back_halfway(world: World) -> tuple[str, str]:
    """An incremental upgrade from a to b at half the traffic, then a again: the rollback
    has started (traffic still 50/50) and steps back from the next interval on."""
    old, new = incremental_at(world, 40, (50, 50, 50, 50))
    assert world.apply(incremental("a")).generation == 3
    world.reconcile()
    assert record(world)["phase"] == "RollingBack" and record(world)["pending"]
    assert split_of(world) == (50, 50, 50, 50)
    return old, new


def head_of(world: World, name: str) -> str:
    [head] = world.provider.node_names(name, NodeRole.HEAD)
    return head


@pytest.mark.parametrize("outage", ["head-down", "no-healthy-proxy"])
def test_an_incremental_rollback_steps_traffic_back_only_while_the_active_cluster_serves(
    world: World, outage: str
) -> None:
    old, new = roll_back_halfway(world)
    steps = len(events(world, "TrafficStepped"))
    if outage == "head-down":
        world.provider.kill_node(old, head_of(world, old))
    else:
        world.provider.mark_proxies_ready(old, ready=False)

    stalled = run(world, 60)

    # the capacity step back needs nothing from either cluster; no traffic step follows it
    [(_, capacity_back)] = changes(stalled)
    assert capacity_back == (100, 50, 50, 50)
    assert stalled[-1].split == (100, 50, 50, 50)
    assert len(events(world, "TrafficStepped")) == steps + 1
    assert clusters(world) == sorted([old, new]), "the pending cluster still serves half"
    assert record(world)["pending"]["name"] == new
    assert record(world)["phase"] == "RollingBack" and record(world)["pending"]
    assert [c.name for c in world.provider.calls_to("delete")] == []
    assert events(world, "RollbackCompleted") == []
    assert condition(world, "RollbackInProgress") == ("True", "StepTrafficBack")

    world.provider.make_head_ready(old)
    world.provider.mark_proxies_ready(old)
    back = run(world, 40)

    assert [split for _, split in changes([stalled[-1], *back])] == [
        (100, 75, 50, 25),
        (100, 100, 50, 0),
        (None, 100, None, 0),
    ]
    check_rules(back, old, new)
    assert clusters(world) == [old]
    assert len(events(world, "TrafficStepped")) == steps + 3
    assert len(events(world, "RollbackCompleted")) == 1


def test_strategy_none_in_the_middle_of_an_incremental_upgrade_restores_the_active_cluster(
    world: World,
) -> None:
    old, new = incremental_at(world, 42, (50, 50, SURGE, 50))

    world.apply(manifest("b", strategy="None"))
    world.reconcile()

    assert clusters(world) == [old]
    assert [c.name for c in world.provider.calls_to("delete")] == [new]
    stored = record(world)
    assert stored["pending"] is None
    assert (stored["active"]["traffic_percent"], stored["active"]["target_capacity"]) == (100, None)
    assert backend_clusters(world) == {old}
    assert condition(world, "UpgradeInProgress") == ("False", "UpgradeStrategyNone")
    world.reconcile()  # the full capacity goes out on the next pass
    assert "target_capacity" not in deployed(world, url(world, old))[-1]


def test_promote_below_full_capacity_raises_the_capacity_before_switching(world: World) -> None:
    old, new = start_incremental(world)
    assert split_of(world) == (None, 100, 0, 0)
    new_url = url(world, new)
    assert [c.get("target_capacity", 100) for c in deployed(world, new_url)] == [0]

    world.apply(incremental("b", annotations={PROMOTE: new}))
    first = world.reconcile()

    assert split_of(world) == (None, 100, 100, 0), "full capacity first, no traffic yet"
    assert record(world)["active"]["name"] == old
    assert events(world, "RolloutPromoted") == []
    assert backend_clusters(world) == {old, new}
    assert weights(world, new) == [0, 0]
    assert any("full capacity before all traffic" in note for note in first.notes)
    # the config at capacity 100 goes out in the same pass
    assert [c.get("target_capacity", 100) for c in deployed(world, new_url)] == [0, 100]

    set_apps(world, new, DEPLOYING)  # Ray scales the apps up to the new capacity
    for _ in range(3):
        world.reconcile()
    assert record(world)["active"]["name"] == old, "not while it is scaling up"
    assert split_of(world) == (None, 100, 100, 0)

    set_apps(world, new)
    world.reconcile()

    stored = record(world)
    assert stored["active"]["name"] == new
    assert stored["active"]["target_capacity"] == 100
    assert stored["pending"] is None
    assert [r["name"] for r in stored["retiring"]] == [old]
    assert backend_clusters(world) == {new}
    assert len(events(world, "RolloutPromoted")) == 1
    assert [c.get("target_capacity", 100) for c in deployed(world, new_url)] == [0, 100]


def test_going_back_to_the_pending_spec_during_a_rollback_resumes_the_upgrade(
    world: World,
) -> None:
    old, new = roll_back_halfway(world)
    run(world, 20)
    assert split_of(world) == (100, 75, SURGE, 25)
    ensured = {c.name for c in world.provider.calls_to("ensure")}

    assert world.apply(incremental("b")).generation == 4
    world.reconcile()

    assert clusters(world) == sorted([old, new])
    assert record(world)["pending"]["name"] == new
    assert record(world)["phase"] == "Stepping"
    assert split_of(world) == (100, 75, SURGE, 25)
    assert [c.name for c in world.provider.calls_to("delete")] == []
    assert {c.name for c in world.provider.calls_to("ensure")} == ensured == {old, new}
    [cancelled] = events(world, "RollbackCancelled")
    assert new in cancelled.message
    assert len(events(world, "UpgradeStarted")) == 1
    assert events(world, "PendingClusterReplaced") == []
    assert condition(world, "RollbackInProgress") == ("False", "NoRollback")
    assert condition(world, "UpgradeInProgress") == ("True", "BothActivePendingClustersExist")

    forward = run(world, 60)

    check_rules(forward, old, new)
    traffic_on_new = [m.split[3] for m in forward if m.split[2] is not None]
    assert traffic_on_new == sorted(traffic_on_new), "traffic only moves forward again"
    assert record(world)["active"]["name"] == new
    assert record(world)["pending"] is None
    assert len(events(world, "UpgradeCompleted")) == 1
    assert events(world, "RollbackCompleted") == []


def test_weights_are_shared_by_the_nodes_whose_proxy_serves(world: World) -> None:
    old, new = incremental_at(world, 20, (100, 75, SURGE, 25))
    assert (weights(world, old), weights(world, new)) == ([75, 75], [25, 25])
    [old_worker] = world.provider.node_names(old, NodeRole.WORKER)
    [new_worker] = world.provider.node_names(new, NodeRole.WORKER)

    world.provider.mark_proxies_ready(old, [old_worker], ready=False)
    world.provider.mark_proxies_ready(new, [new_worker], ready=False)
    world.reconcile()

    assert split_of(world) == (100, 75, SURGE, 25)
    # one serving node per cluster carries the cluster's whole share; the other stays listed
    # (HAProxy's check keeps it out) with the same weight
    assert weights(world, old) == [server_weight(75, 1)] * 2 == [150, 150]
    assert weights(world, new) == [server_weight(25, 1)] * 2 == [50, 50]

    world.provider.mark_proxies_ready(old)
    world.provider.mark_proxies_ready(new)
    world.reconcile()
    assert (weights(world, old), weights(world, new)) == ([75, 75], [25, 25])


def test_observed_generation_during_a_rollback_follows_the_active_cluster(world: World) -> None:
    old, new = incremental_at(world, 40, (50, 50, 50, 50))
    assert status(world)["observedGeneration"] == 2
    world.provider.kill_node(old, head_of(world, old))  # its head stops answering

    assert world.apply(incremental("a", price=4)).generation == 3
    for _ in range(5):
        world.reconcile()

    assert record(world)["phase"] == "RollingBack" and record(world)["pending"]
    assert status(world)["observedGeneration"] == 2, "price 4 has reached no cluster"
    assert [price_in(c) for c in deployed(world, url(world, new))] == [3, 3]
    assert {price_in(c) for c in deployed(world, url(world, old))} == {3}

    world.provider.make_head_ready(old)
    world.provider.mark_proxies_ready(old)
    world.reconcile()  # the config with price 4 goes to the active cluster
    assert price_in(deployed(world, url(world, old))[-1]) == 4
    assert status(world)["observedGeneration"] == 2, "PUT in this pass, accepted after it"
    world.reconcile()

    assert status(world)["observedGeneration"] == 3
    assert record(world)["phase"] == "RollingBack" and record(world)["pending"]
    assert [price_in(c) for c in deployed(world, url(world, new))] == [3, 3]
