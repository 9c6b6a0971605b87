"""The planner: (desired, observed, record, previous status, now) -> Plan. Pure.

It decides what the controller should do next for one RayService and why, and what its
status is. It performs no IO, reads no clock and keeps no state between calls: everything it
needs arrives as arguments, and everything it wants remembered goes out in ``Plan.record``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from rayservice.planner import front
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
)
from rayservice.planner.cluster import HEAD_GROUP, cluster_name, cluster_request
from rayservice.planner.front import LOCALHOST
from rayservice.planner.record import ClusterSlot, GivenUp, Retiring, ServiceRecord
from rayservice.planner.upgrade import (
    INCREMENTAL,
    PAUSE_ANNOTATION,
    PROMOTE_ANNOTATION,
    choose_slots,
    restore_active,
    step_traffic,
)
from rayservice.spec.cluster_request import ClusterRequest
from rayservice.spec.hashing import cluster_spec_hash, serve_config_hash
from rayservice.spec.manifest import RayClusterSpec, RayService
from rayservice.spec.observed import (
    FrontState,
    NodePhase,
    ObservedCluster,
    ObservedNode,
    ServeState,
)
from rayservice.spec.status import RayServiceStatus, ServiceStatus, rfc3339, set_condition

BUSY_REQUEUE = 0.5  # something is starting or changing: look again soon
STEADY_REQUEUE = 2.0  # all is well: keep an eye on it
# Right after a Serve config goes out: Ray's UPDATING state of an in-place update lasts only
# a few hundred milliseconds, and status should show it.
DEPLOY_FOLLOW_UP = 0.05
FULL_CAPACITY = 100


@dataclass(frozen=True)
class Desired:
    service: RayService
    uid: str
    generation: int
    deleting: bool
    serve_config: dict[str, Any]  # serveConfigV2 parsed, local working dirs packaged

    @property
    def key(self) -> str:
        return self.service.key

    @property
    def front_key(self) -> str:
        return front_key(self.key)


def front_key(service_key: str) -> str:
    """The traffic front's key for a service: ``<namespace>.<name>`` (usable as a folder)."""
    return service_key.replace("/", ".", 1)


@dataclass(frozen=True)
class Observed:
    clusters: Mapping[str, ObservedCluster]  # every cluster the provider holds for the service
    serve: Mapping[str, ServeState]  # clusters whose Serve status could be read
    front: FrontState | None


def deployable_config(config: Mapping[str, Any], proxy_port: int) -> dict[str, Any]:
    """The user's Serve config with what the local backend must own: the proxies listen on
    loopback, the head's on its own port, one per node."""
    result = dict(config)
    http_options = dict(result.get("http_options") or {})
    http_options.update(host=LOCALHOST, port=proxy_port)
    result["http_options"] = http_options
    result.setdefault("proxy_location", "EveryNode")
    return result


def plan(
    desired: Desired,
    observed: Observed,
    record: ServiceRecord,
    previous: RayServiceStatus,
    now: float,
) -> Plan:
    if desired.deleting:
        return _plan_deletion(desired, observed, record, previous)
    return _Planner(desired, observed, record.model_copy(deep=True), previous, now).run()


def _plan_deletion(
    desired: Desired, observed: Observed, record: ServiceRecord, previous: RayServiceStatus
) -> Plan:
    actions: list[Action] = []
    if observed.front is not None:
        actions.append(DeleteFront(desired.front_key, f"{desired.key} is being deleted"))
    actions += [
        DeleteCluster(name, f"{desired.key} is being deleted") for name in sorted(observed.clusters)
    ]
    actions.append(ForgetService(f"{desired.key} and everything it started are gone"))
    return Plan(tuple(actions), record, previous, requeue_after=BUSY_REQUEUE)


class _Planner:
    """One planning pass; a class only to share its inputs between small steps."""

    def __init__(
        self,
        desired: Desired,
        observed: Observed,
        record: ServiceRecord,
        previous: RayServiceStatus,
        now: float,
    ) -> None:
        self.desired = desired
        self.spec = desired.service.spec
        self.observed = observed
        self.record = record
        self.previous = previous
        self.now = now
        self.actions: list[Action] = []
        self.events: list[PlannedEvent] = []
        self.notes: list[str] = []
        self.config_landed = False  # the desired Serve config is on the cluster meant for it
        self.upgrade_held: tuple[str, str] | None = None  # (reason, message) of a held change
        self.wake_at: float | None = None  # a stored timer falls due then

    @property
    def desired_serve_config(self) -> dict[str, Any]:
        return self.desired.serve_config

    @property
    def annotations(self) -> dict[str, str]:
        return self.desired.service.metadata.annotations

    def run(self) -> Plan:
        choose_slots(self)
        self._keep_clusters()
        if self.record.pending is not None:
            self._advance_upgrade(self.record.pending)
        active = self.cluster_of(self.record.active)
        pending = self.cluster_of(self.record.pending)
        self._keep_front(active, pending)
        self._retire()
        status = self._status(active, pending)
        # Clusters go last: the front must stop sending to a cluster before it is deleted.
        deletions = [a for a in self.actions if isinstance(a, DeleteCluster)]
        others = [a for a in self.actions if not isinstance(a, DeleteCluster)]
        return Plan(
            actions=(*others, *deletions),
            record=self.record,
            status=status,
            events=tuple(self.events),
            requeue_after=self._requeue_after(status),
            notes=tuple(self.notes),
        )

    def cluster_of(self, slot: ClusterSlot | None) -> ObservedCluster | None:
        return None if slot is None else self.observed.clusters.get(slot.name)

    def _requeue_after(self, status: RayServiceStatus) -> float:
        if any(isinstance(a, DeployServeConfig) for a in self.actions):
            return DEPLOY_FOLLOW_UP
        busy = (
            bool(self.actions)
            or self.record.pending is not None
            or bool(self.record.rolled_back)
            or not status.numServeEndpoints
            or any(
                a.status != statuses.HEALTHY_APP
                for a in status.activeServiceStatus.applicationStatuses.values()
            )
        )
        wait = BUSY_REQUEUE if busy else STEADY_REQUEUE
        if self.wake_at is not None:
            wait = min(wait, max(DEPLOY_FOLLOW_UP, self.wake_at - self.now))
        return wait

    # -- clusters ----------------------------------------------------------------------------

    def new_slot(self, traffic: int, capacity: int | None) -> ClusterSlot:
        wanted = self.spec.rayClusterConfig
        return ClusterSlot(
            name=cluster_name(self.desired.service, self.desired.uid, self.desired.generation),
            spec_hash=cluster_spec_hash(wanted),
            cluster_spec=wanted.model_dump(mode="json"),
            serve_config=self.desired.serve_config,
            created_at=self.now,
            target_capacity=capacity,
            traffic_percent=traffic,
        )

    def _keep_clusters(self) -> None:
        for slot in (self.record.active, self.record.pending):
            if slot is None:
                continue
            cluster = self.cluster_of(slot)
            request = cluster_request(
                slot.name,
                self.desired.key,
                RayClusterSpec.model_validate(slot.cluster_spec),
                slot.spec_hash,
            )
            reason = _cluster_drift(request, cluster)
            if reason is not None:
                event = "ClusterCreated" if cluster is None else "ClusterUpdated"
                self.actions.append(EnsureCluster(request, reason, event))
            if cluster is not None and cluster.head_ready:
                self._keep_serve_config(slot, cluster)

    def drop_cluster(self, name: str, reason: str, rollback: bool = False) -> None:
        self.actions.append(DeleteCluster(name, reason))
        if rollback and name not in self.record.rolled_back:
            self.record.rolled_back.append(name)

    def _retire(self) -> None:
        """Delete retired clusters whose delay is over, and clusters nothing refers to."""
        observed = self.observed.clusters
        keep = []
        for retiring in self.record.retiring:
            if self.now >= retiring.delete_at:
                if retiring.name in observed:
                    self.actions.append(DeleteCluster(retiring.name, retiring.reason))
                continue
            keep.append(retiring)
            self.wake_at = min(self.wake_at or retiring.delete_at, retiring.delete_at)
        self.record.retiring = keep
        self.record.rolled_back = [n for n in self.record.rolled_back if n in observed]
        planned = {a.name for a in self.actions if isinstance(a, DeleteCluster)}
        known = (
            {r.name for r in keep}
            | planned
            | {slot.name for slot in (self.record.active, self.record.pending) if slot is not None}
        )
        for name in sorted(set(observed) - known):
            self.actions.append(
                DeleteCluster(name, f"cluster {name} is no longer used by {self.desired.key}")
            )

    # -- serve -------------------------------------------------------------------------------

    def deployable(self, slot: ClusterSlot, cluster: ObservedCluster) -> dict[str, Any]:
        """The Serve config ``slot`` is to run, as PUT to ``cluster``."""
        head = cluster.head
        assert head is not None
        base = self.desired.serve_config if slot.serve_config is None else slot.serve_config
        config = deployable_config(base, head.proxy_port)
        if slot.target_capacity is not None and slot.target_capacity < FULL_CAPACITY:
            config["target_capacity"] = slot.target_capacity  # 100 is Serve's default: left out
        return config

    def is_target(self, slot: ClusterSlot) -> bool:
        """The slot that is to run the desired Serve config: the pending one during an
        upgrade, else (also while a rollback steps traffic back) the active one."""
        pending = self.record.pending
        if pending is not None and not pending.rolling_back:
            return slot is pending
        return slot is self.record.active

    def _keep_serve_config(self, slot: ClusterSlot, cluster: ObservedCluster) -> None:
        config = self.deployable(slot, cluster)
        config_hash = serve_config_hash(config)
        rejected = self.record.rejected.get(cluster.name)
        if rejected is not None and rejected.config_hash == config_hash:
            self.notes.append(f"Ray rejected this Serve config: {rejected.message}")
            self.config_landed = self.config_landed or self.is_target(slot)
            return
        deployed = self.record.deployed.get(cluster.name)
        serve = self.observed.serve.get(cluster.name)
        if deployed != config_hash:
            why = self._why_deploy(config, slot.target_capacity, cluster.name)
            reason = f"{why}: submitting it to cluster {cluster.name}"
        elif serve is not None and not serve.apps and config.get("applications"):
            reason = (
                f"cluster {cluster.name} reports no Serve applications (its head restarted"
                " without GCS fault tolerance?): submitting the config again"
            )
        else:
            self.config_landed = self.config_landed or self.is_target(slot)
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

    def serve_ready(self, slot: ClusterSlot, cluster: ObservedCluster | None) -> str | None:
        """Why ``cluster`` cannot take traffic yet, or None when all its apps are RUNNING on
        the config it is meant to run and it has a healthy serve endpoint."""
        if cluster is None or not cluster.head_ready:
            return f"waiting for the head of cluster {slot.name} to answer"
        config = self.deployable(slot, cluster)
        if self.record.deployed.get(cluster.name) != serve_config_hash(config):
            return f"waiting for cluster {cluster.name} to accept the Serve config"
        serve = self.observed.serve.get(cluster.name)
        wanted = {str(app.get("name", "default")) for app in config.get("applications") or []}
        running = (
            {a.name for a in serve.apps if a.status == statuses.HEALTHY_APP} if serve else set()
        )
        if not wanted <= running:
            return statuses.progress_message(cluster.name, serve, cluster.head_ready)
        if not self.endpoints_of(cluster):
            return f"waiting for a healthy Serve proxy on cluster {cluster.name}"
        return None

    # -- upgrades ----------------------------------------------------------------------------

    def _advance_upgrade(self, pending: ClusterSlot) -> None:
        cluster = self.cluster_of(pending)
        if self.spec.upgradeStrategy.type == INCREMENTAL:
            step_traffic(self, pending, cluster)
            return
        waiting = self.serve_ready(pending, cluster)
        promoted = self.annotations.get(PROMOTE_ANNOTATION) == pending.name
        if waiting is None and self.annotations.get(PAUSE_ANNOTATION) == "true" and not promoted:
            self.notes.append(f"rollout paused: {pending.name} is ready but takes no traffic")
        elif waiting is None:
            self.switch_to_pending(pending)
        else:
            self.time_out_if_due(pending, waiting)

    def switch_to_pending(self, pending: ClusterSlot) -> None:
        old = self.record.active
        assert old is not None
        delay = self.spec.rayClusterDeletionDelaySeconds
        reason = f"cluster {old.name} was replaced by {pending.name}"
        self.record.retiring.append(
            Retiring(name=old.name, delete_at=self.now + delay, reason=reason)
        )
        incremental = self.spec.upgradeStrategy.type == INCREMENTAL
        capacity = pending.target_capacity if incremental else None  # full, without a cap
        self.record.active = pending.model_copy(
            update={"traffic_percent": 100, "target_capacity": capacity}
        )
        self.record.pending = None
        self.events.append(
            PlannedEvent(
                "Normal",
                "UpgradeCompleted",
                f"traffic switched from cluster {old.name} to {pending.name}; {old.name} is"
                f" deleted in {delay}s (rayClusterDeletionDelaySeconds)",
            )
        )

    def time_out_if_due(self, pending: ClusterSlot, waiting: str) -> None:
        timeout = self.spec.pendingClusterTimeoutSeconds
        if self.now - pending.created_at < timeout:
            self.wake_at = min(self.wake_at or self.now + timeout, pending.created_at + timeout)
            return
        reason = (
            f"pending cluster {pending.name} was not ready after {timeout}s"
            f" (pendingClusterTimeoutSeconds): {waiting}; the active cluster keeps serving"
        )
        self.record.given_up = GivenUp(
            spec_hash=pending.spec_hash,
            config_hash=serve_config_hash(self.desired.serve_config),
            reason=reason,
        )
        self.record.pending = None
        restore_active(self.record)
        self.drop_cluster(pending.name, reason)
        self.events.append(PlannedEvent("Warning", "UpgradeTimedOut", reason))
        self.upgrade_held = ("PendingClusterTimedOut", reason)

    # -- traffic -----------------------------------------------------------------------------

    def endpoints_of(self, cluster: ObservedCluster) -> list[ObservedNode]:
        return front.endpoints(cluster, self.spec.excludeHeadPodFromServeSvc)

    def _keep_front(self, active: ObservedCluster | None, pending: ObservedCluster | None) -> None:
        spec = front.front_spec(self.record, self.spec.excludeHeadPodFromServeSvc, active, pending)
        current = self.observed.front
        if current is not None and current.spec == spec:
            return
        if current is None:
            reason = (
                f"{self.desired.service.metadata.name}-serve-svc on port {spec.serve_port}, "
                f"{self.desired.service.metadata.name}-head-svc on port {spec.dashboard_port}"
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
        self.actions.append(EnsureFront(self.desired.front_key, spec, reason))

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
        now = rfc3339(self.now)
        current = statuses.service_status(
            slot.name, self.observed.serve.get(slot.name), previous, now
        )
        self.events += statuses.app_events(previous, current)
        if self.spec.upgradeStrategy.type == INCREMENTAL:
            capacity = 100 if slot.target_capacity is None else slot.target_capacity
            current = current.model_copy(
                update={"targetCapacity": capacity, "trafficRoutedPercent": slot.traffic_percent}
            )
        return current

    def _status(
        self, active: ObservedCluster | None, pending: ObservedCluster | None
    ) -> RayServiceStatus:
        slot = self.record.active
        assert slot is not None
        active_status = self._service_status(slot)
        pending_status = self._service_status(self.record.pending)
        endpoints = sorted(n.name for n in self.endpoints_of(active)) if active else []
        self.events += statuses.endpoint_events(slot.name, self.record.endpoints, endpoints)
        self.record.endpoints = endpoints
        now, generation = rfc3339(self.now), self.desired.generation
        conditions = set_condition(
            self.previous.conditions,
            "Ready",
            *self._readiness(slot.name, active, len(endpoints)),
            now,
            generation,
        )
        conditions = set_condition(
            conditions, "UpgradeInProgress", *self._upgrade_condition(pending), now, generation
        )
        conditions = set_condition(
            conditions, "RollbackInProgress", *self._rollback_condition(), now, generation
        )
        return RayServiceStatus(
            conditions=conditions,
            activeServiceStatus=active_status,
            pendingServiceStatus=pending_status,
            numServeEndpoints=len(endpoints),
            observedGeneration=self._observed_generation(),
            serviceStatus="Running" if endpoints else "",
        )

    def _upgrade_condition(self, pending: ObservedCluster | None) -> tuple[Any, str, str]:
        slot = self.record.pending
        if slot is not None and not slot.rolling_back:
            waiting = self.serve_ready(slot, pending) or "ready"
            if slot.target_capacity is not None:
                waiting = (
                    f"{slot.traffic_percent}% of traffic and {slot.target_capacity}% capacity"
                    f" on {slot.name}; {waiting}"
                )
            return (
                "True",
                "BothActivePendingClustersExist",
                (f"moving to pending cluster {slot.name}: {waiting}"),
            )
        if self.upgrade_held is not None:
            return "False", *self.upgrade_held
        return "False", "NoPendingCluster", "the active cluster matches rayClusterConfig"

    def _rollback_condition(self) -> tuple[Any, str, str]:
        slot = self.record.pending
        if slot is not None and slot.rolling_back:
            return (
                "True",
                "StepTrafficBack",
                (
                    f"rayClusterConfig is back to the active cluster's spec: traffic steps back"
                    f" from {slot.name} ({slot.traffic_percent}% left)"
                ),
            )
        if self.record.rolled_back:
            names = ", ".join(self.record.rolled_back)
            return (
                "True",
                "DeletingPendingCluster",
                (f"rayClusterConfig is back to the active cluster's spec: deleting {names}"),
            )
        return "False", "NoRollback", "no rollback in progress"

    def _observed_generation(self) -> int:
        """The generation is observed once its Serve config has reached the cluster meant to
        run it (or was refused); until then ``apply --wait`` must not read the old apps as the
        new ones."""
        if self.config_landed:
            return self.desired.generation
        return self.previous.observedGeneration

    def _readiness(
        self, cluster: str, active: ObservedCluster | None, endpoints: int
    ) -> tuple[Any, str, str]:
        if endpoints:
            return "True", "NonZeroServeEndpoints", f"{endpoints} serve endpoint(s) on {cluster}"
        serve = self.observed.serve.get(cluster)
        message = statuses.progress_message(cluster, serve, bool(active and active.head_ready))
        rejected = self.record.rejected.get(cluster)
        if rejected is not None:
            message = f"Ray rejected the Serve config: {rejected.message}"
        was_ready = any(c.type == "Ready" and c.status == "True" for c in self.previous.conditions)
        ever_ready = was_ready or any(
            c.type == "Ready" and c.reason == "ZeroServeEndpoints" for c in self.previous.conditions
        )
        return "False", "ZeroServeEndpoints" if ever_ready else "Initializing", message


def _percent(capacity: int | None) -> str:
    return "full" if capacity is None or capacity >= FULL_CAPACITY else f"{capacity}%"


def _cluster_drift(request: ClusterRequest, active: ObservedCluster | None) -> str | None:
    """Why the provider must act on the cluster, or None when it matches the request."""
    if active is None:
        workers = sum(g.replicas for g in request.workers)
        return f"creating cluster {request.name}: a head and {workers} worker(s)"
    failed = [n for n in active.nodes if n.phase is NodePhase.FAILED]
    if failed:
        node = failed[0]
        return f"node {node.name} exited; restarting it (restarts so far: {node.restarts})"
    if active.head is None:
        return f"cluster {request.name} has no head; starting one"
    counts: dict[str, int] = {}
    for node in active.workers:
        counts[node.group] = counts.get(node.group, 0) + 1
    wanted = {g.group: g.replicas for g in request.workers}
    for group in sorted(set(wanted) | set(counts)):
        have, want = counts.get(group, 0), wanted.get(group, 0)
        if have != want and group != HEAD_GROUP:
            return f"worker group {group} has {have} of {want} worker(s); scaling to {want}"
    return None
