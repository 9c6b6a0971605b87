"""The planner of a standalone RayCluster: (desired, observed, record, status, now) -> Plan. Pure.

A RayCluster made on its own (``kind: RayCluster``, or a cluster of the API server) is one
cluster named like the object, with ``<name>-head-svc`` in front of its dashboard and, when the
annotation ``ray.io/enable-serve-service: "true"`` asks for it, ``<name>-serve-svc`` in front of
its nodes' Serve proxies. What runs on it is the user's business (Serve applications, jobs):
the controller keeps its nodes running, its counts right and its fronts pointed at it.

A spec change that does not fit the running nodes follows ``spec.upgradeStrategy.type`` as
KubeRay's: ``Recreate`` replaces the cluster; ``None`` (the default) leaves the running nodes
as they are, so nodes started later (new workers, restarts) take the new spec, and says so.
``spec.suspend`` stops every node and keeps the object.
"""

from __future__ import annotations

from dataclasses import dataclass

from rayservice.planner import pod_readiness
from rayservice.planner.actions import (
    Action,
    DeleteCluster,
    EnsureCluster,
    EnsureFront,
    Plan,
    PlannedEvent,
)
from rayservice.planner.cluster import cluster_drift, cluster_request
from rayservice.planner.cluster_status import (
    WorkerBounds,
    cluster_conditions,
    front_endpoints,
    observed_status,
)
from rayservice.planner.front import (
    cluster_front,
    front_fault_events,
    listening_words,
    needs_ensure,
)
from rayservice.planner.plan import (
    BUSY_REQUEUE,
    STEADY_REQUEUE,
    cluster_fault_events,
    deletion_plan,
    front_key,
    with_failures,
)
from rayservice.planner.record import ServiceRecord
from rayservice.planner.retries import gate
from rayservice.spec.addresses import reachable_from_here
from rayservice.spec.autoscaling import ScaleRequest
from rayservice.spec.events import ObjectKind, ObjectRef
from rayservice.spec.hashing import cluster_spec_hash
from rayservice.spec.manifest import RayCluster
from rayservice.spec.observed import Observed, ObservedCluster
from rayservice.spec.references import Resolution
from rayservice.spec.status import RayClusterStatus, rfc3339, set_condition
from rayservice.spec.vocabulary import (
    ClusterState,
    ClusterUpgradeType,
    ConditionReason,
    ConditionStatus,
    ConditionType,
    EventReason,
    EventType,
)


@dataclass(frozen=True)
class DesiredCluster:
    cluster: RayCluster
    generation: int
    deleting: bool
    resolution: Resolution  # the spec with the Secret and ConfigMap values it names
    scale: ScaleRequest | None = None  # what the cluster's Ray autoscaler last asked for

    @property
    def key(self) -> str:
        return self.cluster.key

    @property
    def name(self) -> str:
        return self.cluster.metadata.name

    @property
    def front_service(self) -> str:
        """The Service the front's events are about: the serve one when it has one."""
        cluster = self.cluster
        return (
            cluster.serve_service_name
            if cluster.serve_service_enabled
            else (cluster.head_service_name)
        )


def plan_cluster(
    desired: DesiredCluster,
    observed: Observed,
    record: ServiceRecord,
    previous: RayClusterStatus,
    now: float,
) -> Plan[RayClusterStatus]:
    if desired.deleting:
        return deletion_plan(desired.key, desired.front_service, observed, record, previous)
    spec, missing = desired.resolution.spec, desired.resolution.missing
    current = observed.clusters.get(desired.name)
    events: list[PlannedEvent] = []
    involved = ObjectRef(ObjectKind.RAY_CLUSTER, desired.name)
    if list(missing) != record.missing_references:
        record.missing_references = list(missing)
        if missing:
            message = f"no node starts until the spec can be resolved: {'; '.join(missing)}"
            events.append(
                PlannedEvent(EventType.WARNING, EventReason.REFERENCE_NOT_FOUND, message, involved)
            )
    request = cluster_request(
        desired.name,
        desired.key,
        spec,
        cluster_spec_hash(spec),
        annotations=desired.cluster.metadata.annotations,
        standalone_labels=desired.cluster.metadata.labels,
        scale=desired.scale,
    )
    actions: list[Action] = []
    if spec.suspend:
        if current is not None:
            actions.append(DeleteCluster(desired.name, "spec.suspend is true: every node stops"))
        current = None
    elif missing:
        pass  # as on Kubernetes, where no pod starts: running nodes go on, none is started
    elif current is not None and current.spec_hash != request.spec_hash:
        if desired.cluster.upgrade_type is ClusterUpgradeType.RECREATE:
            actions.append(
                DeleteCluster(
                    desired.name,
                    "the cluster spec changed and spec.upgradeStrategy.type is Recreate:"
                    " the cluster starts anew",
                    EventReason.CLUSTER_RECREATING,
                )
            )
            current = None
        else:
            why = "the new spec is kept for nodes started from now"
            actions.append(EnsureCluster(request, why))
            events.append(
                PlannedEvent(
                    EventType.NORMAL,
                    EventReason.CLUSTER_SPEC_CHANGED,
                    "the cluster spec changed: running nodes keep the spec they started with,"
                    " new and restarted nodes take the new one (set spec.upgradeStrategy.type"
                    " to Recreate to replace them all)",
                    involved,
                )
            )
    else:
        reason = cluster_drift(request, current)
        if reason is not None:
            event = EventReason.CLUSTER_CREATED if current is None else EventReason.CLUSTER_UPDATED
            actions.append(EnsureCluster(request, reason, event))
    events += cluster_fault_events(current)
    record.pod_readiness, unready, look_again = pod_readiness.track(
        record.pod_readiness, observed.clusters, observed.serve, False, now
    )
    events += unready
    wanted_front = cluster_front(record, current)
    events += front_fault_events(observed.front, desired.front_service)
    if needs_ensure(observed.front, wanted_front):
        cluster = desired.cluster
        reason = listening_words(
            wanted_front, cluster.serve_service_name, cluster.head_service_name
        )
        actions.append(
            EnsureFront(front_key(desired.key), wanted_front, reason, desired.front_service)
        )
    gated = gate(actions, record.failures, now)
    record.failures = gated.failures
    status = _status(desired, current, record, previous, now)
    busy = bool(gated.actions) or status.state != ClusterState.READY
    requeue = BUSY_REQUEUE if busy and not spec.suspend else STEADY_REQUEUE
    wake_at = min((t for t in (gated.retry_at, look_again) if t is not None), default=None)
    if wake_at is not None:
        requeue = min(requeue, max(BUSY_REQUEUE, wake_at - now))
    return Plan(
        actions=gated.actions,
        record=record,
        status=status,
        events=tuple(events),
        requeue_after=requeue,
        wake_at=wake_at,
        notes=tuple(gated.held),
    )


def _status(
    desired: DesiredCluster,
    cluster: ObservedCluster | None,
    record: ServiceRecord,
    previous: RayClusterStatus,
    now: float,
) -> RayClusterStatus:
    bounds = WorkerBounds.of(desired.cluster.spec, desired.scale)
    if cluster is None:
        status = RayClusterStatus(
            state=ClusterState.SUSPENDED
            if desired.cluster.spec.suspend
            else ClusterState.PROVISIONING,
            desiredWorkerReplicas=bounds.desired,
            minWorkerReplicas=bounds.minimum,
        )
    else:
        status = observed_status(cluster, bounds)
    stamp = rfc3339(now)
    conditions = cluster_conditions(
        previous.conditions,
        status,
        cluster is not None and cluster.head_ready,
        stamp,
        desired.generation,
    )
    missing = desired.resolution.missing
    if missing and cluster is None:
        why = f"no node starts until the spec can be resolved: {'; '.join(missing)}"
        conditions = set_condition(
            conditions,
            ConditionType.HEAD_POD_READY,
            ConditionStatus.FALSE,
            ConditionReason.REFERENCE_NOT_FOUND,
            why,
            stamp,
            desired.generation,
        )
    conditions = with_failures(conditions, record.failures, stamp, desired.generation)
    status = status.model_copy(
        update={
            "conditions": conditions,
            "endpoints": front_endpoints(cluster, record),
            "head": status.head.model_copy(
                update={
                    "serviceName": desired.cluster.head_service_name,
                    "serviceIP": reachable_from_here(record.dashboard_address),
                }
            ),
            "observedGeneration": desired.generation,
        }
    )
    # lastUpdateTime moves only when something else did, so a steady status is not rewritten
    if status.model_copy(update={"lastUpdateTime": previous.lastUpdateTime}) == previous:
        return previous
    return status.model_copy(update={"lastUpdateTime": stamp})
