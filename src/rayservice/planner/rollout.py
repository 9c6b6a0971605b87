"""The rollout state machine: which cluster serves, which one is coming, and what happens next.

One pure function, :func:`decide_rollout`, takes the stored record, the wanted spec, what was
observed and the time, and returns the new record (phase, slots, timers), the clusters to
delete, the events and the two rollout conditions. It is the only place that moves a service
between phases; :func:`intent_of` is the only place that says what a wanted spec means for the
stored slots, and ``diff``/``apply --dry-run``/apply warnings ask it too, so they cannot
disagree with the controller.

Phases (``RolloutPhase``, stored in the record) and their transitions, each written once below::

    Steady   --cluster change, NewCluster--------> Starting  --pending serves-------> Steady
    Steady   --cluster change, incremental-------> Stepping  --all moved / promote--> Steady
    Steady   --cluster change, strategy None-----> Held      --spec fits again------> Steady
    Starting, Stepping --not ready in time-------> GivenUp   --spec/config changes--> Starting
    Starting, Stepping --spec is the active's----> RollingBack --pending is gone----> Steady
    RollingBack --spec is the pending's again----> Stepping  (RollbackCancelled)
    Starting, Stepping --another cluster change--> the same phase (PendingClusterReplaced)
    Starting <-> Stepping: upgradeStrategy changed mid-way (the pending cluster starts over)

A spec that refers to a Secret, ConfigMap or key that is not there (``Wanted.missing``) moves
no phase: nothing new starts, and what runs keeps running as it is, until the object appears.

A pause (annotation) holds a switch or a step without being a phase of its own: it is an input,
like cluster health (a head restarting, a node lost), which can happen in any phase.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from rayservice import __version__
from rayservice.planner.actions import DeleteCluster, PlannedEvent
from rayservice.planner.readiness import serve_ready
from rayservice.planner.record import ClusterSlot, GivenUp, Retiring, ServiceRecord
from rayservice.planner.traffic_steps import Split, next_step
from rayservice.spec.hashing import cluster_spec_hash, is_worker_group_append, serve_config_hash
from rayservice.spec.manifest import RayClusterSpec, RayService
from rayservice.spec.observed import Observed, ObservedCluster
from rayservice.spec.references import Resolution
from rayservice.spec.status import Fact
from rayservice.spec.vocabulary import (
    FULL_CAPACITY,
    AnnotationKey,
    ConditionReason,
    ConditionStatus,
    EventReason,
    EventType,
    RolloutPhase,
    UpgradeType,
)

DEFAULT_STEP_PERCENT = 10
DEFAULT_INTERVAL_SECONDS = 30


class Intent(StrEnum):
    """What a wanted spec means for the stored slots: the answer to "what will apply do"."""

    CREATE = "create"  # no cluster yet
    # the cluster spec refers to a Secret, ConfigMap or key that is not there: no cluster
    # starts for it; one that runs keeps its spec (its Serve config still follows)
    UNRESOLVED = "unresolved"
    IN_PLACE = "in place"  # the active cluster can become it (same hash, or groups appended)
    ROLLBACK = "rollback"  # ... while a pending cluster exists: the pending cluster goes
    HOLD = "hold"  # a cluster change that upgradeStrategy None keeps from being applied
    GIVEN_UP = "given up"  # the same spec and config already timed out: not tried again
    UPDATE_PENDING = "update pending"  # the pending cluster can become it
    NEW_PENDING = "new pending"  # a new pending cluster (replacing any other)


@dataclass(frozen=True)
class Wanted:
    """What the stored RayService asks of the rollout."""

    cluster_spec: RayClusterSpec  # with the values of the Secrets and ConfigMaps it names
    spec_hash: str
    missing: tuple[str, ...]  # what the spec refers to and is not there
    serve_config: dict[str, Any]  # serveConfigV2 parsed, local working dirs packaged
    config_hash: str
    strategy: UpgradeType
    surge_percent: int
    step_percent: int
    interval_seconds: int
    deletion_delay: int
    pending_timeout: int
    paused: bool
    promoted: str  # the pending cluster the promote annotation names ("" when none)
    new_cluster: str  # the name a cluster started for this generation gets
    exclude_head: bool


def wanted_of(
    service: RayService, cluster: Resolution, serve_config: dict[str, Any], new_cluster: str
) -> Wanted:
    """What ``service`` asks for, its cluster spec resolved as ``cluster``."""
    spec, annotations = service.spec, service.metadata.annotations
    options = spec.upgradeStrategy.clusterUpgradeOptions
    return Wanted(
        cluster_spec=cluster.spec,
        spec_hash=cluster_spec_hash(cluster.spec),
        missing=cluster.missing,
        serve_config=serve_config,
        config_hash=serve_config_hash(serve_config),
        strategy=UpgradeType(spec.upgradeStrategy.type),
        surge_percent=options.maxSurgePercent if options else FULL_CAPACITY,
        step_percent=(options.stepSizePercent if options else None) or DEFAULT_STEP_PERCENT,
        interval_seconds=(options.intervalSeconds if options else None) or DEFAULT_INTERVAL_SECONDS,
        deletion_delay=spec.rayClusterDeletionDelaySeconds,
        pending_timeout=spec.pendingClusterTimeoutSeconds,
        paused=annotations.get(AnnotationKey.ROLLOUT_PAUSED) == "true",
        promoted=annotations.get(AnnotationKey.ROLLOUT_PROMOTE, ""),
        new_cluster=new_cluster,
        exclude_head=spec.excludeHeadPodFromServeSvc,
    )


@dataclass(frozen=True)
class RolloutDecision:
    record: ServiceRecord
    intent: Intent
    deletions: tuple[DeleteCluster, ...]
    events: tuple[PlannedEvent, ...]
    upgrade: Fact  # UpgradeInProgress
    rollback: Fact  # RollbackInProgress
    wake_at: float | None  # a stored timer falls due then
    notes: tuple[str, ...]


def fits(slot: ClusterSlot, wanted: RayClusterSpec, wanted_hash: str) -> bool:
    """True when ``slot``'s cluster can become ``wanted`` in place (same hash, or worker
    groups appended at the end)."""
    return slot.spec_hash == wanted_hash or is_worker_group_append(
        RayClusterSpec.model_validate(slot.cluster_spec), wanted
    )


def intent_of(record: ServiceRecord, wanted: Wanted) -> Intent:
    active, pending, given_up = record.active, record.pending, record.given_up
    if wanted.missing:
        return Intent.UNRESOLVED
    if active is None:
        return Intent.CREATE
    if fits(active, wanted.cluster_spec, wanted.spec_hash):
        return Intent.ROLLBACK if pending is not None else Intent.IN_PLACE
    if wanted.strategy is UpgradeType.NONE:
        return Intent.HOLD
    if (
        given_up is not None
        and given_up.spec_hash == wanted.spec_hash
        and given_up.config_hash == wanted.config_hash
    ):
        return Intent.GIVEN_UP
    if pending is not None and fits(pending, wanted.cluster_spec, wanted.spec_hash):
        return Intent.UPDATE_PENDING
    return Intent.NEW_PENDING


def decide_rollout(
    record: ServiceRecord, wanted: Wanted, observed: Observed, now: float
) -> RolloutDecision:
    return _Rollout(record.model_copy(deep=True), wanted, observed, now).decide()


class _Rollout:
    """One decision; a class only to share its inputs and what it collects between steps."""

    def __init__(
        self, record: ServiceRecord, wanted: Wanted, observed: Observed, now: float
    ) -> None:
        self.record, self.wanted, self.observed, self.now = record, wanted, observed, now
        self.deletions: list[DeleteCluster] = []
        self.events: list[PlannedEvent] = []
        self.notes: list[str] = []
        self.wake_at: float | None = None
        self.held: Fact | None = None

    def decide(self) -> RolloutDecision:
        record = self.record
        record.rolled_back = [n for n in record.rolled_back if n in self.observed.clusters]
        missing = list(self.wanted.missing)
        if missing != record.missing_references:
            record.missing_references = missing
            if missing:
                message = f"rayClusterConfig cannot be resolved: {'; '.join(missing)}"
                self._event(EventReason.REFERENCE_NOT_FOUND, message, EventType.WARNING)
        intent = intent_of(record, self.wanted)
        self._follow(intent)
        if record.pending is not None and intent is not Intent.UNRESOLVED:
            self._advance(record.pending)  # an upgrade waits while the spec is unresolved
        if record.phase is RolloutPhase.ROLLING_BACK and not (record.pending or record.rolled_back):
            record.phase = RolloutPhase.STEADY  # the dropped cluster is gone
        return RolloutDecision(
            record=record,
            intent=intent,
            deletions=tuple(self.deletions),
            events=tuple(self.events),
            upgrade=self._upgrade_condition(),
            rollback=self._rollback_condition(),
            wake_at=self.wake_at,
            notes=tuple(self.notes),
        )

    # -- inputs --------------------------------------------------------------------------

    def _cluster(self, slot: ClusterSlot) -> ObservedCluster | None:
        return self.observed.clusters.get(slot.name)

    def _waiting(self, slot: ClusterSlot) -> str | None:
        """Why ``slot``'s cluster cannot take traffic yet (None: it can)."""
        return serve_ready(
            slot,
            self._cluster(slot),
            self.record.deployed,
            self.observed.serve,
            self.wanted.serve_config,
            self.wanted.exclude_head,
        )

    def _wake(self, at: float) -> None:
        self.wake_at = at if self.wake_at is None else min(self.wake_at, at)

    def _event(
        self, reason: EventReason, message: str, type_: EventType = EventType.NORMAL
    ) -> None:
        self.events.append(PlannedEvent(type_, reason, message))

    # -- what the wanted spec means --------------------------------------------------------

    def _follow(self, intent: Intent) -> None:
        record, wanted = self.record, self.wanted
        active = record.active
        match intent:
            case Intent.CREATE:
                record.active = self._new_slot(traffic=FULL_CAPACITY, capacity=None)
                record.phase = RolloutPhase.STEADY
            case Intent.IN_PLACE | Intent.ROLLBACK:
                assert active is not None
                record.active = self._updated(active)
                record.given_up = None
                if record.phase in (RolloutPhase.HELD, RolloutPhase.GIVEN_UP):
                    record.phase = RolloutPhase.STEADY
                if intent is Intent.ROLLBACK:
                    self._roll_back()
            case Intent.HOLD:
                assert active is not None
                record.active = active.model_copy(update={"serve_config": wanted.serve_config})
                if record.pending is not None:
                    self._drop_pending("upgradeStrategy.type is now None")
                record.phase = RolloutPhase.HELD
                self.held = Fact(
                    ConditionStatus.FALSE,
                    ConditionReason.UPGRADE_STRATEGY_NONE,
                    f"rayClusterConfig differs from cluster {active.name}'s, but"
                    " upgradeStrategy.type is None: the change is not applied (Serve config"
                    " changes still are)",
                )
            case Intent.UNRESOLVED:
                if active is None:
                    return  # nothing to keep; the planner says why none starts
                record.active = active.model_copy(update={"serve_config": wanted.serve_config})
                running = f"cluster {active.name} keeps running with the values it started with"
                pending = record.pending
                if pending is not None:
                    record.pending = pending.model_copy(
                        update={"serve_config": wanted.serve_config}
                    )
                    running = (
                        f"clusters {active.name} and {pending.name} keep running with the values"
                        " they started with, and no traffic moves between them"
                    )
                self.held = Fact(
                    ConditionStatus.FALSE,
                    ConditionReason.REFERENCE_NOT_FOUND,
                    f"rayClusterConfig cannot be resolved: {'; '.join(wanted.missing)}. Until"
                    f" it can, {running} (Serve config changes still apply)",
                )
            case Intent.GIVEN_UP:
                assert record.given_up is not None
                record.phase = RolloutPhase.GIVEN_UP
                self.held = Fact(
                    ConditionStatus.FALSE,
                    ConditionReason.PENDING_CLUSTER_TIMED_OUT,
                    record.given_up.reason,
                )
            case Intent.UPDATE_PENDING:
                record.given_up = None
                self._update_pending()
            case Intent.NEW_PENDING:
                record.given_up = None
                if record.pending is not None:
                    reason = (
                        "rayClusterConfig changed again: pending cluster"
                        f" {record.pending.name} is replaced"
                    )
                    self._drop_pending(reason, (EventReason.PENDING_CLUSTER_REPLACED, reason))
                self._start_pending()

    # -- transitions -----------------------------------------------------------------------

    def _new_slot(self, traffic: int, capacity: int | None) -> ClusterSlot:
        wanted = self.wanted
        return ClusterSlot(
            name=wanted.new_cluster,
            spec_hash=wanted.spec_hash,
            hashed_by=__version__,
            cluster_spec=wanted.cluster_spec.model_dump(mode="json"),
            serve_config=wanted.serve_config,
            created_at=self.now,
            target_capacity=capacity,
            traffic_percent=traffic,
        )

    def _updated(self, slot: ClusterSlot) -> ClusterSlot:
        """``slot`` taking the wanted cluster spec (in place) and Serve config."""
        wanted = self.wanted
        return slot.model_copy(
            update={
                "spec_hash": wanted.spec_hash,
                "hashed_by": __version__,
                "cluster_spec": wanted.cluster_spec.model_dump(mode="json"),
                "serve_config": wanted.serve_config,
            }
        )

    def _restore_active(self) -> None:
        """The active cluster takes back all traffic and its full capacity."""
        active = self.record.active
        if active is not None:
            self.record.active = active.model_copy(
                update={"traffic_percent": FULL_CAPACITY, "target_capacity": None}
            )

    def _start_pending(self) -> None:
        record = self.record
        stepped = self.wanted.strategy is UpgradeType.INCREMENTAL
        record.pending = self._new_slot(traffic=0, capacity=0 if stepped else None)
        if stepped:
            record.last_step_at = self.now  # it starts at capacity 0; the first step waits
        record.phase = RolloutPhase.STEPPING if stepped else RolloutPhase.STARTING
        active = record.active
        assert active is not None
        how = "traffic moves in steps" if stepped else "traffic switches once all apps RUNNING"
        self._event(
            EventReason.UPGRADE_STARTED,
            f"rayClusterConfig needs a new cluster: starting pending cluster"
            f" {record.pending.name} to replace {active.name} ({how})",
        )

    def _update_pending(self) -> None:
        """The wanted spec fits the pending cluster: it takes the spec and Serve config."""
        record = self.record
        pending = record.pending
        assert pending is not None
        kept = self._updated(pending)
        if record.phase is RolloutPhase.ROLLING_BACK:  # A -> B -> A -> B
            record.phase = RolloutPhase.STEPPING
            self._event(
                EventReason.ROLLBACK_CANCELLED,
                f"rayClusterConfig is {pending.name}'s spec again: the upgrade goes on",
            )
        stepped = self.wanted.strategy is UpgradeType.INCREMENTAL
        if stepped != (record.phase is RolloutPhase.STEPPING):
            # upgradeStrategy.type changed during the upgrade: the pending cluster starts over
            # the new way (capacity in steps from 0, or all of it at once) and the active
            # cluster takes back all traffic and capacity meanwhile
            kept = kept.model_copy(
                update={"target_capacity": 0 if stepped else None, "traffic_percent": 0}
            )
            self._restore_active()
            record.phase = RolloutPhase.STEPPING if stepped else RolloutPhase.STARTING
            if stepped:
                record.last_step_at = self.now  # from capacity 0 again: the first step waits
        record.pending = kept

    def _drop_pending(
        self,
        reason: str,
        event: tuple[EventReason, str] | None = None,
        *,
        rollback: bool = False,
        type_: EventType = EventType.NORMAL,
    ) -> None:
        """The one way a pending cluster goes: deleted (after the front let go of it), the
        active cluster back to all traffic and capacity."""
        record = self.record
        pending = record.pending
        assert pending is not None
        self.deletions.append(DeleteCluster(pending.name, reason))
        if rollback and pending.name not in record.rolled_back:
            record.rolled_back.append(pending.name)
        record.pending = None
        self._restore_active()
        record.phase = RolloutPhase.ROLLING_BACK if rollback else RolloutPhase.STEADY
        if event is not None:
            self._event(*event, type_=type_)

    def _roll_back(self) -> None:
        """The spec is the active cluster's again: drop the pending cluster; in an incremental
        upgrade that already moved traffic, step the traffic back first."""
        record = self.record
        pending, active = record.pending, record.active
        assert pending is not None and active is not None
        rolling_back = record.phase is RolloutPhase.ROLLING_BACK
        if pending.traffic_percent > 0 and self.wanted.strategy is UpgradeType.INCREMENTAL:
            if not rolling_back:
                record.phase = RolloutPhase.ROLLING_BACK
                self._event(
                    EventReason.ROLLBACK_STARTED,
                    f"rayClusterConfig is back to cluster {active.name}'s spec: traffic"
                    f" steps back from {pending.name} ({pending.traffic_percent}% on it)",
                )
            return
        if rolling_back and pending.traffic_percent == 0:
            self._finish_rollback(pending)  # the steps back are over
            return
        reason = f"rayClusterConfig is back to cluster {active.name}'s spec"
        self._drop_pending(
            f"{reason}: pending cluster {pending.name} is dropped",
            (EventReason.ROLLBACK_STARTED, f"{reason}; deleting {pending.name}"),
            rollback=True,
        )

    def _finish_rollback(self, pending: ClusterSlot) -> None:
        active = self.record.active
        assert active is not None
        reason = f"traffic is back on cluster {active.name}"
        self._drop_pending(
            f"{reason}: pending cluster {pending.name} is dropped",
            (EventReason.ROLLBACK_COMPLETED, reason),
            rollback=True,
        )

    def _switch(self, pending: ClusterSlot) -> None:
        """The pending cluster becomes the active one; the old one retires after the delay."""
        record = self.record
        old = record.active
        assert old is not None
        delay = self.wanted.deletion_delay
        record.retiring.append(
            Retiring(
                name=old.name,
                delete_at=self.now + delay,
                reason=f"cluster {old.name} was replaced by {pending.name}",
            )
        )
        capacity = pending.target_capacity if record.phase is RolloutPhase.STEPPING else None
        record.active = pending.model_copy(
            update={"traffic_percent": FULL_CAPACITY, "target_capacity": capacity}
        )
        record.pending = None
        record.phase = RolloutPhase.STEADY
        self._event(
            EventReason.UPGRADE_COMPLETED,
            f"traffic switched from cluster {old.name} to {pending.name}; {old.name} is"
            f" deleted in {delay}s (rayClusterDeletionDelaySeconds)",
        )

    def _time_out_if_due(self, pending: ClusterSlot, waiting: str, since: float) -> None:
        timeout = self.wanted.pending_timeout
        if self.now - since < timeout:
            self._wake(since + timeout)
            return
        reason = (
            f"pending cluster {pending.name} was not ready after {timeout}s"
            f" (pendingClusterTimeoutSeconds): {waiting}; the active cluster keeps serving"
        )
        self.record.given_up = GivenUp(
            spec_hash=pending.spec_hash,
            hashed_by=pending.hashed_by,
            cluster_spec=pending.cluster_spec,
            config_hash=self.wanted.config_hash,
            reason=reason,
        )
        self._drop_pending(reason, (EventReason.UPGRADE_TIMED_OUT, reason), type_=EventType.WARNING)
        self.record.phase = RolloutPhase.GIVEN_UP
        self.held = Fact(ConditionStatus.FALSE, ConditionReason.PENDING_CLUSTER_TIMED_OUT, reason)

    # -- moving on -------------------------------------------------------------------------

    def _advance(self, pending: ClusterSlot) -> None:
        if self.record.stepping:
            self._step(pending)
            return
        waiting = self._waiting(pending)
        promoted = self.wanted.promoted == pending.name
        if waiting is None and self.wanted.paused and not promoted:
            self.notes.append(f"rollout paused: {pending.name} is ready but takes no traffic")
        elif waiting is None:
            self._switch(pending)
        else:
            self._time_out_if_due(pending, waiting, since=pending.created_at)

    def _step(self, pending: ClusterSlot) -> None:
        """One step of an incremental upgrade (or of its rollback), at most every interval."""
        record, wanted = self.record, self.wanted
        active = record.active
        assert active is not None
        rolling_back = record.phase is RolloutPhase.ROLLING_BACK
        # traffic only ever moves to a cluster that serves: the pending one on the way up, the
        # active one on the way back
        if rolling_back:
            waiting = self._waiting(active)
            split = Split(pending.capacity, active.capacity, active.traffic_percent)
        else:
            waiting = self._waiting(pending)
            split = Split(active.capacity, pending.capacity, pending.traffic_percent)
        if wanted.promoted == pending.name and not rolling_back:
            if pending.target_capacity != FULL_CAPACITY:  # full capacity first, then traffic
                record.pending = pending.model_copy(update={"target_capacity": FULL_CAPACITY})
                self.notes.append(f"promote: {pending.name} gets full capacity before all traffic")
                return
            if waiting is None:
                self._event(EventReason.ROLLOUT_PROMOTED, f"{pending.name} takes all traffic now")
                self._switch(pending)
                return
            self.notes.append(f"promote waits until {pending.name} is ready: {waiting}")
        if not rolling_back and waiting is not None and pending.traffic_percent == 0:
            # capacity may go on rising for a cluster that takes no traffic, but not past the
            # time it has to get ready
            self._time_out_if_due(pending, waiting, pending.created_at)
            if self.record.pending is None:
                return
        if wanted.paused:  # a pause holds the last move (the switch) too
            self.notes.append("rollout paused")
            return
        moved = next_step(split, wanted.surge_percent, wanted.step_percent)
        if moved is None:  # all traffic and capacity are where they should be
            if rolling_back:
                self._finish_rollback(pending)
            else:
                self._switch(pending)
            return
        due = record.last_step_at + wanted.interval_seconds
        if self.now < due:
            self._wake(due)
            return
        if moved.split.target_traffic > split.target_traffic and waiting is not None:
            self.notes.append(f"traffic waits: {waiting}")
            if not rolling_back:
                # Once it carries traffic, a busy moment (Serve scaling to a new capacity) is
                # no reason to give it up; only a stall as long as the timeout is.
                since = pending.created_at
                if pending.traffic_percent > 0:
                    since = max(pending.created_at, record.last_step_at)
                self._time_out_if_due(pending, waiting, since)
            return
        self._apply_split(pending, moved.split, rolling_back)
        record.last_step_at = self.now
        where = "rollback" if rolling_back else "upgrade"
        self._event(EventReason.TRAFFIC_STEPPED, f"{where}: {moved.reason}")

    def _apply_split(self, pending: ClusterSlot, split: Split, rolling_back: bool) -> None:
        record = self.record
        active = record.active
        assert active is not None
        if rolling_back:  # source is the pending cluster, target the active one
            active_capacity, pending_capacity = split.target_capacity, split.source_capacity
            active_traffic = split.target_traffic
        else:
            active_capacity, pending_capacity = split.source_capacity, split.target_capacity
            active_traffic = FULL_CAPACITY - split.target_traffic
        record.active = active.model_copy(
            update={"target_capacity": active_capacity, "traffic_percent": active_traffic}
        )
        record.pending = pending.model_copy(
            update={
                "target_capacity": pending_capacity,
                "traffic_percent": FULL_CAPACITY - active_traffic,
            }
        )

    # -- conditions ------------------------------------------------------------------------

    def _upgrade_condition(self) -> Fact:
        record = self.record
        pending = record.pending
        if self.held is not None and self.held.reason is ConditionReason.REFERENCE_NOT_FOUND:
            return self.held  # what holds the upgrade back, not where it stands
        if pending is not None and record.phase is not RolloutPhase.ROLLING_BACK:
            waiting = self._waiting(pending) or "ready"
            if record.stepping:
                waiting = (
                    f"{pending.traffic_percent}% of traffic and {pending.capacity}% capacity"
                    f" on {pending.name}; {waiting}"
                )
            return Fact(
                ConditionStatus.TRUE,
                ConditionReason.BOTH_CLUSTERS_EXIST,
                f"moving to pending cluster {pending.name}: {waiting}",
            )
        if self.held is not None:
            return self.held
        return Fact(
            ConditionStatus.FALSE,
            ConditionReason.NO_PENDING_CLUSTER,
            "the active cluster matches rayClusterConfig",
        )

    def _rollback_condition(self) -> Fact:
        record = self.record
        pending = record.pending
        if pending is not None and record.phase is RolloutPhase.ROLLING_BACK:
            return Fact(
                ConditionStatus.TRUE,
                ConditionReason.STEP_TRAFFIC_BACK,
                "rayClusterConfig is back to the active cluster's spec: traffic steps back"
                f" from {pending.name} ({pending.traffic_percent}% left)",
            )
        if record.rolled_back:
            return Fact(
                ConditionStatus.TRUE,
                ConditionReason.DELETING_PENDING_CLUSTER,
                "rayClusterConfig is back to the active cluster's spec: deleting"
                f" {', '.join(record.rolled_back)}",
            )
        return Fact(ConditionStatus.FALSE, ConditionReason.NO_ROLLBACK, "no rollback in progress")
