"""Upgrade decisions: which cluster is active, which is pending, and how traffic moves.

A change of ``rayClusterConfig`` that cannot be applied in place needs a new cluster. Under
``upgradeStrategy.type`` NewCluster (the default) a pending cluster is started and takes all
traffic at once when its apps are all RUNNING; under NewClusterWithIncrementalUpgrade traffic
and Serve capacity move in steps (``traffic_steps``); under None the change is held and status
says so. A spec that returns to the active cluster's (A -> B -> A) drops the pending cluster, a
newer incompatible spec replaces it, and one that never gets ready is given up after
``pendingClusterTimeoutSeconds``.

Pure, like the rest of the planner: these functions only read the planning pass they are given
and add actions, events and record changes to it.
"""

from __future__ import annotations

from typing import Any, Protocol

from rayservice.planner.actions import PlannedEvent
from rayservice.planner.record import ClusterSlot, ServiceRecord
from rayservice.planner.traffic_steps import FULL, Split, next_step
from rayservice.spec.hashing import cluster_spec_hash, is_worker_group_append, serve_config_hash
from rayservice.spec.manifest import RayClusterSpec, RayServiceSpec
from rayservice.spec.observed import ObservedCluster

INCREMENTAL = "NewClusterWithIncrementalUpgrade"
PAUSE_ANNOTATION = "rayservice.io/rollout-paused"
PROMOTE_ANNOTATION = "rayservice.io/rollout-promote"
DEFAULT_STEP_PERCENT = 10
DEFAULT_INTERVAL_SECONDS = 30


class PlanningPass(Protocol):
    """What the upgrade decisions need from the planning pass they run in."""

    record: ServiceRecord
    spec: RayServiceSpec
    now: float
    events: list[PlannedEvent]
    notes: list[str]
    upgrade_held: tuple[str, str] | None
    wake_at: float | None

    @property
    def desired_serve_config(self) -> dict[str, Any]: ...

    @property
    def annotations(self) -> dict[str, str]: ...

    def new_slot(self, traffic: int, capacity: int | None) -> ClusterSlot: ...

    def drop_cluster(self, name: str, reason: str, rollback: bool = False) -> None: ...

    def cluster_of(self, slot: ClusterSlot | None) -> ObservedCluster | None: ...

    def serve_ready(self, slot: ClusterSlot, cluster: ObservedCluster | None) -> str | None: ...

    def switch_to_pending(self, pending: ClusterSlot) -> None: ...

    def time_out_if_due(self, pending: ClusterSlot, waiting: str) -> None: ...


def fits(slot: ClusterSlot, wanted: RayClusterSpec) -> bool:
    """True when ``slot``'s cluster can become ``wanted`` in place (same hash, or worker
    groups appended at the end)."""
    return slot.spec_hash == cluster_spec_hash(wanted) or is_worker_group_append(
        RayClusterSpec.model_validate(slot.cluster_spec), wanted
    )


def _updated(slot: ClusterSlot, wanted: RayClusterSpec, serve: dict[str, Any]) -> ClusterSlot:
    return slot.model_copy(
        update={
            "spec_hash": cluster_spec_hash(wanted),
            "cluster_spec": wanted.model_dump(mode="json"),
            "serve_config": serve,
        }
    )


def choose_slots(plan: PlanningPass) -> None:
    """Set the record's active and pending slots for the desired spec."""
    record, wanted = plan.record, plan.spec.rayClusterConfig
    serve = plan.desired_serve_config
    active = record.active
    if active is None:
        record.active = plan.new_slot(traffic=FULL, capacity=None)
        return
    if fits(active, wanted):
        record.active = _updated(active, wanted, serve)
        record.given_up = None
        if record.pending is not None:
            _roll_back(plan, record.pending)
        return
    if plan.spec.upgradeStrategy.type == "None":
        record.active = active.model_copy(update={"serve_config": serve})
        plan.upgrade_held = (
            "UpgradeStrategyNone",
            f"rayClusterConfig differs from cluster {active.name}'s, but upgradeStrategy.type is"
            " None: the change is not applied (Serve config changes still are)",
        )
        if record.pending is not None:
            plan.drop_cluster(record.pending.name, "upgradeStrategy.type is now None")
            record.pending = None
            restore_active(record)
        return
    given_up = record.given_up
    if (
        given_up is not None
        and given_up.spec_hash == cluster_spec_hash(wanted)
        and given_up.config_hash == serve_config_hash(serve)
    ):
        plan.upgrade_held = ("PendingClusterTimedOut", given_up.reason)
        return
    record.given_up = None
    _keep_pending(plan, wanted, serve)


def _keep_pending(plan: PlanningPass, wanted: RayClusterSpec, serve: dict[str, Any]) -> None:
    record = plan.record
    pending = record.pending
    incremental = plan.spec.upgradeStrategy.type == INCREMENTAL
    if pending is not None and fits(pending, wanted):
        kept = _updated(pending, wanted, serve)
        if kept.rolling_back:  # A -> B -> A -> B: the rollback is called off
            kept = kept.model_copy(update={"rolling_back": False})
            plan.events.append(
                PlannedEvent(
                    "Normal",
                    "RollbackCancelled",
                    f"rayClusterConfig is {pending.name}'s spec again: the upgrade goes on",
                )
            )
        if incremental != (kept.target_capacity is not None):
            # upgradeStrategy.type changed during the upgrade: the pending cluster starts over
            # the new way (capacity in steps from 0, or all of it at once) and the active
            # cluster takes back all traffic and capacity meanwhile
            capacity = 0 if incremental else None
            kept = kept.model_copy(update={"target_capacity": capacity, "traffic_percent": 0})
            restore_active(record)
        record.pending = kept
        return
    if pending is not None:
        reason = f"rayClusterConfig changed again: pending cluster {pending.name} is replaced"
        plan.drop_cluster(pending.name, reason)
        plan.events.append(PlannedEvent("Normal", "PendingClusterReplaced", reason))
        restore_active(record)  # whatever the strategy was, the active cluster gets it all
    record.pending = plan.new_slot(traffic=0, capacity=0 if incremental else None)
    if incremental:
        record.last_step_at = plan.now  # it starts at capacity 0; the first step waits
    active = record.active
    assert active is not None
    how = "traffic moves in steps" if incremental else "traffic switches once all apps RUNNING"
    plan.events.append(
        PlannedEvent(
            "Normal",
            "UpgradeStarted",
            f"rayClusterConfig needs a new cluster: starting pending cluster"
            f" {record.pending.name} to replace {active.name} ({how})",
        )
    )


def restore_active(record: ServiceRecord) -> None:
    """The active cluster takes back all traffic and its full capacity."""
    active = record.active
    if active is not None:
        record.active = active.model_copy(update={"traffic_percent": FULL, "target_capacity": None})


def _roll_back(plan: PlanningPass, pending: ClusterSlot) -> None:
    """The spec is the active cluster's again: drop the pending cluster; in an incremental
    upgrade that already moved traffic, step the traffic back first."""
    record = plan.record
    if pending.traffic_percent > 0 and plan.spec.upgradeStrategy.type == INCREMENTAL:
        if not pending.rolling_back:
            record.pending = pending.model_copy(update={"rolling_back": True})
            plan.events.append(
                PlannedEvent(
                    "Normal",
                    "RollbackStarted",
                    f"rayClusterConfig is back to cluster {_name(record.active)}'s spec: traffic"
                    f" steps back from {pending.name} ({pending.traffic_percent}% on it)",
                )
            )
        return
    if pending.rolling_back and pending.traffic_percent == 0:
        # the steps back are over (all traffic is on the active cluster again): finish the
        # rollback here, as step_traffic never sees this pending cluster again
        _finish(plan, pending)
        return
    reason = f"rayClusterConfig is back to cluster {_name(record.active)}'s spec"
    plan.drop_cluster(pending.name, f"{reason}: pending cluster {pending.name} is dropped", True)
    plan.events.append(
        PlannedEvent("Normal", "RollbackStarted", f"{reason}; deleting {pending.name}")
    )
    record.pending = None
    restore_active(record)


def _name(slot: ClusterSlot | None) -> str:
    return slot.name if slot is not None else "<none>"


# -- incremental upgrades -------------------------------------------------------------------


def step_traffic(plan: PlanningPass, pending: ClusterSlot, cluster: ObservedCluster | None) -> None:
    """One step of an incremental upgrade (or of its rollback), at most every interval."""
    record, active = plan.record, plan.record.active
    assert active is not None
    options = plan.spec.upgradeStrategy.clusterUpgradeOptions
    surge = options.maxSurgePercent if options else FULL
    step = (options.stepSizePercent if options else None) or DEFAULT_STEP_PERCENT
    interval = (options.intervalSeconds if options else None) or DEFAULT_INTERVAL_SECONDS
    promote = plan.annotations.get(PROMOTE_ANNOTATION) == pending.name
    # traffic only ever moves to a cluster that serves: the pending one on the way up, the
    # active one on the way back
    if pending.rolling_back:
        waiting = plan.serve_ready(active, plan.cluster_of(active))
    else:
        waiting = plan.serve_ready(pending, cluster)
    if pending.rolling_back:
        split = Split(
            source_capacity=_capacity(pending),
            target_capacity=_capacity(active),
            target_traffic=active.traffic_percent,
        )
    else:
        split = Split(
            source_capacity=_capacity(active),
            target_capacity=_capacity(pending),
            target_traffic=pending.traffic_percent,
        )
    if promote and not pending.rolling_back:
        if pending.target_capacity != FULL:  # full capacity first, then all the traffic
            record.pending = pending.model_copy(update={"target_capacity": FULL})
            plan.notes.append(f"promote: {pending.name} gets full capacity before all traffic")
            return
        if waiting is None:
            plan.events.append(
                PlannedEvent("Normal", "RolloutPromoted", f"{pending.name} takes all traffic now")
            )
            plan.switch_to_pending(pending)
            return
        plan.notes.append(f"promote waits until {pending.name} is ready: {waiting}")
    moved = next_step(split, surge, step)
    if moved is None:  # all traffic and capacity are where they should be
        _finish(plan, pending)
        return
    if plan.annotations.get(PAUSE_ANNOTATION) == "true":
        plan.notes.append("rollout paused")
        return
    due = record.last_step_at + interval
    if plan.now < due:
        plan.wake_at = min(plan.wake_at or due, due)
        return
    sends_traffic = moved.split.target_traffic > split.target_traffic
    if sends_traffic and waiting is not None:
        plan.notes.append(f"traffic waits: {waiting}")
        if pending.rolling_back:
            return
        if pending.traffic_percent > 0:
            # It was ready once and carries traffic: a busy moment (Serve scaling to a new
            # capacity) is no reason to give it up; only a stall as long as the timeout is.
            stalled_since = max(pending.created_at, record.last_step_at)
            pending = pending.model_copy(update={"created_at": stalled_since})
        plan.time_out_if_due(pending, waiting)
        return
    _apply(record, pending, moved.split, pending.rolling_back)
    record.last_step_at = plan.now
    where = "rollback" if pending.rolling_back else "upgrade"
    plan.events.append(PlannedEvent("Normal", "TrafficStepped", f"{where}: {moved.reason}"))


def _capacity(slot: ClusterSlot) -> int:
    return FULL if slot.target_capacity is None else slot.target_capacity


def _apply(record: ServiceRecord, pending: ClusterSlot, split: Split, rolling_back: bool) -> None:
    active = record.active
    assert active is not None
    if rolling_back:  # source is the pending cluster, target the active one
        active_capacity, pending_capacity = split.target_capacity, split.source_capacity
        active_traffic = split.target_traffic
    else:
        active_capacity, pending_capacity = split.source_capacity, split.target_capacity
        active_traffic = FULL - split.target_traffic
    record.active = active.model_copy(
        update={"target_capacity": active_capacity, "traffic_percent": active_traffic}
    )
    record.pending = pending.model_copy(
        update={"target_capacity": pending_capacity, "traffic_percent": FULL - active_traffic}
    )


def _finish(plan: PlanningPass, pending: ClusterSlot) -> None:
    record = plan.record
    if pending.rolling_back:
        reason = f"traffic is back on cluster {_name(record.active)}"
        plan.drop_cluster(
            pending.name, f"{reason}: pending cluster {pending.name} is dropped", True
        )
        record.pending = None
        restore_active(record)
        plan.events.append(PlannedEvent("Normal", "RollbackCompleted", reason))
        return
    plan.switch_to_pending(pending)
