"""The controller's own Prometheus metrics, served by the REST API at ``GET /metrics``.

They say how the control plane itself is doing, which status and events cannot say over time:
how many services stand in each state, how often passes run and how long full ones take, which
actions fail and how, how upgrades end, and how long a new service takes to serve.

Each :class:`ControllerMetrics` keeps its own ``CollectorRegistry`` (never the process-wide
default one), so a process, or a test, can build as many controllers as it likes. Counters are
bumped where things happen (the loop counts passes, the reconciler reports actions, events and
the status it writes); the number of services per state is read from the store at scrape time,
so it is never stale and survives a controller restart. Label values are the enums below (and
the existing vocabulary: action class names, :class:`FailureKind`), never loose strings.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from enum import StrEnum
from typing import get_args

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric

from rayservice.planner.actions import Action
from rayservice.spec.status import RayServiceStatus
from rayservice.spec.vocabulary import (
    KIND,
    ConditionReason,
    ConditionType,
    EventReason,
    FailureKind,
)
from rayservice.store.base import Store, StoredResource


class PassResult(StrEnum):
    """How the loop's pass over one service went."""

    PLANNED = "planned"  # a full pass: observe, plan, execute, write
    SETTLED = "settled"  # nothing changed since a pass that did nothing: its plan holds
    ERROR = "error"  # the pass raised (recorded as a ReconcileFailed event)


class ActionOutcome(StrEnum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class UpgradeEvent(StrEnum):
    """How an upgrade begins or ends, counted from the events the reconciler records."""

    STARTED = "started"
    COMPLETED = "completed"
    ROLLED_BACK = "rolled_back"
    ROLLBACK_CANCELLED = "rollback_cancelled"
    GIVEN_UP = "given_up"


# A rollback is counted when it starts: a NewCluster upgrade (or an incremental one before any
# traffic moved) drops its pending cluster in that same pass and records no RollbackCompleted;
# only an incremental one that has to step traffic back first ends with RollbackCompleted (not
# counted again), or with RollbackCancelled when the spec turns to the pending cluster's again.
UPGRADE_EVENTS: dict[EventReason, UpgradeEvent] = {
    EventReason.UPGRADE_STARTED: UpgradeEvent.STARTED,
    EventReason.UPGRADE_COMPLETED: UpgradeEvent.COMPLETED,
    EventReason.ROLLBACK_STARTED: UpgradeEvent.ROLLED_BACK,
    EventReason.ROLLBACK_CANCELLED: UpgradeEvent.ROLLBACK_CANCELLED,
    EventReason.UPGRADE_TIMED_OUT: UpgradeEvent.GIVEN_UP,
}


class ServiceState(StrEnum):
    """One state per stored service, the first that holds in this order."""

    DELETING = "Deleting"  # deletion requested
    FAILING = "Failing"  # ReconcileFailed is true: an action fails
    UPGRADING = "Upgrading"  # UpgradeInProgress or RollbackInProgress is true
    READY = "Ready"  # Ready is true (it serves)
    NOT_READY = "NotReady"  # none of the above (being created, or lost its endpoints)


ACTION_NAMES = tuple(kind.__name__ for kind in get_args(Action))
TIME_TO_READY_BUCKETS = (5, 10, 20, 30, 45, 60, 90, 120, 180, 300, 600, 1200, 1800)


def state_of(resource: StoredResource) -> ServiceState:
    if resource.deleting:
        return ServiceState.DELETING
    status = RayServiceStatus.model_validate(resource.status)
    if status.is_true(ConditionType.RECONCILE_FAILED):
        return ServiceState.FAILING
    if status.is_true(ConditionType.UPGRADE_IN_PROGRESS) or status.is_true(
        ConditionType.ROLLBACK_IN_PROGRESS
    ):
        return ServiceState.UPGRADING
    if status.is_true(ConditionType.READY):
        return ServiceState.READY
    return ServiceState.NOT_READY


def first_ready(previous: RayServiceStatus, status: RayServiceStatus) -> bool:
    """Whether ``status`` is the first to say Ready: before a service first serves, its Ready
    condition is absent or False with reason Initializing (afterwards a False one says
    ZeroServeEndpoints, see the planner's readiness)."""
    if not status.is_true(ConditionType.READY):
        return False
    before = previous.condition(ConditionType.READY)
    return before is None or before.reason == ConditionReason.INITIALIZING


class _ServiceStates:
    """``rayservice_services{state}``, counted from the store at each scrape."""

    NAME = "rayservice_services"
    HELP = (
        "RayServices in the store by state, one state each, the first that holds of: "
        "Deleting (deletion requested), Failing (ReconcileFailed true), Upgrading "
        "(UpgradeInProgress or RollbackInProgress true), Ready (Ready true), NotReady"
    )

    def __init__(self, store: Store) -> None:
        self.store = store

    def describe(self) -> Iterable[Metric]:
        return [GaugeMetricFamily(self.NAME, self.HELP, labels=["state"])]

    def collect(self) -> Iterable[Metric]:
        counts = dict.fromkeys(ServiceState, 0)
        for resource in self.store.list_resources(KIND):
            counts[state_of(resource)] += 1
        family = GaugeMetricFamily(self.NAME, self.HELP, labels=["state"])
        for state, count in counts.items():
            family.add_metric([state], count)
        return [family]


class ControllerMetrics:
    """The metrics of one controller, in its own registry (``registry``)."""

    def __init__(self, store: Store) -> None:
        self.registry = CollectorRegistry()
        self.passes = Counter(
            "rayservice_reconcile_passes_total",
            "Reconcile passes of one service by result: planned (a full pass), settled (the "
            "plan of an earlier pass that did nothing still holds), error (the pass raised)",
            ["result"],
            registry=self.registry,
        )
        self.pass_seconds = Histogram(
            "rayservice_reconcile_duration_seconds",
            "Wall-clock seconds of full reconcile passes of one service (observe, plan, "
            "execute, write), those that raised included; settled passes are not timed",
            registry=self.registry,
        )
        self.actions = Counter(
            "rayservice_actions_total",
            "Actions executed, by action and outcome",
            ["action", "outcome"],
            registry=self.registry,
        )
        self.action_failures = Counter(
            "rayservice_action_failures_total",
            "Failed actions by action and by what the failure means for retrying it "
            "(Temporary: retried after a back-off; Permanent, Rejected: held until it changes)",
            ["action", "kind"],
            registry=self.registry,
        )
        self.upgrades = Counter(
            "rayservice_upgrades_total",
            "Upgrades to a new cluster by event: started (UpgradeStarted), completed "
            "(UpgradeCompleted: traffic switched to the new cluster), rolled_back "
            "(RollbackStarted: the spec went back to the active cluster's, so the pending "
            "cluster is dropped, at once or after traffic stepped back), rollback_cancelled "
            "(RollbackCancelled: during a step back the spec turned to the pending cluster's "
            "again and the upgrade goes on), given_up (UpgradeTimedOut)",
            ["event"],
            registry=self.registry,
        )
        self.time_to_ready = Histogram(
            "rayservice_time_to_ready_seconds",
            "Seconds from a RayService's creation in the store to its first Ready=True status, "
            "observed once per service when that status is written; later recoveries of "
            "readiness and upgrades are not observed",
            buckets=TIME_TO_READY_BUCKETS,
            registry=self.registry,
        )
        self.registry.register(_ServiceStates(store))
        for result in PassResult:  # every series exists from the start, at zero
            self.passes.labels(result=result)
        for action in ACTION_NAMES:
            for outcome in ActionOutcome:
                self.actions.labels(action=action, outcome=outcome)
        for event in UpgradeEvent:
            self.upgrades.labels(event=event)

    def pass_ended(self, result: PassResult) -> None:
        self.passes.labels(result=result).inc()

    @contextmanager
    def full_pass(self) -> Iterator[None]:
        """Times a full pass, whether it returns or raises."""
        started = time.perf_counter()
        try:
            yield
        finally:
            self.pass_seconds.observe(time.perf_counter() - started)

    def action_succeeded(self, action: Action) -> None:
        self.actions.labels(action=type(action).__name__, outcome=ActionOutcome.SUCCEEDED).inc()

    def action_failed(self, action: Action, kind: FailureKind) -> None:
        name = type(action).__name__
        self.actions.labels(action=name, outcome=ActionOutcome.FAILED).inc()
        self.action_failures.labels(action=name, kind=kind).inc()

    def event_recorded(self, reason: EventReason) -> None:
        event = UPGRADE_EVENTS.get(reason)
        if event is not None:
            self.upgrades.labels(event=event).inc()

    def status_written(
        self,
        resource: StoredResource,
        previous: RayServiceStatus,
        status: RayServiceStatus,
        now: float,
    ) -> None:
        """The reconciler wrote ``status`` over ``previous`` at ``now``."""
        if first_ready(previous, status):
            self.time_to_ready.observe(max(0.0, now - resource.created_at))
