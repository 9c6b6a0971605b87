"""The planner: (desired, observed, record, previous status, now) -> Plan. Pure.

It decides what the controller should do next for one RayService and why, and what its
status is. It performs no IO, reads no clock and keeps no state between calls: everything it
needs arrives as arguments, and everything it wants remembered goes out in ``Plan.record``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

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
from rayservice.planner.record import ClusterSlot, ServiceRecord
from rayservice.spec.cluster_request import ClusterRequest
from rayservice.spec.hashing import cluster_spec_hash, is_worker_group_append, serve_config_hash
from rayservice.spec.manifest import RayClusterSpec, RayService
from rayservice.spec.observed import (
    Backend,
    FrontSpec,
    FrontState,
    NodePhase,
    NodeRole,
    ObservedCluster,
    ServeState,
)
from rayservice.spec.status import RayServiceStatus, rfc3339, set_condition

LOCALHOST = "127.0.0.1"
BUSY_REQUEUE = 0.5  # something is starting or changing: look again soon
STEADY_REQUEUE = 2.0  # all is well: keep an eye on it
# Right after a Serve config goes out: Ray's UPDATING state of an in-place update lasts only
# a few hundred milliseconds, and status should show it.
DEPLOY_FOLLOW_UP = 0.05


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
        self.config_landed = False  # the desired Serve config is on the active cluster

    def run(self) -> Plan:
        slot = self._active_slot()
        active = self.observed.clusters.get(slot.name)
        request = cluster_request(
            slot.name,
            self.desired.key,
            RayClusterSpec.model_validate(slot.cluster_spec),
            slot.spec_hash,
        )
        self._keep_cluster(request, active)
        if active is not None and active.head_ready:
            self._keep_serve_config(active)
        self._keep_front(active)
        self._retire_strays(slot.name)
        status = self._status(slot.name, active)
        busy = (
            bool(self.actions)
            or not status.numServeEndpoints
            or any(
                a.status != statuses.HEALTHY_APP
                for a in status.activeServiceStatus.applicationStatuses.values()
            )
        )
        return Plan(
            actions=tuple(self.actions),
            record=self.record,
            status=status,
            events=tuple(self.events),
            requeue_after=self._requeue_after(busy),
            notes=tuple(self.notes),
        )

    def _requeue_after(self, busy: bool) -> float:
        if any(isinstance(a, DeployServeConfig) for a in self.actions):
            return DEPLOY_FOLLOW_UP
        return BUSY_REQUEUE if busy else STEADY_REQUEUE

    # -- cluster -----------------------------------------------------------------------------

    def _active_slot(self) -> ClusterSlot:
        wanted = self.spec.rayClusterConfig
        wanted_hash = cluster_spec_hash(wanted)
        wanted_doc = wanted.model_dump(mode="json")
        slot = self.record.active
        if slot is None:
            name = cluster_name(self.desired.service, self.desired.uid, self.desired.generation)
            slot = ClusterSlot(name=name, spec_hash=wanted_hash, cluster_spec=wanted_doc)
        elif slot.spec_hash == wanted_hash or is_worker_group_append(
            RayClusterSpec.model_validate(slot.cluster_spec), wanted
        ):
            slot = slot.model_copy(update={"spec_hash": wanted_hash, "cluster_spec": wanted_doc})
        else:
            self.notes.append(
                f"rayClusterConfig changed (hash {slot.spec_hash} -> {wanted_hash}); the change"
                " needs a new cluster"
            )
        self.record.active = slot
        return slot

    def _keep_cluster(self, request: ClusterRequest, active: ObservedCluster | None) -> None:
        reason = _cluster_drift(request, active)
        if reason is not None:
            event = "ClusterCreated" if active is None else "ClusterUpdated"
            self.actions.append(EnsureCluster(request, reason, event))

    def _retire_strays(self, active_name: str) -> None:
        for name in sorted(self.observed.clusters):
            if name != active_name:
                self.actions.append(
                    DeleteCluster(name, f"cluster {name} is no longer used by {self.desired.key}")
                )

    # -- serve -------------------------------------------------------------------------------

    def _keep_serve_config(self, cluster: ObservedCluster) -> None:
        head = cluster.head
        assert head is not None
        config = deployable_config(self.desired.serve_config, head.proxy_port)
        config_hash = serve_config_hash(config)
        rejected = self.record.rejected.get(cluster.name)
        if rejected is not None and rejected.config_hash == config_hash:
            self.notes.append(f"Ray rejected this Serve config: {rejected.message}")
            self.config_landed = True
            return
        deployed = self.record.deployed.get(cluster.name)
        serve = self.observed.serve.get(cluster.name)
        if deployed != config_hash:
            why = "first Serve config" if deployed is None else "serveConfigV2 changed"
            reason = f"{why}: submitting it to cluster {cluster.name}"
        elif serve is not None and not serve.apps and config.get("applications"):
            reason = (
                f"cluster {cluster.name} reports no Serve applications (its head restarted"
                " without GCS fault tolerance?): submitting the config again"
            )
        else:
            self.config_landed = True
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

    # -- traffic -----------------------------------------------------------------------------

    def _front_spec(self, active: ObservedCluster | None) -> FrontSpec:
        if active is None or active.head is None:
            return FrontSpec(self.record.serve_port, self.record.dashboard_port)
        serving = [
            n
            for n in active.nodes
            if not (self.spec.excludeHeadPodFromServeSvc and n.role is NodeRole.HEAD)
        ]
        return FrontSpec(
            serve_port=self.record.serve_port,
            dashboard_port=self.record.dashboard_port,
            serve_backends=tuple(Backend(n.name, LOCALHOST, n.proxy_port) for n in serving),
            dashboard_backend=Backend(
                active.head.name, LOCALHOST, urlsplit(active.dashboard_url).port or 0
            ),
        )

    def _keep_front(self, active: ObservedCluster | None) -> None:
        spec = self._front_spec(active)
        current = self.observed.front
        if current is not None and current.spec == spec:
            return
        if current is None:
            reason = (
                f"{self.desired.service.metadata.name}-serve-svc on port {spec.serve_port}, "
                f"{self.desired.service.metadata.name}-head-svc on port {spec.dashboard_port}"
            )
        else:
            reason = f"endpoints now follow the {len(spec.serve_backends)} nodes of the cluster"
        self.actions.append(EnsureFront(self.desired.front_key, spec, reason))

    # -- status ------------------------------------------------------------------------------

    def _status(self, cluster: str, active: ObservedCluster | None) -> RayServiceStatus:
        now = rfc3339(self.now)
        serve = self.observed.serve.get(cluster)
        active_status = statuses.service_status(
            cluster, serve, self.previous.activeServiceStatus, now
        )
        self.events += statuses.app_events(self.previous.activeServiceStatus, active_status)
        endpoints = sorted(
            n.name
            for n in (active.serve_endpoints if active else ())
            if not (self.spec.excludeHeadPodFromServeSvc and n.role is NodeRole.HEAD)
        )
        self.events += statuses.endpoint_events(cluster, self.record.endpoints, endpoints)
        self.record.endpoints = endpoints
        conditions = set_condition(
            self.previous.conditions,
            "Ready",
            *self._readiness(cluster, active, serve, len(endpoints)),
            now,
            self.desired.generation,
        )
        return RayServiceStatus(
            conditions=conditions,
            activeServiceStatus=active_status,
            pendingServiceStatus=self.previous.pendingServiceStatus,
            numServeEndpoints=len(endpoints),
            observedGeneration=self._observed_generation(),
            serviceStatus="Running" if endpoints else "",
        )

    def _observed_generation(self) -> int:
        """The generation is observed once its Serve config has reached the cluster (or was
        refused); until then ``apply --wait`` must not read the old apps as the new ones."""
        if self.config_landed:
            return self.desired.generation
        return self.previous.observedGeneration

    def _readiness(
        self,
        cluster: str,
        active: ObservedCluster | None,
        serve: ServeState | None,
        endpoints: int,
    ) -> tuple[Any, str, str]:
        if endpoints:
            return "True", "NonZeroServeEndpoints", f"{endpoints} serve endpoint(s) on {cluster}"
        message = statuses.progress_message(cluster, serve, bool(active and active.head_ready))
        rejected = self.record.rejected.get(cluster)
        if rejected is not None:
            message = f"Ray rejected the Serve config: {rejected.message}"
        was_ready = any(c.type == "Ready" and c.status == "True" for c in self.previous.conditions)
        ever_ready = was_ready or any(
            c.type == "Ready" and c.reason == "ZeroServeEndpoints" for c in self.previous.conditions
        )
        return "False", "ZeroServeEndpoints" if ever_ready else "Initializing", message


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
