"""The rollout state machine as a table: one row per transition of ``planner/rollout.py``.

``decide_rollout`` is the only place that moves a service between ``RolloutPhase``s, so its
transitions are tested here on the pure function, without a reconciler: each row gives the
stored record (phase, slots, timers), the wanted spec (built from a RayService like the
manifests of ``test_upgrades``, through ``wanted_of``), which clusters exist and which of them
serve, and states the new phase, both slots, the clusters deleted, the events, the two rollout
conditions and, where a timer matters, when the decision wants to be woken.

Every row is also decided a second time as a restarted controller would: the record goes
through ``model_dump(mode="json")`` and ``load_record`` (what the store does) and is decided
again with the same inputs. That pass must decide exactly what deciding from the in-memory
record decides, and must repeat nothing: unless the row names a follow-up (the next transition
that the same inputs lead to), it leaves the record as it was and emits no event and no
deletion; when it names one, the pass after it is quiet. Records written by release 0.1.0
carry no phase; the last tests check that they load into the phase they were in.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from rayservice import __version__
from rayservice.planner.readiness import slot_config
from rayservice.planner.record import ClusterSlot, GivenUp, ServiceRecord, load_record
from rayservice.planner.rollout import (
    Intent,
    RolloutDecision,
    Wanted,
    decide_rollout,
    intent_of,
    wanted_of,
)
from rayservice.serve_client.fake import running_state
from rayservice.spec.hashing import cluster_spec_hash, serve_config_hash
from rayservice.spec.manifest import RayService
from rayservice.spec.observed import (
    NodePhase,
    NodeRole,
    Observed,
    ObservedCluster,
    ObservedNode,
)
from rayservice.spec.references import Resolution, resolve
from rayservice.spec.vocabulary import (
    HEAD_GROUP,
    KIND,
    ConditionReason,
    EventReason,
    RolloutPhase,
)
from rayservice.store.sqlite import SqliteStore
from tests.unit.test_upgrades import INCREMENTAL, OPTIONS, PAUSE, PROMOTE, manifest

FIXTURES = Path(__file__).resolve().parent / "fixtures"
NOW = 10_000.0
ACTIVE, PENDING, NEW = "demo-raycluster-act", "demo-raycluster-pen", "demo-raycluster-new"
PORTS = {ACTIVE: 20000, PENDING: 20010, NEW: 20020}  # base port of each cluster's block
NONE = "None"  # upgradeStrategy.type None

# event reasons and condition reasons, short
STARTED = EventReason.UPGRADE_STARTED
COMPLETED = EventReason.UPGRADE_COMPLETED
TIMED_OUT = EventReason.UPGRADE_TIMED_OUT
REPLACED = EventReason.PENDING_CLUSTER_REPLACED
ROLLBACK_STARTED = EventReason.ROLLBACK_STARTED
ROLLBACK_COMPLETED = EventReason.ROLLBACK_COMPLETED
CANCELLED = EventReason.ROLLBACK_CANCELLED
STEPPED = EventReason.TRAFFIC_STEPPED
PROMOTED = EventReason.ROLLOUT_PROMOTED
BOTH = ConditionReason.BOTH_CLUSTERS_EXIST
NO_PENDING = ConditionReason.NO_PENDING_CLUSTER
STRATEGY_NONE = ConditionReason.UPGRADE_STRATEGY_NONE
GIVEN_UP = ConditionReason.PENDING_CLUSTER_TIMED_OUT
NO_ROLLBACK = ConditionReason.NO_ROLLBACK
STEP_BACK = ConditionReason.STEP_TRAFFIC_BACK
DELETING = ConditionReason.DELETING_PENDING_CLUSTER

STEADY = RolloutPhase.STEADY
STARTING = RolloutPhase.STARTING
STEPPING = RolloutPhase.STEPPING
ROLLING_BACK = RolloutPhase.ROLLING_BACK
HELD = RolloutPhase.HELD
GIVEN_UP_PHASE = RolloutPhase.GIVEN_UP


# -- inputs ---------------------------------------------------------------------------------


def service(
    variant: str = "a",
    *,
    price: int = 3,
    replicas: int = 1,
    strategy: str | None = None,
    annotations: dict[str, str] | None = None,
    **spec: Any,
) -> RayService:
    """The sample RayService of ``test_upgrades`` (cluster ``variant``, MangoStand's
    ``price``), incremental upgrades with its step options."""

    def scale(cluster: dict[str, Any]) -> None:
        cluster["workerGroupSpecs"][0]["replicas"] = replicas

    options = OPTIONS if strategy == INCREMENTAL else None
    document = manifest(
        variant,
        price=price,
        strategy=strategy,
        options=options,
        annotations=annotations,
        edit=scale,
        **spec,
    )
    return RayService.model_validate(document)


def resolved(svc: RayService) -> Resolution:
    """The service's cluster spec resolved with no Secret or ConfigMap (it refers to none)."""
    return resolve(svc.spec.rayClusterConfig, {}, svc.metadata.namespace)


def wanted(
    variant: str = "a",
    *,
    price: int = 3,
    replicas: int = 1,
    strategy: str | None = None,
    annotations: dict[str, str] | None = None,
    **spec: Any,
) -> Wanted:
    """What a stored RayService asks for; a cluster started for it is called NEW."""
    wanted_service = service(
        variant,
        price=price,
        replicas=replicas,
        strategy=strategy,
        annotations=annotations,
        **spec,
    )
    return wanted_of(
        wanted_service, resolved(wanted_service), wanted_service.spec.serve_config(), NEW
    )


HASH = {variant: cluster_spec_hash(service(variant).spec.rayClusterConfig) for variant in "abc"}


def slot(
    name: str,
    variant: str,
    *,
    price: int = 3,
    traffic: int = 100,
    capacity: int | None = None,
    created_at: float = NOW - 100,
) -> ClusterSlot:
    spec = service(variant, price=price).spec
    return ClusterSlot(
        name=name,
        spec_hash=cluster_spec_hash(spec.rayClusterConfig),
        hashed_by=__version__,
        cluster_spec=spec.rayClusterConfig.model_dump(mode="json"),
        serve_config=spec.serve_config(),
        created_at=created_at,
        target_capacity=capacity,
        traffic_percent=traffic,
    )


def steady(variant: str = "a", *, phase: RolloutPhase = STEADY, price: int = 3) -> ServiceRecord:
    """Cluster ACTIVE (``variant``) serves alone, in ``phase``."""
    return ServiceRecord(phase=phase, active=slot(ACTIVE, variant, price=price))


def upgrading(
    phase: RolloutPhase,
    variant: str = "b",
    *,
    active: tuple[int, int | None] = (100, None),
    pending: tuple[int, int | None] = (0, None),
    created_at: float = NOW - 100,
    last_step_at: float = 0.0,
) -> ServiceRecord:
    """ACTIVE (variant a) and PENDING (``variant``), each with its (traffic %, capacity)."""
    return ServiceRecord(
        phase=phase,
        active=slot(ACTIVE, "a", traffic=active[0], capacity=active[1]),
        pending=slot(
            PENDING, variant, traffic=pending[0], capacity=pending[1], created_at=created_at
        ),
        last_step_at=last_step_at,
    )


def given_up(variant: str = "b", price: int = 3) -> ServiceRecord:
    """ACTIVE (variant a) serves; an upgrade to ``variant`` timed out."""
    gone = slot(PENDING, variant, price=price)
    return ServiceRecord(
        phase=GIVEN_UP_PHASE,
        active=slot(ACTIVE, "a"),
        given_up=GivenUp(
            spec_hash=gone.spec_hash,
            hashed_by=__version__,
            cluster_spec=gone.cluster_spec,
            config_hash=serve_config_hash(service(variant, price=price).spec.serve_config()),
            reason=f"pending cluster {PENDING} was not ready after 600s",
        ),
    )


def cluster(name: str, *, serving: bool) -> ObservedCluster:
    """A head and a worker; a serving cluster's head answers and both proxies are healthy."""
    base = PORTS.get(name, 30000)

    def node(node_name: str, role: NodeRole, group: str, port: int) -> ObservedNode:
        return ObservedNode(
            name=node_name,
            role=role,
            group=group,
            phase=NodePhase.RUNNING if serving else NodePhase.PENDING,
            proxy_port=port,
            proxy_ready=serving,
            restarts=0,
            started_at=NOW - 200,
        )

    return ObservedCluster(
        name=name,
        owner="default/demo",
        spec_hash="",
        created_at=NOW - 200,
        nodes=(
            node(f"{name}-head-h0000", NodeRole.HEAD, HEAD_GROUP, base + 9),
            node(f"{name}-small-group-worker-w0000", NodeRole.WORKER, "small-group", base + 19),
        ),
        dashboard_url=f"http://127.0.0.1:{base + 1}",
        head_ready=serving,
        auth_token=f"token-{name}",
    )


def situation(
    given: ServiceRecord, want: Wanted, serving: Collection[str], starting: Collection[str]
) -> tuple[ServiceRecord, Observed]:
    """The record and what is observed: ``serving`` clusters accepted the Serve config meant
    for their slot (``record.deployed``, as ``readiness.serve_ready`` checks) and run all its
    apps; ``starting`` clusters exist, their heads not answering yet."""
    clusters = {name: cluster(name, serving=name in serving) for name in (*serving, *starting)}
    deployed = dict(given.deployed)
    serve = {}
    for held in (given.active, given.pending):
        if held is not None and held.name in serving:
            config = slot_config(held, clusters[held.name], want.serve_config)
            deployed[held.name] = serve_config_hash(config)
            serve[held.name] = running_state(config)
    record = given.model_copy(update={"deployed": deployed}, deep=True)
    return record, Observed(clusters=clusters, serve=serve, front=None)


# -- the table ------------------------------------------------------------------------------


class SlotView(NamedTuple):
    name: str
    spec_hash: str
    price: int
    traffic: int
    capacity: int | None


def view(
    name: str, variant: str, *, price: int = 3, traffic: int = 100, capacity: int | None = None
) -> SlotView:
    return SlotView(name, HASH[variant], price, traffic, capacity)


def view_of(held: ClusterSlot | None) -> SlotView | None:
    if held is None:
        return None
    assert held.serve_config is not None
    price = held.serve_config["applications"][0]["deployments"][0]["user_config"]["price"]
    return SlotView(held.name, held.spec_hash, price, held.traffic_percent, held.target_capacity)


@dataclass(frozen=True)
class Row:
    given: ServiceRecord
    want: Wanted
    intent: Intent
    phase: RolloutPhase
    active: SlotView
    pending: SlotView | None
    events: tuple[EventReason, ...]
    upgrade: ConditionReason
    rollback: ConditionReason
    serving: tuple[str, ...] = (ACTIVE,)  # clusters that serve
    starting: tuple[str, ...] = ()  # clusters that exist but do not serve yet
    deletions: tuple[str, ...] = ()
    retiring: tuple[tuple[str, float], ...] = ()
    rolled_back: tuple[str, ...] = ()
    given_up: str | None = None  # the spec hash of the upgrade given up
    wake_at: float | None = None
    note: str = ""  # a part of one of the decision's notes
    # a restart and the same inputs: the events and deletions of that second pass (the next
    # transition they lead to; nothing at all when empty)
    then: tuple[EventReason, ...] = ()
    then_deletions: tuple[str, ...] = ()


ROWS = [
    # Steady -> Steady: a Serve change goes to the active cluster in place
    pytest.param(
        Row(
            given=steady(),
            want=wanted(price=4),
            intent=Intent.IN_PLACE,
            phase=STEADY,
            active=view(ACTIVE, "a", price=4),
            pending=None,
            events=(),
            upgrade=NO_PENDING,
            rollback=NO_ROLLBACK,
        ),
        id="steady-serve-change-in-place",
    ),
    # Steady -> Steady: more workers are a scaling field, the same cluster takes them
    pytest.param(
        Row(
            given=steady(),
            want=wanted(replicas=3),
            intent=Intent.IN_PLACE,
            phase=STEADY,
            active=view(ACTIVE, "a"),
            pending=None,
            events=(),
            upgrade=NO_PENDING,
            rollback=NO_ROLLBACK,
        ),
        id="steady-scaling-in-place",
    ),
    # nothing yet -> Steady: the first cluster is created for the generation
    pytest.param(
        Row(
            given=ServiceRecord(),
            want=wanted(),
            intent=Intent.CREATE,
            phase=STEADY,
            active=view(NEW, "a"),
            pending=None,
            events=(),
            upgrade=NO_PENDING,
            rollback=NO_ROLLBACK,
            serving=(),
        ),
        id="create",
    ),
    # Steady -> Starting: a cluster change under NewCluster starts a pending cluster
    pytest.param(
        Row(
            given=steady(),
            want=wanted("b"),
            intent=Intent.NEW_PENDING,
            phase=STARTING,
            active=view(ACTIVE, "a"),
            pending=view(NEW, "b", traffic=0),
            events=(STARTED,),
            upgrade=BOTH,
            rollback=NO_ROLLBACK,
            wake_at=NOW + 600,  # pendingClusterTimeoutSeconds from its creation
        ),
        id="steady-to-starting",
    ),
    # Steady -> Stepping: under the incremental strategy the pending cluster starts at
    # capacity 0 and the first step waits one interval
    pytest.param(
        Row(
            given=steady(),
            want=wanted("b", strategy=INCREMENTAL),
            intent=Intent.NEW_PENDING,
            phase=STEPPING,
            active=view(ACTIVE, "a"),
            pending=view(NEW, "b", traffic=0, capacity=0),
            events=(STARTED,),
            upgrade=BOTH,
            rollback=NO_ROLLBACK,
            wake_at=NOW + 10,
        ),
        id="steady-to-stepping",
    ),
    # Steady -> Held: upgradeStrategy None keeps the cluster, and its Serve change goes out
    pytest.param(
        Row(
            given=steady(),
            want=wanted("b", price=4, strategy=NONE),
            intent=Intent.HOLD,
            phase=HELD,
            active=view(ACTIVE, "a", price=4),
            pending=None,
            events=(),
            upgrade=STRATEGY_NONE,
            rollback=NO_ROLLBACK,
        ),
        id="steady-to-held",
    ),
    # Held -> Steady: the spec is the running cluster's again
    pytest.param(
        Row(
            given=steady(phase=HELD),
            want=wanted("a", strategy=NONE),
            intent=Intent.IN_PLACE,
            phase=STEADY,
            active=view(ACTIVE, "a"),
            pending=None,
            events=(),
            upgrade=NO_PENDING,
            rollback=NO_ROLLBACK,
        ),
        id="held-to-steady",
    ),
    # Held -> Starting: the strategy allows the held change now
    pytest.param(
        Row(
            given=steady(phase=HELD),
            want=wanted("b"),
            intent=Intent.NEW_PENDING,
            phase=STARTING,
            active=view(ACTIVE, "a"),
            pending=view(NEW, "b", traffic=0),
            events=(STARTED,),
            upgrade=BOTH,
            rollback=NO_ROLLBACK,
            wake_at=NOW + 600,
        ),
        id="held-to-starting",
    ),
    # Starting -> Starting: the pending cluster does not serve yet, the timeout is ahead
    pytest.param(
        Row(
            given=upgrading(STARTING, created_at=NOW - 599),
            want=wanted("b"),
            intent=Intent.UPDATE_PENDING,
            phase=STARTING,
            active=view(ACTIVE, "a"),
            pending=view(PENDING, "b", traffic=0),
            events=(),
            upgrade=BOTH,
            rollback=NO_ROLLBACK,
            starting=(PENDING,),
            wake_at=NOW + 1,
        ),
        id="starting-waits",
    ),
    # Starting -> Steady: the pending cluster serves, traffic switches, the old cluster
    # retires after the service's rayClusterDeletionDelaySeconds
    pytest.param(
        Row(
            given=upgrading(STARTING),
            want=wanted("b", rayClusterDeletionDelaySeconds=30),
            intent=Intent.UPDATE_PENDING,
            phase=STEADY,
            active=view(PENDING, "b"),
            pending=None,
            events=(COMPLETED,),
            upgrade=NO_PENDING,
            rollback=NO_ROLLBACK,
            serving=(ACTIVE, PENDING),
            retiring=((ACTIVE, NOW + 30),),
        ),
        id="starting-switch",
    ),
    # Starting stays: paused, the pending cluster serves but takes no traffic
    pytest.param(
        Row(
            given=upgrading(STARTING),
            want=wanted("b", annotations={PAUSE: "true"}),
            intent=Intent.UPDATE_PENDING,
            phase=STARTING,
            active=view(ACTIVE, "a"),
            pending=view(PENDING, "b", traffic=0),
            events=(),
            upgrade=BOTH,
            rollback=NO_ROLLBACK,
            serving=(ACTIVE, PENDING),
            note="rollout paused",
        ),
        id="starting-paused",
    ),
    # Starting -> Steady: paused, but the promote annotation names the pending cluster
    pytest.param(
        Row(
            given=upgrading(STARTING),
            want=wanted("b", annotations={PAUSE: "true", PROMOTE: PENDING}),
            intent=Intent.UPDATE_PENDING,
            phase=STEADY,
            active=view(PENDING, "b"),
            pending=None,
            events=(COMPLETED,),
            upgrade=NO_PENDING,
            rollback=NO_ROLLBACK,
            serving=(ACTIVE, PENDING),
            retiring=((ACTIVE, NOW + 60),),
        ),
        id="starting-promoted",
    ),
    # Starting -> GivenUp: not ready pendingClusterTimeoutSeconds after its creation
    pytest.param(
        Row(
            given=upgrading(STARTING, created_at=NOW - 600),
            want=wanted("b"),
            intent=Intent.UPDATE_PENDING,
            phase=GIVEN_UP_PHASE,
            active=view(ACTIVE, "a"),
            pending=None,
            events=(TIMED_OUT,),
            upgrade=GIVEN_UP,
            rollback=NO_ROLLBACK,
            starting=(PENDING,),
            deletions=(PENDING,),
            given_up=HASH["b"],
        ),
        id="starting-timed-out",
    ),
    # GivenUp stays: the same spec and Serve config are not tried again
    pytest.param(
        Row(
            given=given_up(),
            want=wanted("b"),
            intent=Intent.GIVEN_UP,
            phase=GIVEN_UP_PHASE,
            active=view(ACTIVE, "a"),
            pending=None,
            events=(),
            upgrade=GIVEN_UP,
            rollback=NO_ROLLBACK,
            given_up=HASH["b"],
        ),
        id="given-up-same-spec",
    ),
    # GivenUp -> Starting: another cluster spec is tried
    pytest.param(
        Row(
            given=given_up(),
            want=wanted("c"),
            intent=Intent.NEW_PENDING,
            phase=STARTING,
            active=view(ACTIVE, "a"),
            pending=view(NEW, "c", traffic=0),
            events=(STARTED,),
            upgrade=BOTH,
            rollback=NO_ROLLBACK,
            wake_at=NOW + 600,
        ),
        id="given-up-cluster-changed",
    ),
    # GivenUp -> Starting: the same cluster spec with another Serve config is tried
    pytest.param(
        Row(
            given=given_up(),
            want=wanted("b", price=4),
            intent=Intent.NEW_PENDING,
            phase=STARTING,
            active=view(ACTIVE, "a"),
            pending=view(NEW, "b", price=4, traffic=0),
            events=(STARTED,),
            upgrade=BOTH,
            rollback=NO_ROLLBACK,
            wake_at=NOW + 600,
        ),
        id="given-up-config-changed",
    ),
    # GivenUp -> Steady: back to the active spec forgets the given-up upgrade
    pytest.param(
        Row(
            given=given_up(),
            want=wanted("a"),
            intent=Intent.IN_PLACE,
            phase=STEADY,
            active=view(ACTIVE, "a"),
            pending=None,
            events=(),
            upgrade=NO_PENDING,
            rollback=NO_ROLLBACK,
        ),
        id="given-up-back-to-active",
    ),
    # Starting -> RollingBack: the spec is the active's again, the pending cluster is dropped
    # and stays listed until it is gone
    pytest.param(
        Row(
            given=upgrading(STARTING),
            want=wanted("a"),
            intent=Intent.ROLLBACK,
            phase=ROLLING_BACK,
            active=view(ACTIVE, "a"),
            pending=None,
            events=(ROLLBACK_STARTED,),
            upgrade=NO_PENDING,
            rollback=DELETING,
            starting=(PENDING,),
            deletions=(PENDING,),
            rolled_back=(PENDING,),
        ),
        id="starting-to-rolling-back",
    ),
    # RollingBack -> Steady: the dropped cluster is gone
    pytest.param(
        Row(
            given=ServiceRecord(
                phase=ROLLING_BACK, active=slot(ACTIVE, "a"), rolled_back=[PENDING]
            ),
            want=wanted("a"),
            intent=Intent.IN_PLACE,
            phase=STEADY,
            active=view(ACTIVE, "a"),
            pending=None,
            events=(),
            upgrade=NO_PENDING,
            rollback=NO_ROLLBACK,
        ),
        id="rolling-back-to-steady",
    ),
    # Stepping: a step is due, the pending cluster serves: 25% more traffic moves to it
    pytest.param(
        Row(
            given=upgrading(STEPPING, active=(100, 100), pending=(0, 50), last_step_at=NOW - 10),
            want=wanted("b", strategy=INCREMENTAL),
            intent=Intent.UPDATE_PENDING,
            phase=STEPPING,
            active=view(ACTIVE, "a", traffic=75, capacity=100),
            pending=view(PENDING, "b", traffic=25, capacity=50),
            events=(STEPPED,),
            upgrade=BOTH,
            rollback=NO_ROLLBACK,
            serving=(ACTIVE, PENDING),
        ),
        id="stepping-step-due",
    ),
    # Stepping: the next step is due in a second; the decision wants to be woken then
    pytest.param(
        Row(
            given=upgrading(STEPPING, active=(100, 100), pending=(0, 50), last_step_at=NOW - 9),
            want=wanted("b", strategy=INCREMENTAL),
            intent=Intent.UPDATE_PENDING,
            phase=STEPPING,
            active=view(ACTIVE, "a", capacity=100),
            pending=view(PENDING, "b", traffic=0, capacity=50),
            events=(),
            upgrade=BOTH,
            rollback=NO_ROLLBACK,
            serving=(ACTIVE, PENDING),
            wake_at=NOW + 1,
        ),
        id="stepping-step-not-due",
    ),
    # Stepping -> Steady: all traffic and capacity moved, the pending cluster takes over
    pytest.param(
        Row(
            given=upgrading(STEPPING, active=(0, 0), pending=(100, 100), last_step_at=NOW - 4),
            want=wanted("b", strategy=INCREMENTAL),
            intent=Intent.UPDATE_PENDING,
            phase=STEADY,
            active=view(PENDING, "b", capacity=100),
            pending=None,
            events=(COMPLETED,),
            upgrade=NO_PENDING,
            rollback=NO_ROLLBACK,
            serving=(ACTIVE, PENDING),
            retiring=((ACTIVE, NOW + 60),),
        ),
        id="stepping-all-moved",
    ),
    # Stepping stays: all moved, but paused: the pause holds the switch too
    pytest.param(
        Row(
            given=upgrading(STEPPING, active=(0, 0), pending=(100, 100), last_step_at=NOW - 4),
            want=wanted("b", strategy=INCREMENTAL, annotations={PAUSE: "true"}),
            intent=Intent.UPDATE_PENDING,
            phase=STEPPING,
            active=view(ACTIVE, "a", traffic=0, capacity=0),
            pending=view(PENDING, "b", traffic=100, capacity=100),
            events=(),
            upgrade=BOTH,
            rollback=NO_ROLLBACK,
            serving=(ACTIVE, PENDING),
            note="rollout paused",
        ),
        id="stepping-all-moved-paused",
    ),
    # Stepping -> GivenUp: no traffic yet and not ready in time: given up although the next
    # step (a capacity step) is not due
    pytest.param(
        Row(
            given=upgrading(
                STEPPING,
                active=(100, 100),
                pending=(0, 50),
                created_at=NOW - 600,
                last_step_at=NOW - 4,
            ),
            want=wanted("b", strategy=INCREMENTAL),
            intent=Intent.UPDATE_PENDING,
            phase=GIVEN_UP_PHASE,
            active=view(ACTIVE, "a"),
            pending=None,
            events=(TIMED_OUT,),
            upgrade=GIVEN_UP,
            rollback=NO_ROLLBACK,
            starting=(PENDING,),
            deletions=(PENDING,),
            given_up=HASH["b"],
        ),
        id="stepping-timed-out-between-steps",
    ),
    # Stepping -> Steady: promoted at full capacity and serving, it takes all traffic at once
    pytest.param(
        Row(
            given=upgrading(STEPPING, active=(50, 50), pending=(50, 100), last_step_at=NOW - 4),
            want=wanted("b", strategy=INCREMENTAL, annotations={PROMOTE: PENDING}),
            intent=Intent.UPDATE_PENDING,
            phase=STEADY,
            active=view(PENDING, "b", capacity=100),
            pending=None,
            events=(PROMOTED, COMPLETED),
            upgrade=NO_PENDING,
            rollback=NO_ROLLBACK,
            serving=(ACTIVE, PENDING),
            retiring=((ACTIVE, NOW + 60),),
        ),
        id="stepping-promoted",
    ),
    # Stepping: promoted below full capacity, it gets full capacity first (no traffic yet)
    pytest.param(
        Row(
            given=upgrading(STEPPING, active=(75, 100), pending=(25, 50), last_step_at=NOW - 4),
            want=wanted("b", strategy=INCREMENTAL, annotations={PROMOTE: PENDING}),
            intent=Intent.UPDATE_PENDING,
            phase=STEPPING,
            active=view(ACTIVE, "a", traffic=75, capacity=100),
            pending=view(PENDING, "b", traffic=25, capacity=100),
            events=(),
            upgrade=BOTH,
            rollback=NO_ROLLBACK,
            serving=(ACTIVE, PENDING),
            note="full capacity before all traffic",
        ),
        id="stepping-promoted-below-full-capacity",
    ),
    # Stepping -> GivenUp: a traffic step is due but the pending cluster never served
    pytest.param(
        Row(
            given=upgrading(
                STEPPING,
                active=(100, 100),
                pending=(0, 50),
                created_at=NOW - 600,
                last_step_at=NOW - 10,
            ),
            want=wanted("b", strategy=INCREMENTAL),
            intent=Intent.UPDATE_PENDING,
            phase=GIVEN_UP_PHASE,
            active=view(ACTIVE, "a"),
            pending=None,
            events=(TIMED_OUT,),
            upgrade=GIVEN_UP,
            rollback=NO_ROLLBACK,
            starting=(PENDING,),
            deletions=(PENDING,),
            given_up=HASH["b"],
        ),
        id="stepping-timed-out",
    ),
    # Stepping -> RollingBack: back to the active spec with traffic on the pending cluster:
    # the traffic steps back first (the next step back is not due yet)
    pytest.param(
        Row(
            given=upgrading(STEPPING, active=(75, 100), pending=(25, 50), last_step_at=NOW - 4),
            want=wanted("a", strategy=INCREMENTAL),
            intent=Intent.ROLLBACK,
            phase=ROLLING_BACK,
            active=view(ACTIVE, "a", traffic=75, capacity=100),
            pending=view(PENDING, "b", traffic=25, capacity=50),
            events=(ROLLBACK_STARTED,),
            upgrade=NO_PENDING,
            rollback=STEP_BACK,
            serving=(ACTIVE, PENDING),
            wake_at=NOW + 6,
        ),
        id="stepping-to-rolling-back",
    ),
    # Stepping -> RollingBack: back to the active spec before any traffic moved: the pending
    # cluster is dropped at once and the active one gets its full capacity back
    pytest.param(
        Row(
            given=upgrading(STEPPING, active=(100, 100), pending=(0, 50), last_step_at=NOW - 4),
            want=wanted("a", strategy=INCREMENTAL),
            intent=Intent.ROLLBACK,
            phase=ROLLING_BACK,
            active=view(ACTIVE, "a"),
            pending=None,
            events=(ROLLBACK_STARTED,),
            upgrade=NO_PENDING,
            rollback=DELETING,
            serving=(ACTIVE, PENDING),
            deletions=(PENDING,),
            rolled_back=(PENDING,),
        ),
        id="stepping-rolled-back-before-traffic",
    ),
    # RollingBack -> Stepping: the pending spec is applied again (RollbackCancelled)
    pytest.param(
        Row(
            given=upgrading(ROLLING_BACK, active=(75, 100), pending=(25, 50), last_step_at=NOW - 4),
            want=wanted("b", strategy=INCREMENTAL),
            intent=Intent.UPDATE_PENDING,
            phase=STEPPING,
            active=view(ACTIVE, "a", traffic=75, capacity=100),
            pending=view(PENDING, "b", traffic=25, capacity=50),
            events=(CANCELLED,),
            upgrade=BOTH,
            rollback=NO_ROLLBACK,
            serving=(ACTIVE, PENDING),
            wake_at=NOW + 6,
        ),
        id="rolling-back-cancelled",
    ),
    # RollingBack: a step back is due and the active cluster serves: traffic goes back to it;
    # (restart) the next pass finds no traffic left on the pending cluster and drops it
    pytest.param(
        Row(
            given=upgrading(
                ROLLING_BACK, active=(75, 100), pending=(25, 50), last_step_at=NOW - 10
            ),
            want=wanted("a", strategy=INCREMENTAL),
            intent=Intent.ROLLBACK,
            phase=ROLLING_BACK,
            active=view(ACTIVE, "a", capacity=100),
            pending=view(PENDING, "b", traffic=0, capacity=50),
            events=(STEPPED,),
            upgrade=NO_PENDING,
            rollback=STEP_BACK,
            serving=(ACTIVE, PENDING),
            then=(ROLLBACK_COMPLETED,),
            then_deletions=(PENDING,),
        ),
        id="rolling-back-step-back",
    ),
    # RollingBack: the traffic is back at 0 on the pending cluster: it is dropped
    pytest.param(
        Row(
            given=upgrading(ROLLING_BACK, active=(100, 100), pending=(0, 50), last_step_at=NOW - 4),
            want=wanted("a", strategy=INCREMENTAL),
            intent=Intent.ROLLBACK,
            phase=ROLLING_BACK,
            active=view(ACTIVE, "a"),
            pending=None,
            events=(ROLLBACK_COMPLETED,),
            upgrade=NO_PENDING,
            rollback=DELETING,
            serving=(ACTIVE, PENDING),
            deletions=(PENDING,),
            rolled_back=(PENDING,),
        ),
        id="rolling-back-dropped",
    ),
    # Starting -> Starting: another cluster change replaces the pending cluster
    pytest.param(
        Row(
            given=upgrading(STARTING),
            want=wanted("c"),
            intent=Intent.NEW_PENDING,
            phase=STARTING,
            active=view(ACTIVE, "a"),
            pending=view(NEW, "c", traffic=0),
            events=(REPLACED, STARTED),
            upgrade=BOTH,
            rollback=NO_ROLLBACK,
            starting=(PENDING,),
            deletions=(PENDING,),
            wake_at=NOW + 600,
        ),
        id="starting-pending-replaced",
    ),
    # Stepping -> Stepping: another cluster change replaces a pending cluster that carries
    # traffic; the active cluster takes all of it back
    pytest.param(
        Row(
            given=upgrading(STEPPING, active=(75, 100), pending=(25, 50), last_step_at=NOW - 4),
            want=wanted("c", strategy=INCREMENTAL),
            intent=Intent.NEW_PENDING,
            phase=STEPPING,
            active=view(ACTIVE, "a"),
            pending=view(NEW, "c", traffic=0, capacity=0),
            events=(REPLACED, STARTED),
            upgrade=BOTH,
            rollback=NO_ROLLBACK,
            serving=(ACTIVE, PENDING),
            deletions=(PENDING,),
            wake_at=NOW + 10,
        ),
        id="stepping-pending-replaced",
    ),
    # Starting -> Stepping: the strategy became incremental: the pending cluster starts over
    # at capacity 0, and like any incremental start the first step waits an interval
    pytest.param(
        Row(
            given=upgrading(STARTING),
            want=wanted("b", strategy=INCREMENTAL),
            intent=Intent.UPDATE_PENDING,
            phase=STEPPING,
            active=view(ACTIVE, "a"),
            pending=view(PENDING, "b", traffic=0, capacity=0),
            events=(),
            upgrade=BOTH,
            rollback=NO_ROLLBACK,
            serving=(ACTIVE, PENDING),
            wake_at=NOW + 10,
        ),
        id="starting-to-stepping",
    ),
    # Stepping -> Starting: the strategy became NewCluster: the active cluster takes back all
    # traffic and capacity, the pending one runs at full capacity (its config goes out again)
    pytest.param(
        Row(
            given=upgrading(STEPPING, active=(75, 100), pending=(25, 50), last_step_at=NOW - 4),
            want=wanted("b"),
            intent=Intent.UPDATE_PENDING,
            phase=STARTING,
            active=view(ACTIVE, "a"),
            pending=view(PENDING, "b", traffic=0),
            events=(),
            upgrade=BOTH,
            rollback=NO_ROLLBACK,
            serving=(ACTIVE, PENDING),
            wake_at=NOW - 100 + 600,
        ),
        id="stepping-to-starting",
    ),
    # Starting -> Held: upgradeStrategy None drops the pending cluster
    pytest.param(
        Row(
            given=upgrading(STARTING),
            want=wanted("b", strategy=NONE),
            intent=Intent.HOLD,
            phase=HELD,
            active=view(ACTIVE, "a"),
            pending=None,
            events=(),
            upgrade=STRATEGY_NONE,
            rollback=NO_ROLLBACK,
            starting=(PENDING,),
            deletions=(PENDING,),
        ),
        id="starting-to-held",
    ),
    # Stepping -> Held: the same in the middle of an incremental upgrade; the active cluster
    # takes back all traffic and its full capacity
    pytest.param(
        Row(
            given=upgrading(STEPPING, active=(50, 50), pending=(50, 100), last_step_at=NOW - 4),
            want=wanted("b", strategy=NONE),
            intent=Intent.HOLD,
            phase=HELD,
            active=view(ACTIVE, "a"),
            pending=None,
            events=(),
            upgrade=STRATEGY_NONE,
            rollback=NO_ROLLBACK,
            serving=(ACTIVE, PENDING),
            deletions=(PENDING,),
        ),
        id="stepping-to-held",
    ),
]


def decide(record: ServiceRecord, row: Row, observed: Observed) -> RolloutDecision:
    return decide_rollout(record, row.want, observed, NOW)


def reloaded(record: ServiceRecord) -> ServiceRecord:
    """The record as a restarted controller reads it from the store."""
    return load_record(record.model_dump(mode="json"))


def reasons(decision: RolloutDecision) -> tuple[EventReason, ...]:
    return tuple(event.reason for event in decision.events)


def deleted(decision: RolloutDecision) -> tuple[str, ...]:
    return tuple(deletion.name for deletion in decision.deletions)


@pytest.mark.parametrize("row", ROWS)
def test_transition(row: Row) -> None:
    record, observed = situation(row.given, row.want, row.serving, row.starting)
    assert intent_of(record, row.want) is row.intent

    decision = decide(record, row, observed)

    after = decision.record
    assert decision.intent is row.intent
    assert after.phase is row.phase
    assert view_of(after.active) == row.active
    assert view_of(after.pending) == row.pending
    assert deleted(decision) == row.deletions
    assert reasons(decision) == row.events
    assert (decision.upgrade.reason, decision.rollback.reason) == (row.upgrade, row.rollback)
    assert [(r.name, r.delete_at) for r in after.retiring] == list(row.retiring)
    assert after.rolled_back == list(row.rolled_back)
    assert (after.given_up.spec_hash if after.given_up else None) == row.given_up
    assert decision.wake_at == row.wake_at
    if row.note:
        assert any(row.note in note for note in decision.notes), decision.notes
    assert record == situation(row.given, row.want, row.serving, row.starting)[0], "not changed"


@pytest.mark.parametrize("row", ROWS)
def test_a_restart_after_the_transition_repeats_nothing(row: Row) -> None:
    record, observed = situation(row.given, row.want, row.serving, row.starting)
    first = decide(record, row, observed)

    stored = reloaded(first.record)
    again = decide(stored, row, observed)

    assert stored == first.record, "the store keeps every field"
    assert again == decide(first.record, row, observed), "as if the controller had not stopped"
    assert reasons(again) == row.then
    assert deleted(again) == row.then_deletions
    if row.then or row.then_deletions:
        settled = decide(reloaded(again.record), row, observed)
        assert (reasons(settled), deleted(settled)) == ((), ())
        assert settled.record == again.record
        return
    assert again.record == first.record, "the same phase, slots and timers"
    assert (again.upgrade.reason, again.rollback.reason) == (row.upgrade, row.rollback)


# -- records of release 0.1.0 ---------------------------------------------------------------


def first_release_shape(record: ServiceRecord, **pending_fields: Any) -> dict[str, Any]:
    """``record`` as release 0.1.0 stored it: no phase, no hashed_by, a ``rolling_back`` flag
    on the pending slot and refused configs under ``rejected``."""
    stored = record.model_dump(mode="json", exclude={"phase"})
    stored["rejected"] = {}
    for field in ("active", "pending"):
        if stored[field] is not None:
            del stored[field]["hashed_by"]
    if stored["pending"] is not None:
        stored["pending"] = {"rolling_back": False, **stored["pending"], **pending_fields}
    if stored["given_up"] is not None:
        del stored["given_up"]["hashed_by"]
        del stored["given_up"]["cluster_spec"]
    return stored


@pytest.mark.parametrize(
    ("stored", "phase"),
    [
        # a rollback stepping traffic back was flagged on the pending slot
        (
            first_release_shape(
                upgrading(STEPPING, active=(75, 100), pending=(25, 50)), rolling_back=True
            ),
            ROLLING_BACK,
        ),
        # an incremental upgrade was told by the pending slot's capacity
        (first_release_shape(upgrading(STEPPING, pending=(0, 0))), STEPPING),
        (first_release_shape(upgrading(STEPPING, active=(75, 100), pending=(25, 50))), STEPPING),
        # a pending slot without a capacity: NewCluster
        (first_release_shape(upgrading(STARTING)), STARTING),
        # no pending slot: dropped clusters still going, a given-up upgrade, or steady
        (
            first_release_shape(ServiceRecord(active=slot(ACTIVE, "a"), rolled_back=[PENDING])),
            ROLLING_BACK,
        ),
        (first_release_shape(given_up()), GIVEN_UP_PHASE),
        (first_release_shape(steady()), STEADY),
    ],
    ids=[
        "rolling-back-flag",
        "capacity-0",
        "capacity-50",
        "no-capacity",
        "rolled-back",
        "given-up",
        "steady",
    ],
)
def test_a_first_release_record_loads_into_its_phase(stored: dict[str, Any], phase: str) -> None:
    record = load_record(stored)

    assert record.phase is RolloutPhase(phase)
    assert record.pending is None or "rolling_back" not in record.pending.model_dump()
    for held in (record.active, record.pending):
        if held is not None:
            assert held.hashed_by == __version__
    assert record.active is not None and record.active.spec_hash == HASH["a"], "same hash"


def test_a_first_release_rollback_goes_on_stepping_back_without_starting_again() -> None:
    stored = first_release_shape(
        upgrading(ROLLING_BACK, active=(75, 100), pending=(25, 50), last_step_at=NOW - 4),
        rolling_back=True,
    )
    want = wanted("a", strategy=INCREMENTAL)
    record, observed = situation(load_record(stored), want, (ACTIVE, PENDING), ())

    decision = decide_rollout(record, want, observed, NOW)

    assert decision.record.phase is ROLLING_BACK
    assert reasons(decision) == (), "no second RollbackStarted"
    assert decision.rollback.reason is STEP_BACK
    assert view_of(decision.record.pending) == view(PENDING, "b", traffic=25, capacity=50)


def test_a_first_release_upgrade_goes_on_stepping_without_starting_again() -> None:
    stored = first_release_shape(
        upgrading(STEPPING, active=(75, 100), pending=(25, 50), last_step_at=NOW - 10)
    )
    want = wanted("b", strategy=INCREMENTAL)
    record, observed = situation(load_record(stored), want, (ACTIVE, PENDING), ())

    decision = decide_rollout(record, want, observed, NOW)

    assert decision.record.phase is STEPPING
    assert reasons(decision) == (STEPPED,), "the step that was due, and no UpgradeStarted"
    assert view_of(decision.record.pending) == view(PENDING, "b", traffic=50, capacity=50)


def test_the_stored_0_1_0_rollback_fixture_is_rolling_back(tmp_path: Path) -> None:
    """The store of release 0.1.0 half way through an incremental rollback (fixture)."""
    path = tmp_path / "store.db"
    with sqlite3.connect(path) as db:
        db.executescript((FIXTURES / "store-0.1.0-rollback.sql").read_text())
    resource = SqliteStore(path).get(KIND, "default", "rayservice-sample")
    assert resource is not None
    assert resource.record["pending"]["rolling_back"] is True
    assert "phase" not in resource.record

    record = load_record(resource.record)
    stored_service = RayService.model_validate(resource.manifest)
    want = wanted_of(
        stored_service, resolved(stored_service), stored_service.spec.serve_config(), NEW
    )

    assert record.phase is ROLLING_BACK
    assert record.pending is not None and record.active is not None
    assert (record.active.traffic_percent, record.pending.traffic_percent) == (50, 50)
    assert intent_of(record, want) is Intent.ROLLBACK
    clusters = {
        held.name: cluster(held.name, serving=False) for held in (record.active, record.pending)
    }
    decision = decide_rollout(record, want, Observed(clusters, {}, None), record.last_step_at + 1)
    assert decision.record.phase is ROLLING_BACK
    assert reasons(decision) == ()
    assert decision.rollback.reason is STEP_BACK
