"""The planner: (desired, observed, record, previous status, now) -> Plan. Pure.

It decides what the controller should do next for one RayService and why, and what its status
is. The rollout (which cluster is active, which is pending, how traffic moves) is decided by
:mod:`rayservice.planner.rollout`; this module keeps the clusters of the chosen slots running
with their Serve configs, points the front at them, deletes what is no longer used, holds back
actions that failed (:mod:`rayservice.planner.retries`) and derives the status. It performs no
IO, reads no clock and keeps no state between calls: everything it needs arrives as arguments,
and everything it wants remembered goes out in ``Plan.record``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from rayservice.planner import front, initializing, pod_readiness
from rayservice.planner import service_status as statuses
from rayservice.planner.actions import (
    Action,
    DeleteCluster,
    DeleteFront,
    DeployServeConfig,
    EnsureCluster,
    EnsureFront,
    ForgetService,
    Plan,
    PlannedEvent,
    StatusT,
)
from rayservice.planner.cluster import (
    cluster_drift,
    cluster_name,
    keeping_an_endpoint,
    lost_nodes,
    service_cluster_request,
)
from rayservice.planner.readiness import slot_config
from rayservice.planner.record import ActionFailure, ClusterSlot, ServiceRecord, failure_key
from rayservice.planner.retries import gate
from rayservice.planner.rollout import RolloutDecision, decide_rollout, wanted_of
from rayservice.spec.autoscaling import ScaleRequest
from rayservice.spec.events import ObjectKind, ObjectRef
from rayservice.spec.hashing import cluster_spec_hash, serve_config_hash
from rayservice.spec.manifest import RayClusterSpec, RayService
from rayservice.spec.observed import NodePhase, Observed, ObservedCluster, ServeState
from rayservice.spec.references import Resolution
from rayservice.spec.status import (
    Condition,
    Fact,
    RayServiceStatus,
    ServiceStatus,
    rfc3339,
    set_condition,
)
from rayservice.spec.vocabulary import (
    FULL_CAPACITY,
    AnnotationKey,
    ApplicationStatus,
    ConditionReason,
    ConditionStatus,
    ConditionType,
    EventReason,
    EventType,
    FailureKind,
    RolloutPhase,
    UpgradeType,
)

BUSY_REQUEUE = 0.5  # something is starting or changing: look again soon
STEADY_REQUEUE = 2.0  # all is well: keep an eye on it
# Right after a Serve config went out: Ray's UPDATING state of an in-place update lasts only
# a few hundred milliseconds, and status should show it.
DEPLOY_FOLLOW_UP = 0.05
_WORST_FIRST = (FailureKind.REJECTED, FailureKind.PERMANENT, FailureKind.TEMPORARY)
_FAILURE_REASONS = {
    FailureKind.REJECTED: ConditionReason.SERVE_CONFIG_REJECTED,
    FailureKind.PERMANENT: ConditionReason.PERMANENT_ERROR,
    FailureKind.TEMPORARY: ConditionReason.TEMPORARY_ERROR,
}


@dataclass(frozen=True)
class Desired:
    service: RayService
    uid: str
    generation: int
    deleting: bool
    serve_config: dict[str, Any]  # serveConfigV2 parsed, local working dirs packaged
    cluster: Resolution  # rayClusterConfig with the Secret and ConfigMap values it names
    # what each cluster's Ray autoscaler last asked for (clusters with enableInTreeAutoscaling)
    scale: Mapping[str, ScaleRequest] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return self.service.key

    @property
    def front_key(self) -> str:
        return front_key(self.key)


def _any_running(serve: ServeState) -> bool:
    return any(app.status == ApplicationStatus.RUNNING for app in serve.apps)


def front_key(service_key: str) -> str:
    """The traffic front's key for a service: ``<namespace>.<name>`` (usable as a folder)."""
    return service_key.replace("/", ".", 1)


def plan(
    desired: Desired,
    observed: Observed,
    record: ServiceRecord,
    previous: RayServiceStatus,
    now: float,
) -> Plan[RayServiceStatus]:
    if desired.deleting:
        return deletion_plan(
            desired.key, desired.service.serve_service_name, observed, record, previous
        )
    record = initializing.with_clock(record, previous, desired.generation, now)
    if initializing.timed_out(record) is not None:
        return timed_out_plan(desired, observed, record, previous, now)
    resolved = desired.cluster
    taken = cluster_spec_hash(resolved.spec) if resolved.uses else ""
    in_use = {*observed.clusters, *record.rolled_back, *(r.name for r in record.retiring)}
    in_use |= {slot.name for slot in (record.active, record.pending) if slot is not None}
    new_cluster = cluster_name(desired.service, desired.uid, desired.generation, taken, in_use)
    wanted = wanted_of(desired.service, desired.cluster, desired.serve_config, new_cluster)
    decision = decide_rollout(record, wanted, observed, now)
    if decision.record.active is None:  # the spec refers to what is not there
        result = unresolved_plan(desired, observed, decision, previous, now)
    else:
        result = _Planner(desired, observed, decision, previous, now).run()
    return _initializing_timeout(desired, observed, previous, result, now)


def _initializing_timeout(
    desired: Desired,
    observed: Observed,
    previous: RayServiceStatus,
    result: Plan[RayServiceStatus],
    now: float,
) -> Plan[RayServiceStatus]:
    """``result`` as ``ray.io/initializing-timeout`` has it: the service is marked as served
    once it has an endpoint; until then the pass wakes when the clock runs out, and gives up
    once it has."""
    record = result.record
    if result.status.numServeEndpoints:
        record.served, record.initializing = True, None
        return result
    due = initializing.due_at(record, initializing.timeout_of(desired.service))
    if due is None:
        return result
    if now < due:
        wake_at = due if result.wake_at is None else min(result.wake_at, due)
        requeue = min(result.requeue_after, max(DEPLOY_FOLLOW_UP, due - now))
        return replace(result, wake_at=wake_at, requeue_after=requeue)
    clock = record.initializing
    assert clock is not None
    ready = result.status.condition(ConditionType.READY)
    missing = ready.message if ready is not None else "not ready"
    message = initializing.timed_out_message(desired.service, clock.since, now, missing)
    record.initializing = clock.model_copy(update={"timed_out": message})
    event = PlannedEvent(EventType.WARNING, EventReason.INITIALIZING_TIMEOUT, message)
    return timed_out_plan(desired, observed, record, previous, now, (event,))


def timed_out_plan(
    desired: Desired,
    observed: Observed,
    record: ServiceRecord,
    previous: RayServiceStatus,
    now: float,
    events: tuple[PlannedEvent, ...] = (),
) -> Plan[RayServiceStatus]:
    """The service gave up initializing for this generation (``ray.io/initializing-timeout``):
    its fronts keep their ports with no cluster behind them, every cluster is deleted, and
    nothing else is tried until the spec changes."""
    message = initializing.timed_out(record)
    assert message is not None
    return _clusterless_plan(
        desired,
        observed,
        record,
        previous,
        now,
        Fact(ConditionStatus.FALSE, ConditionReason.INITIALIZING_TIMEOUT, message),
        f"{desired.key} was not ready within {AnnotationKey.INITIALIZING_TIMEOUT}",
        events,
    )


def unresolved_plan(
    desired: Desired,
    observed: Observed,
    decision: RolloutDecision,
    previous: RayServiceStatus,
    now: float,
) -> Plan[RayServiceStatus]:
    """No cluster runs and none can start: the cluster spec refers to a Secret, ConfigMap or
    key that is not there. The fronts keep their ports, and the service waits for the object
    (or the initializing timeout)."""
    missing = "; ".join(decision.record.missing_references)
    return _clusterless_plan(
        desired,
        observed,
        decision.record,
        previous,
        now,
        Fact(
            ConditionStatus.FALSE,
            ConditionReason.REFERENCE_NOT_FOUND,
            f"no cluster starts until rayClusterConfig can be resolved: {missing}",
        ),
        f"{desired.key} refers to what is not there",
        decision.events,
    )


def _clusterless_plan(
    desired: Desired,
    observed: Observed,
    record: ServiceRecord,
    previous: RayServiceStatus,
    now: float,
    ready: Fact,
    why: str,
    events: tuple[PlannedEvent, ...],
) -> Plan[RayServiceStatus]:
    """A service with no cluster: every cluster it has goes, its fronts stay (with nothing
    behind them) and Ready says ``why``."""
    record = record.model_copy(
        update={
            "phase": RolloutPhase.STEADY,
            "active": None,
            "pending": None,
            "retiring": [],
            "rolled_back": [],
            "given_up": None,
            "endpoints": [],
            "outage_since": None,
            "serve_restarting": [],
        }
    )
    service = desired.service
    spec = front.front_spec(record, service.spec.excludeHeadPodFromServeSvc, None, None)
    actions: list[Action] = []
    if front.needs_ensure(observed.front, spec):
        reason = (
            f"{service.serve_service_name} and {service.head_service_name} keep their ports,"
            " with no cluster behind"
        )
        actions.append(EnsureFront(desired.front_key, spec, reason, service.serve_service_name))
    actions += [DeleteCluster(n, f"{why}: deleting {n}") for n in sorted(observed.clusters)]
    gated = gate(actions, record.failures, now)
    record.failures = gated.failures
    stamp, generation = rfc3339(now), desired.generation
    conditions = previous.conditions
    for kind, fact in (
        (ConditionType.READY, ready),
        (
            ConditionType.UPGRADE_IN_PROGRESS,
            Fact(ConditionStatus.FALSE, ConditionReason.NO_PENDING_CLUSTER, "no cluster runs"),
        ),
        (
            ConditionType.ROLLBACK_IN_PROGRESS,
            Fact(ConditionStatus.FALSE, ConditionReason.NO_ROLLBACK, "no rollback in progress"),
        ),
    ):
        conditions = set_condition(conditions, kind, *fact, stamp, generation)
    conditions = with_failures(conditions, record.failures, stamp, generation)
    busy = bool(gated.actions) or bool(observed.clusters)
    return Plan(
        actions=gated.actions,
        record=record,
        status=RayServiceStatus(conditions=conditions, observedGeneration=generation),
        events=events,
        requeue_after=BUSY_REQUEUE if busy else STEADY_REQUEUE,
        wake_at=gated.retry_at,
        notes=gated.held,
    )


def deletion_plan(
    key: str, service: str, observed: Observed, record: ServiceRecord, previous: StatusT
) -> Plan[StatusT]:
    """Delete the fronts (``service``: the Service their events are about), then the
    clusters, then forget the object ``key``."""
    actions: list[Action] = []
    if observed.front is not None:
        actions.append(DeleteFront(front_key(key), f"{key} is being deleted", service))
    why = f"{key} is being deleted"
    actions += [DeleteCluster(name, why) for name in sorted(observed.clusters)]
    actions.append(ForgetService(f"{key} and everything it started are gone"))
    return Plan(tuple(actions), record, previous, requeue_after=BUSY_REQUEUE)


class _Planner:
    """One planning pass after the rollout decision; a class only to share its inputs."""

    def __init__(
        self,
        desired: Desired,
        observed: Observed,
        decision: RolloutDecision,
        previous: RayServiceStatus,
        now: float,
    ) -> None:
        self.desired = desired
        self.spec = desired.service.spec
        self.observed = observed
        self.decision = decision
        self.record = decision.record
        self.previous = previous
        self.now = now
        self.actions: list[Action] = []
        self.events: list[PlannedEvent] = list(decision.events)
        self.notes: list[str] = list(decision.notes)
        self.wake_at = decision.wake_at
        self.landed = False  # the desired Serve config is on the cluster meant for it

    def run(self) -> Plan[RayServiceStatus]:
        record = self.record
        active = self._cluster(record.active)
        pending = self._cluster(record.pending)
        slots = {slot.name for slot in (record.active, record.pending) if slot is not None}
        record.serve_restarting = [n for n in record.serve_restarting if n in slots]
        for slot in (record.active, record.pending):
            if slot is not None:
                self._keep_cluster(slot)
        record.pod_readiness, unready, look_again = pod_readiness.track(
            record.pod_readiness,
            self.observed.clusters,
            self.observed.serve,
            True,
            self.now,
            deployed=record.deployed,
        )
        self.events += unready
        if look_again is not None:
            self._wake(look_again)
        self._keep_front(active, pending)
        # Clusters go last: the front must stop sending to a cluster before it is deleted.
        self.actions += self.decision.deletions
        self._retire()
        gated = gate(self.actions, record.failures, self.now)
        record.failures = gated.failures
        self.notes += gated.held
        if gated.retry_at is not None:
            self._wake(gated.retry_at)
        self.actions = list(gated.actions)
        self.landed = self.landed or self._target_refused()
        status = self._status(active)
        return Plan(
            actions=gated.actions,
            record=record,
            status=status,
            events=tuple(self.events),
            requeue_after=self._requeue_after(status),
            wake_at=self.wake_at,
            notes=tuple(self.notes),
        )

    def _cluster(self, slot: ClusterSlot | None) -> ObservedCluster | None:
        return None if slot is None else self.observed.clusters.get(slot.name)

    def _wake(self, at: float) -> None:
        self.wake_at = at if self.wake_at is None else min(self.wake_at, at)

    def _requeue_after(self, status: RayServiceStatus) -> float:
        if any(isinstance(a, DeployServeConfig) for a in self.actions):
            return DEPLOY_FOLLOW_UP
        busy = (
            bool(self.actions)
            or self.record.pending is not None
            or bool(self.record.rolled_back)
            or not status.numServeEndpoints
            or any(
                a.status != ApplicationStatus.RUNNING
                for a in status.activeServiceStatus.applicationStatuses.values()
            )
        )
        wait = BUSY_REQUEUE if busy else STEADY_REQUEUE
        if self.wake_at is not None:
            wait = min(wait, max(DEPLOY_FOLLOW_UP, self.wake_at - self.now))
        return wait

    # -- clusters ----------------------------------------------------------------------------

    def _keep_cluster(self, slot: ClusterSlot) -> None:
        cluster = self._cluster(slot)
        request = service_cluster_request(
            self.desired.service,
            slot.name,
            RayClusterSpec.model_validate(slot.cluster_spec),
            slot.spec_hash,
            slot.serve_config or self.desired.serve_config,
            self.desired.scale.get(slot.name),
        )
        request = keeping_an_endpoint(request, cluster, self.spec.excludeHeadPodFromServeSvc)
        reason = cluster_drift(request, cluster)
        if reason is not None:
            event = EventReason.CLUSTER_CREATED if cluster is None else EventReason.CLUSTER_UPDATED
            self.actions.append(EnsureCluster(request, reason, event))
        self.events += cluster_fault_events(cluster)
        if cluster is not None and cluster.head_ready:
            self._keep_serve_config(slot, cluster)

    def _retire(self) -> None:
        """Delete retired clusters whose delay is over, and clusters nothing refers to."""
        observed, record = self.observed.clusters, self.record
        keep = []
        for retiring in record.retiring:
            if self.now >= retiring.delete_at:
                if retiring.name in observed:
                    self.actions.append(DeleteCluster(retiring.name, retiring.reason))
                continue
            keep.append(retiring)
            self._wake(retiring.delete_at)
        record.retiring = keep
        planned = {a.name for a in self.actions if isinstance(a, DeleteCluster)}
        known = (
            {r.name for r in keep}
            | planned
            | {slot.name for slot in (record.active, record.pending) if slot is not None}
        )
        for name in sorted(set(observed) - known):
            self.actions.append(
                DeleteCluster(name, f"cluster {name} is no longer used by {self.desired.key}")
            )

    # -- serve -------------------------------------------------------------------------------

    def _keep_serve_config(self, slot: ClusterSlot, cluster: ObservedCluster) -> None:
        config = slot_config(slot, cluster, self.desired.serve_config)
        config_hash = serve_config_hash(config)
        deployed = self.record.deployed.get(cluster.name)
        serve = self.observed.serve.get(cluster.name)
        restarting = self.record.serve_restarting
        if cluster.name in restarting and serve is not None and _any_running(serve):
            restarting.remove(cluster.name)  # it answers again
        if deployed != config_hash:
            why = self._why_deploy(config, slot.target_capacity, cluster.name)
            reason = f"{why}: submitting it to cluster {cluster.name}"
        elif serve is not None and not serve.apps and config.get("applications"):
            reason = (
                f"cluster {cluster.name} reports no Serve applications (its head restarted"
                " without GCS fault tolerance?): submitting the config again"
            )
            if cluster.name not in restarting:
                restarting.append(cluster.name)
        else:
            self.landed = self.landed or slot is self.record.target
            return
        self.actions.append(
            DeployServeConfig(
                cluster=cluster.name,
                dashboard_url=cluster.dashboard_url,
                token=cluster.auth_token,
                config=config,
                config_hash=config_hash,
                reason=reason,
            )
        )

    def _why_deploy(self, config: dict[str, Any], capacity: int | None, cluster: str) -> str:
        """Why ``config`` goes to ``cluster``: first config, a Serve change, a capacity step."""
        deployed = self.record.deployed.get(cluster)
        if deployed is None:
            return "first Serve config"
        before = self.record.deployed_capacity.get(cluster)
        if before == capacity:
            return "serveConfigV2 changed"
        as_before = {k: v for k, v in config.items() if k != "target_capacity"}
        if before is not None:
            as_before["target_capacity"] = before
        steps = f"Serve target_capacity {_percent(before)} -> {_percent(capacity)}"
        if serve_config_hash(as_before) == deployed:
            return steps
        return f"serveConfigV2 changed and {steps}"

    def _target_refused(self) -> bool:
        """True when the Serve config of the target cluster failed for good (Ray refused it,
        or a permanent error): the generation is observed, with the failure in status."""
        target = self.record.target
        if target is None:
            return False
        failure = self.record.failures.get(failure_key(DeployServeConfig.__name__, target.name))
        return failure is not None and failure.kind is not FailureKind.TEMPORARY

    # -- traffic -----------------------------------------------------------------------------

    def _keep_front(self, active: ObservedCluster | None, pending: ObservedCluster | None) -> None:
        spec = front.front_spec(self.record, self.spec.excludeHeadPodFromServeSvc, active, pending)
        current = self.observed.front
        service = self.desired.service
        self.events += front.front_fault_events(current, service.serve_service_name)
        if not front.needs_ensure(current, spec):
            return
        if current is not None and current.spec == spec and current.degraded is not None:
            reason = f"starting a process of the front again: {current.degraded}"
        elif current is None or current.spec.listeners != spec.listeners:
            reason = front.listening_words(
                spec, service.serve_service_name, service.head_service_name
            )
        else:
            clusters = [
                c.name
                for c in (active, pending)
                if c is not None
                and any(b.name.startswith(f"{c.name}-") for b in spec.serve_backends)
            ]
            reason = (
                f"endpoints now follow {len(spec.serve_backends)} node(s) of"
                f" {' and '.join(clusters) or 'no cluster'}"
            )
            for cluster in (c for c in (active, pending) if c is not None and c.name in clusters):
                why = front.drain_reason(cluster, cluster.name in self.record.serve_restarting)
                if why is not None:
                    reason += f"; none of {cluster.name} takes requests: {why}"
        ensure = EnsureFront(self.desired.front_key, spec, reason, service.serve_service_name)
        if current is not None and front.lets_go(current.spec, spec):
            # a node that can no longer serve leaves the front before the provider spends
            # seconds stopping and restarting nodes
            self.actions.insert(0, ensure)
        else:
            self.actions.append(ensure)

    # -- status ------------------------------------------------------------------------------

    def _previous_status_of(self, cluster: str) -> ServiceStatus:
        for known in (self.previous.activeServiceStatus, self.previous.pendingServiceStatus):
            if known.rayClusterName == cluster:
                return known
        return ServiceStatus(rayClusterName=cluster)

    def _service_status(self, slot: ClusterSlot | None) -> ServiceStatus:
        if slot is None:
            return ServiceStatus()
        previous = self._previous_status_of(slot.name)
        cluster = self._cluster(slot)
        head = cluster.head if cluster is not None else None
        current = statuses.service_status(
            slot.name,
            self.observed.serve.get(slot.name),
            previous,
            rfc3339(self.now),
            head_down=cluster is not None and (head is None or head.phase is NodePhase.FAILED),
        )
        self.events += statuses.app_events(previous, current)
        if self.spec.upgradeStrategy.type is UpgradeType.INCREMENTAL:
            current = current.model_copy(
                update={
                    "targetCapacity": slot.capacity,
                    "trafficRoutedPercent": slot.traffic_percent,
                }
            )
        return current

    def _status(self, active: ObservedCluster | None) -> RayServiceStatus:
        record, decision = self.record, self.decision
        slot = record.active
        assert slot is not None
        active_status = self._service_status(slot)
        pending_status = self._service_status(record.pending)
        endpoints = (
            sorted(
                n.name
                for n in front.endpoints(
                    active,
                    self.spec.excludeHeadPodFromServeSvc,
                    active.name in record.serve_restarting,
                )
            )
            if active
            else []
        )
        self.events += statuses.endpoint_events(slot.name, record.endpoints, endpoints)
        self._measure_outage(record.endpoints, endpoints)
        record.endpoints = endpoints
        now, generation = rfc3339(self.now), self.desired.generation
        conditions = set_condition(
            self.previous.conditions,
            ConditionType.READY,
            *self._readiness(slot.name, active, len(endpoints)),
            now,
            generation,
        )
        for kind, fact in (
            (ConditionType.APPLICATIONS_HEALTHY, statuses.applications_health(active_status)),
            (ConditionType.UPGRADE_IN_PROGRESS, decision.upgrade),
            (ConditionType.ROLLBACK_IN_PROGRESS, decision.rollback),
        ):
            conditions = set_condition(conditions, kind, *fact, now, generation)
        conditions = with_failures(conditions, self.record.failures, now, generation)
        return RayServiceStatus(
            conditions=conditions,
            activeServiceStatus=active_status,
            pendingServiceStatus=pending_status,
            numServeEndpoints=len(endpoints),
            observedGeneration=self._observed_generation(),
            serviceStatus=statuses.service_state(active_status, len(endpoints)),
        )

    def _measure_outage(self, before: list[str], after: list[str]) -> None:
        """Time how long a service that served had no serve endpoint, and tell it once it
        has one again."""
        record = self.record
        if before and not after and record.outage_since is None:
            record.outage_since = self.now
        elif after and record.outage_since is not None:
            seconds = self.now - record.outage_since
            record.outage_since = None
            message = f"serving again after {seconds:.1f} s without a serve endpoint"
            self.events.append(PlannedEvent(EventType.NORMAL, EventReason.SERVING_AGAIN, message))

    def _observed_generation(self) -> int:
        """The generation is observed once its Serve config has reached the cluster meant to
        run it (or was refused); until then ``apply --wait`` must not read the old apps as the
        new ones."""
        if self.landed:
            return self.desired.generation
        return self.previous.observedGeneration

    def _readiness(self, cluster: str, active: ObservedCluster | None, endpoints: int) -> Fact:
        if endpoints:
            return Fact(
                ConditionStatus.TRUE,
                ConditionReason.NON_ZERO_SERVE_ENDPOINTS,
                f"{endpoints} serve endpoint(s) on {cluster}",
            )
        serve = self.observed.serve.get(cluster)
        message = statuses.progress_message(cluster, serve, bool(active and active.head_ready))
        refused = self.record.failures.get(failure_key(DeployServeConfig.__name__, cluster))
        if refused is not None and refused.kind is FailureKind.REJECTED:
            message = f"Ray rejected the Serve config: {refused.message}"
        previous = self.previous.condition(ConditionType.READY)
        ever_ready = previous is not None and (
            previous.status == ConditionStatus.TRUE
            or previous.reason == ConditionReason.ZERO_SERVE_ENDPOINTS
        )
        reason = (
            ConditionReason.ZERO_SERVE_ENDPOINTS if ever_ready else ConditionReason.INITIALIZING
        )
        return Fact(ConditionStatus.FALSE, reason, message)


def _percent(capacity: int | None) -> str:
    return "full" if capacity is None or capacity >= FULL_CAPACITY else f"{capacity}%"


def cluster_fault_events(cluster: ObservedCluster | None) -> list[PlannedEvent]:
    """A Warning about each node whose process is gone, and about the cluster's Redis when it
    is out of reach (repeats while a fault lasts count on one event)."""
    events = [
        PlannedEvent(
            EventType.WARNING, EventReason.NODE_LOST, meaning, ObjectRef(ObjectKind.POD, pod)
        )
        for pod, meaning in lost_nodes(cluster)
    ]
    if cluster is not None and cluster.storage_problem is not None:
        involved = ObjectRef(ObjectKind.RAY_CLUSTER, cluster.name)
        events.append(
            PlannedEvent(
                EventType.WARNING,
                EventReason.REDIS_UNREACHABLE,
                cluster.storage_problem,
                involved,
            )
        )
    return events


def with_failures(
    conditions: list[Condition], failures: Mapping[str, ActionFailure], now: str, generation: int
) -> list[Condition]:
    """``conditions`` with ReconcileFailed set while actions fail (the worst kind first), and
    turned false once none fails; left out while nothing ever failed."""
    ordered = sorted(failures.items(), key=lambda item: _WORST_FIRST.index(item[1].kind))
    if not ordered:
        if not any(c.type == ConditionType.RECONCILE_FAILED for c in conditions):
            return conditions
        fact = Fact(ConditionStatus.FALSE, ConditionReason.NO_FAILURE, "no action is failing")
        return set_condition(conditions, ConditionType.RECONCILE_FAILED, *fact, now, generation)
    parts = []
    for key, failure in ordered:
        retry = (
            f"; next attempt at {rfc3339(failure.retry_at)}"
            if failure.retry_at is not None
            else "; not retried until it changes"
        )
        parts.append(f"{key}: {failure.message} (attempt {failure.attempts}{retry})")
    worst = ordered[0][1].kind
    fact = Fact(ConditionStatus.TRUE, _FAILURE_REASONS[worst], "; ".join(parts))
    return set_condition(conditions, ConditionType.RECONCILE_FAILED, *fact, now, generation)
