"""What ``diff`` announces is what the controller then does.

``rayservice diff``, ``apply --dry-run`` and the apply warnings answer "what will this apply
do?" with ``classify_change(stored manifest, new manifest, stored record)``. Users decide on
that answer (a new cluster or not, a rollback, a held change), so it must be what the next
reconcile pass really does. Hypothesis drives the world of ``test_reconciler`` (fake provider,
Serve client and front, a real SQLite store, a fake clock) through random sequences of applies
(cluster variant a/b/c, MangoStand's price, worker replicas, upgrade strategy) while the world
moves on in between (not at all, the pending cluster comes up, a few passes, the pending
timeout passes, the controller restarts). Before each apply the kind is asked exactly as
admission asks it; after the apply one pass runs, and what it did is checked from the outside
(actions, events, record, conditions, the provider and the Serve client), never by asking the
rollout again.

The plain tests after it pin the two disagreements that were found and fixed: going back to
the active spec during an upgrade was announced as a new cluster (it is a rollback), and
re-applying the running spec while ``upgradeStrategy: None`` held a change was announced, and
warned about, as a held cluster change. The tests at the end pin two more that the property
found, both after a given-up upgrade.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from rayservice.api.admission import apply_warnings
from rayservice.planner.actions import DeleteCluster, DeployServeConfig, EnsureCluster, Plan
from rayservice.planner.change import Change, ChangeKind, classify_change
from rayservice.planner.record import load_record
from rayservice.spec.hashing import cluster_spec_hash
from rayservice.spec.manifest import RayService
from rayservice.spec.service_exposure import DEFAULT_EXPOSURE
from rayservice.spec.status import RayServiceStatus
from rayservice.spec.vocabulary import KIND, ConditionReason, EventReason
from rayservice.store.sqlite import SqliteStore
from tests.unit.test_upgrades import (
    INCREMENTAL,
    OPTIONS,
    clusters,
    condition,
    manifest,
    price_in,
    record,
    serve_follows_configs,
    start,
)
from tests.unit.world import NAME, NAMESPACE, World, world_around

NEW_CLUSTER, NONE = "NewCluster", "None"
PASSES = 3  # passes of the "some passes" move, 10 s apart (the incremental interval)


def new_world(directory: Path) -> World:
    """The reconciler's world with nothing applied, its store in ``directory``."""
    return world_around(SqliteStore(directory / "store.db"))


@dataclass(frozen=True)
class Spec:
    """One manifest to apply."""

    variant: str
    price: int
    replicas: int
    strategy: str

    def document(self) -> dict[str, Any]:
        def scale(cluster: dict[str, Any]) -> None:
            cluster["workerGroupSpecs"][0]["replicas"] = self.replicas

        options = OPTIONS if self.strategy == INCREMENTAL else None
        return manifest(
            self.variant, price=self.price, strategy=self.strategy, options=options, edit=scale
        )


class Move(StrEnum):
    """How the outside world moves on between two applies."""

    NOTHING = "nothing"
    PENDING_UP = "the pending cluster comes up"
    PASSES = "a few passes"
    TIME_OUT = "the pending timeout passes"
    RESTART = "a new controller on the same store"


SPECS = st.builds(
    Spec,
    variant=st.sampled_from("abc"),
    price=st.sampled_from((3, 4)),
    replicas=st.sampled_from((1, 2)),
    strategy=st.sampled_from((NEW_CLUSTER, NONE, INCREMENTAL)),
)
STEPS = st.lists(st.tuples(st.sampled_from(Move), SPECS), min_size=1, max_size=6)


# -- what the world looks like from outside -------------------------------------------------


def event_count(world: World, reason: EventReason) -> int:
    return sum(e.count for e in world.store.events(NAMESPACE, NAME) if e.reason == reason)


def stored_record(world: World) -> dict[str, Any]:
    resource = world.store.get(KIND, NAMESPACE, NAME)
    return resource.record if resource is not None else {}


def slots(world: World) -> tuple[str | None, str | None]:
    """The names of the active and the pending cluster in the stored record."""
    stored = stored_record(world)
    active, pending = stored.get("active"), stored.get("pending")
    return (active["name"] if active else None, pending["name"] if pending else None)


def rollback_condition(world: World) -> tuple[str, str] | None:
    resource = world.store.get(KIND, NAMESPACE, NAME)
    if resource is None or not resource.status.get("conditions"):
        return None
    return condition(world, "RollbackInProgress")


def last_configs(world: World) -> dict[str, tuple[int, dict[str, Any]]]:
    """How many Serve configs each dashboard got, and the last one."""
    return {url: (len(configs), configs[-1]) for url, configs in world.serve.deployed.items()}


def without_capacity(config: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in config.items() if key != "target_capacity"}


@dataclass(frozen=True)
class Outside:
    """What can be seen of the world at one moment."""

    clusters: frozenset[str]
    active: str | None
    pending: str | None
    rollback: tuple[str, str] | None
    configs: dict[str, tuple[int, dict[str, Any]]]
    started: int
    rollbacks_started: int
    timed_out: int
    given_up: bool  # the record keeps a given-up upgrade

    @classmethod
    def of(cls, world: World) -> Outside:
        active, pending = slots(world)
        return cls(
            clusters=frozenset(clusters(world)),
            active=active,
            pending=pending,
            rollback=rollback_condition(world),
            configs=last_configs(world),
            started=event_count(world, EventReason.UPGRADE_STARTED),
            rollbacks_started=event_count(world, EventReason.ROLLBACK_STARTED),
            timed_out=event_count(world, EventReason.UPGRADE_TIMED_OUT),
            given_up=bool(stored_record(world).get("given_up")),
        )


# -- moving on -------------------------------------------------------------------------------


def move(world: World, how: Move) -> None:
    if how is Move.PENDING_UP:
        _, pending = slots(world)
        if pending is not None and pending in clusters(world):
            world.provider.make_head_ready(pending)
            world.reconcile()
            serve_follows_configs(world)
            world.provider.mark_proxies_ready(pending)
    elif how is Move.PASSES:
        for _ in range(PASSES):
            world.clock.now += 9  # and one by the pass itself
            world.reconcile()
            serve_follows_configs(world)
    elif how is Move.TIME_OUT:
        world.clock.now += 600
        world.reconcile()
        serve_follows_configs(world)
    elif how is Move.RESTART:
        world.restart_controller()


def announced(world: World, spec: Spec) -> Change:
    """The answer of ``diff``: the stored manifest and record against the new manifest, as
    ``api.admission`` asks it."""
    new = RayService.model_validate(spec.document())
    stored = world.store.get(KIND, NAMESPACE, NAME)
    if stored is None:
        return classify_change(None, new)
    current = RayService.model_validate(stored.manifest)
    return classify_change(current, new, load_record(stored.record) if stored.record else None)


def apply_and_check(world: World, spec: Spec) -> ChangeKind:
    """Ask diff, apply ``spec``, run one pass and check the pass did what diff said."""
    change = announced(world, spec)
    before = Outside.of(world)
    world.apply(spec.document())
    plan = world.reconcile()
    after = Outside.of(world)
    check(change.kind, spec, world, plan, before, after)
    return change.kind


def check(
    kind: ChangeKind,
    spec: Spec,
    world: World,
    plan: Plan[RayServiceStatus],
    before: Outside,
    after: Outside,
) -> None:
    story = f"{kind} announced for {spec}: {before} -> {after}; actions {plan.actions}"
    created = after.clusters - before.clusters
    ensured = {a.request.name for a in plan.actions if isinstance(a, EnsureCluster)}
    deleted = {a.name for a in plan.actions if isinstance(a, DeleteCluster)}
    puts = {a.cluster: a.config for a in plan.actions if isinstance(a, DeployServeConfig)}
    new_cluster = after.pending if kind is ChangeKind.NEW_CLUSTER else after.active
    if kind in (ChangeKind.CREATE, ChangeKind.NEW_CLUSTER):
        assert new_cluster is not None and created == {new_cluster}, story
        assert new_cluster in ensured, story
    else:
        assert created == set(), f"a new cluster: {story}"
        assert after.started == before.started, f"an upgrade started: {story}"
    match kind:
        case ChangeKind.CREATE:
            assert before.active is None, story
        case ChangeKind.NEW_CLUSTER:
            assert after.started == before.started + 1, story
            assert after.pending not in (before.active, before.pending), story
            assert after.active == before.active, story
        case ChangeKind.ROLLBACK:
            assert before.pending is not None, story
            assert after.active == before.active, story
            dropped = after.pending is None and before.pending in deleted
            assert after.rollback is not None and after.rollback[0] == "True", story
            assert (
                dropped
                or after.rollbacks_started == before.rollbacks_started + 1
                or before.rollback == ("True", ConditionReason.STEP_TRAFFIC_BACK)
            ), story
        case ChangeKind.PENDING_UPDATE if after.timed_out > before.timed_out:
            # it was overdue: given up in this pass, whatever was applied
            assert before.pending in deleted and after.pending is None, story
        case ChangeKind.PENDING_UPDATE:
            pending = before.pending
            assert pending is not None and pending in (after.pending, after.active), story
            assert pending not in deleted, story
            taken = record(world)["pending" if after.pending == pending else "active"]
            spec_service = RayService.model_validate(spec.document()).spec
            assert taken["spec_hash"] == cluster_spec_hash(spec_service.rayClusterConfig), story
            assert taken["serve_config"] == spec_service.serve_config(), story
            request = world.provider.request_of(pending)
            assert [g.replicas for g in request.workers] == [spec.replicas], story
        case ChangeKind.HELD:
            assert condition(world, "UpgradeInProgress") == (
                "False",
                ConditionReason.UPGRADE_STRATEGY_NONE,
            ), story
            assert after.pending is None and after.active == before.active, story
        case ChangeKind.WORKER_COUNT:
            assert after.active == before.active and after.active in ensured, story
            request = world.provider.request_of(after.active)
            assert [g.replicas for g in request.workers] == [spec.replicas], story
        case ChangeKind.SERVE_UPDATE:
            assert after.active == before.active and after.active in puts, story
            assert price_in(puts[after.active]) == spec.price, story
        case ChangeKind.SETTINGS | ChangeKind.NO_OP:
            for url, (count, config) in after.configs.items():
                if url not in before.configs:
                    raise AssertionError(f"a first Serve config: {story}")
                earlier, previous = before.configs[url]
                if count != earlier:  # a PUT: a capacity step may go out, not a new config
                    assert without_capacity(config) == without_capacity(previous), (
                        f"a new Serve config: {story}"
                    )


@settings(
    max_examples=40,
    deadline=None,
    database=None,  # nothing written into the tree
    phases=(Phase.explicit, Phase.generate, Phase.shrink),  # no costly explain phase
    suppress_health_check=[HealthCheck.too_slow],
)
@given(first=SPECS, steps=STEPS)
def test_the_kind_diff_announces_is_what_the_next_pass_does(
    first: Spec, steps: list[tuple[Move, Spec]]
) -> None:
    with tempfile.TemporaryDirectory() as directory:
        world = new_world(Path(directory))
        assert apply_and_check(world, first) is ChangeKind.CREATE
        active, _ = slots(world)
        assert active is not None
        world.provider.make_head_ready(active)
        world.reconcile()
        serve_follows_configs(world)
        world.provider.mark_proxies_ready(active)
        world.reconcile()
        for how, spec in steps:
            move(world, how)
            apply_and_check(world, spec)


# -- regressions ----------------------------------------------------------------------------


def test_going_back_to_the_active_spec_during_an_upgrade_is_announced_as_a_rollback(
    tmp_path: Path,
) -> None:
    world = new_world(tmp_path)
    old = start(world, manifest())
    world.apply(manifest("b"))
    world.reconcile()
    _, pending = slots(world)
    assert pending is not None

    change = announced(world, Spec("a", 3, 1, NEW_CLUSTER))

    assert change.kind is ChangeKind.ROLLBACK, "it used to say NEW_CLUSTER"
    assert pending in change.summary
    world.apply(manifest())
    world.reconcile()
    assert clusters(world) == [old]
    assert slots(world) == (old, None)
    assert [c.name for c in world.provider.calls_to("delete")] == [pending]


@pytest.mark.parametrize("held_replicas", [1, 2], ids=["same-workers", "other-workers"])
def test_reapplying_the_running_spec_while_strategy_none_holds_a_change_is_not_held(
    tmp_path: Path, held_replicas: int
) -> None:
    """Held: B (with ``held_replicas`` workers) is stored, cluster A (1 worker) runs."""
    world = new_world(tmp_path)
    name = start(world, manifest(strategy=NONE))
    world.apply(Spec("b", 3, held_replicas, NONE).document())
    world.reconcile()
    assert condition(world, "UpgradeInProgress") == ("False", "UpgradeStrategyNone")
    previous = world.resource()

    change = announced(world, Spec("a", 3, 1, NONE))
    stored = world.apply(Spec("a", 3, 1, NONE).document())

    assert change.kind not in (ChangeKind.HELD, ChangeKind.NEW_CLUSTER)
    # nothing about cluster A changes, not even its worker count
    assert change.kind in (ChangeKind.SETTINGS, ChangeKind.NO_OP), change.kind
    assert apply_warnings(world.store, previous, stored, DEFAULT_EXPOSURE) == [], (
        "it used to warn 'set it to NewCluster'"
    )
    plan = world.reconcile()
    assert not any(isinstance(a, EnsureCluster | DeployServeConfig) for a in plan.actions)
    assert condition(world, "UpgradeInProgress") == ("False", "NoPendingCluster")
    assert clusters(world) == [name]

    previous = world.resource()
    stored = world.apply(manifest("c", strategy=NONE))
    [warning] = apply_warnings(world.store, previous, stored, DEFAULT_EXPOSURE)
    assert "upgradeStrategy.type is None" in warning and "set it to NewCluster" in warning


# -- disagreements still there (reported, not fixed here) -----------------------------------


def give_up_on(world: World, spec: Spec) -> None:
    """The pending cluster started for ``spec`` never answers and is given up."""
    world.apply(spec.document())
    world.reconcile()
    world.clock.now += 600
    world.reconcile()
    assert condition(world, "UpgradeInProgress") == ("False", "PendingClusterTimedOut")
    assert stored_record(world)["given_up"] is not None


def test_a_replicas_change_of_a_given_up_spec_is_announced_as_what_happens(
    tmp_path: Path,
) -> None:
    world = new_world(tmp_path)
    active = start(world, manifest())
    give_up_on(world, Spec("b", 3, 1, NEW_CLUSTER))

    change = announced(world, Spec("b", 3, 2, NEW_CLUSTER))
    world.apply(Spec("b", 3, 2, NEW_CLUSTER).document())
    plan = world.reconcile()

    workers = [g.replicas for g in world.provider.request_of(active).workers]
    assert not plan.actions and workers == [1], "the controller changes nothing"
    assert change.kind is not ChangeKind.WORKER_COUNT or workers == [2], change.summary


@pytest.mark.parametrize(
    ("price", "put"), [(3, False), (4, True)], ids=["announced-put-none", "unannounced-put"]
)
def test_back_to_the_active_spec_after_a_given_up_upgrade_announces_the_serve_update(
    tmp_path: Path, price: int, put: bool
) -> None:
    world = new_world(tmp_path)
    active = start(world, manifest())  # price 3
    give_up_on(world, Spec("b", 4, 1, NEW_CLUSTER))

    change = announced(world, Spec("a", price, 1, NEW_CLUSTER))
    world.apply(Spec("a", price, 1, NEW_CLUSTER).document())
    plan = world.reconcile()

    puts = [a.cluster for a in plan.actions if isinstance(a, DeployServeConfig)]
    assert puts == ([active] if put else []), "the active cluster ran price 3 all along"
    assert (change.kind is ChangeKind.SERVE_UPDATE) == put, change.kind
