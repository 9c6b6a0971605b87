"""What ``<name>-serve-svc`` and ``<name>-head-svc`` should point at: a FrontSpec. Pure.

Outside an incremental upgrade the serve front holds the active cluster's nodes with plain
weights and HAProxy's health checks pick the ones that serve. During one it holds both
clusters' nodes, weighted so that each cluster as a whole gets its traffic share whatever
its node count. The head front is the active cluster's dashboard.

A node leaves the serve front (drained, so HAProxy answers 503 at once) when it cannot
serve: its process is gone, its head is gone without GCS fault tolerance, or (in a cluster
without it) Serve has applications of which none can answer yet, as while a fresh Serve brings
them up after such a head restart (the proxies would hold each request for seconds meanwhile).

A standalone RayCluster has the same two fronts over its one cluster; its serve front exists
only when the cluster asks for one (``ray.io/enable-serve-service``), else its port is 0.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlsplit

from rayservice.planner.actions import PlannedEvent
from rayservice.planner.record import ServiceRecord
from rayservice.spec.events import ObjectKind, ObjectRef
from rayservice.spec.observed import (
    DEFAULT_BACKEND_WEIGHT,
    Backend,
    FrontSpec,
    FrontState,
    NodePhase,
    NodeRole,
    ObservedCluster,
    ObservedNode,
    ServeState,
)
from rayservice.spec.vocabulary import (
    LOCALHOST,
    ApplicationStatus,
    EventReason,
    EventType,
    ReplicaState,
)


def _front_nodes(cluster: ObservedCluster, exclude_head: bool) -> list[ObservedNode]:
    """The nodes the serve front holds: all, or all but the head with
    excludeHeadPodFromServeSvc."""
    return [n for n in cluster.nodes if not (exclude_head and n.role is NodeRole.HEAD)]


_ANSWERING_REPLICA_STATES = frozenset({ReplicaState.RUNNING, ReplicaState.RECOVERING})
"""A recovering replica is one a restarted Serve controller finds again: it kept answering."""


def _apps_starting(serve: ServeState | None) -> bool:
    """Whether Serve has applications of which none can answer yet: none RUNNING, none with a
    running replica in every deployment (an in-place update keeps those; a scaled-to-zero
    deployment is RUNNING). No answer from Serve is no evidence."""
    if serve is None or not serve.apps:
        return False
    return not any(
        app.status == ApplicationStatus.RUNNING
        or (
            app.deployments
            and all(_ANSWERING_REPLICA_STATES & set(d.replica_states) for d in app.deployments)
        )
        for app in serve.apps
    )


def drain_reason(cluster: ObservedCluster, serve: ServeState | None) -> str | None:
    """Why no node of ``cluster`` may serve now, if so. Without GCS fault tolerance a lost
    head takes the cluster down: the workers' proxies still pass health checks but hang every
    request. Apps that are all still starting would keep requests waiting in the proxies. In
    both cases the front answers 503 at once instead."""
    head = cluster.head
    if head is not None and head.phase is NodePhase.FAILED and not cluster.fault_tolerant:
        return "its head is gone and it has no GCS fault tolerance"
    if not cluster.fault_tolerant and _apps_starting(serve):
        # (with fault tolerance the replicas outlive a head restart, whatever Serve says
        # while its controller recovers)
        return "its Serve applications are all still starting"
    return None


def _can_serve(cluster: ObservedCluster, node: ObservedNode, serve: ServeState | None) -> bool:
    """Never a node whose process is gone, nor one of a cluster that cannot serve as a whole."""
    return node.phase is not NodePhase.FAILED and drain_reason(cluster, serve) is None


def serving_nodes(
    cluster: ObservedCluster, exclude_head: bool, serve: ServeState | None
) -> list[ObservedNode]:
    """The nodes of the front that may serve now (see _can_serve); ``serve`` is what Serve on
    ``cluster`` reported, if it answered."""
    return [n for n in _front_nodes(cluster, exclude_head) if _can_serve(cluster, n, serve)]


def endpoints(
    cluster: ObservedCluster, exclude_head: bool, serve: ServeState | None
) -> list[ObservedNode]:
    """The serving nodes whose Serve proxy is healthy: the serve endpoints."""
    healthy = {n.name for n in cluster.serve_endpoints}
    return [n for n in serving_nodes(cluster, exclude_head, serve) if n.name in healthy]


def needs_ensure(current: FrontState | None, wanted: FrontSpec) -> bool:
    """Whether the front must be acted on: missing, serving another spec, or short of one of
    its processes."""
    return current is None or current.spec != wanted or current.degraded is not None


def front_fault_events(
    current: FrontState | None, wanted: FrontSpec, name: str
) -> list[PlannedEvent]:
    """A Warning while a process of the front is down (repeats count on one event)."""
    if current is None or current.degraded is None:
        return []
    service = f"{name}-serve-svc" if wanted.has_serve else f"{name}-head-svc"
    return [
        PlannedEvent(
            EventType.WARNING,
            EventReason.FRONT_PROCESS_LOST,
            current.degraded,
            ObjectRef(ObjectKind.SERVICE, service),
        )
    ]


def lets_go(current: FrontSpec, wanted: FrontSpec) -> bool:
    """Whether ``wanted`` drops or drains a serve backend ``current`` sends requests to (the
    front lets go of it)."""
    kept = {b.name for b in wanted.serve_backends if not b.drained}
    return any(b.name not in kept for b in current.serve_backends if not b.drained)


def server_weight(traffic_percent: int, servers: int) -> int:
    """HAProxy weight (0-256) of each of ``servers`` that share ``traffic_percent``."""
    if traffic_percent <= 0 or servers <= 0:
        return 0
    return max(1, round(traffic_percent * 2 / servers))


def _backends(
    cluster: ObservedCluster | None,
    serve: Mapping[str, ServeState],
    exclude_head: bool,
    traffic_percent: int | None = None,
) -> list[Backend]:
    if cluster is None:
        return []
    nodes = _front_nodes(cluster, exclude_head)
    state = serve.get(cluster.name)
    if traffic_percent is None:
        weight = DEFAULT_BACKEND_WEIGHT
    else:
        # shared among the nodes that serve now: the others fail HAProxy's check anyway
        weight = server_weight(traffic_percent, len(endpoints(cluster, exclude_head, state)))
    return [
        Backend(n.name, LOCALHOST, n.proxy_port, weight, drained=not _can_serve(cluster, n, state))
        for n in nodes
    ]


def front_spec(
    record: ServiceRecord,
    exclude_head: bool,
    active: ObservedCluster | None,
    pending: ObservedCluster | None,
    serve: Mapping[str, ServeState],
) -> FrontSpec:
    slot, pending_slot = record.active, record.pending
    if slot is None:
        return FrontSpec(record.serve_port, record.dashboard_port)
    if pending_slot is not None and record.stepping:
        # traffic moves in steps (the pending cluster keeps its share even while the active
        # one is missing)
        backends = _backends(active, serve, exclude_head, slot.traffic_percent)
        backends += _backends(pending, serve, exclude_head, pending_slot.traffic_percent)
    else:
        backends = _backends(active, serve, exclude_head)
    return FrontSpec(
        serve_port=record.serve_port,
        dashboard_port=record.dashboard_port,
        serve_backends=tuple(backends),
        dashboard_backend=_dashboard(active),
    )


def cluster_front(record: ServiceRecord, cluster: ObservedCluster | None) -> FrontSpec:
    """The fronts of a standalone RayCluster: its dashboard, and its nodes' Serve proxies when
    the record holds a serve port. Its Serve apps are the user's own (not asked here)."""
    serve = _backends(cluster, {}, exclude_head=False) if record.serve_port else []
    return FrontSpec(
        serve_port=record.serve_port,
        dashboard_port=record.dashboard_port,
        serve_backends=tuple(serve),
        dashboard_backend=_dashboard(cluster),
    )


def _dashboard(cluster: ObservedCluster | None) -> Backend | None:
    head = cluster.head if cluster is not None else None
    if cluster is None or head is None:
        return None
    return Backend(head.name, LOCALHOST, urlsplit(cluster.dashboard_url).port or 0)
