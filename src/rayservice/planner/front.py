"""What ``<name>-serve-svc`` and ``<name>-head-svc`` should point at: a FrontSpec. Pure.

Outside an incremental upgrade the serve front holds the active cluster's nodes with plain
weights and HAProxy's health checks pick the ones that serve. During one it holds both
clusters' nodes, weighted so that each cluster as a whole gets its traffic share whatever
its node count. The head front is the active cluster's dashboard.

A node leaves the serve front (drained, so HAProxy answers 503 at once) when it cannot
serve: its process is gone, its head is gone without GCS fault tolerance, or its Serve was
started again from nothing after such a head restart and has no RUNNING app yet (the record's
``serve_restarting``; the proxies would hold each request for seconds meanwhile).

A standalone RayCluster has the same two fronts over its one cluster; its serve front exists
only when the cluster asks for one (``ray.io/enable-serve-service``), else its port is 0.
"""

from __future__ import annotations

from collections.abc import Collection
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
)
from rayservice.spec.vocabulary import FULL_CAPACITY, LOCALHOST, EventReason, EventType


def _front_nodes(cluster: ObservedCluster, exclude_head: bool) -> list[ObservedNode]:
    """The nodes the serve front holds: all, or all but the head with
    excludeHeadPodFromServeSvc."""
    return [n for n in cluster.nodes if not (exclude_head and n.role is NodeRole.HEAD)]


def drain_reason(cluster: ObservedCluster, serve_restarting: bool) -> str | None:
    """Why no node of ``cluster`` may serve now, if so. Without GCS fault tolerance a lost
    head takes the cluster down: the workers' proxies still pass health checks but hang every
    request. Its Serve, started again from nothing (``serve_restarting``), would keep requests
    waiting in the proxies until an app runs. In both cases the front answers 503 at once."""
    head = cluster.head
    if head is not None and head.phase is NodePhase.FAILED and not cluster.fault_tolerant:
        return "its head is gone and it has no GCS fault tolerance"
    if serve_restarting:
        return "its Serve applications start again from nothing, none RUNNING yet"
    return None


def _can_serve(cluster: ObservedCluster, node: ObservedNode, serve_restarting: bool) -> bool:
    """Never a node whose process is gone, nor one of a cluster that cannot serve as a whole."""
    return node.phase is not NodePhase.FAILED and drain_reason(cluster, serve_restarting) is None


def serving_nodes(
    cluster: ObservedCluster, exclude_head: bool, serve_restarting: bool
) -> list[ObservedNode]:
    """The nodes of the front that may serve now (see _can_serve)."""
    return [
        n for n in _front_nodes(cluster, exclude_head) if _can_serve(cluster, n, serve_restarting)
    ]


def endpoints(
    cluster: ObservedCluster, exclude_head: bool, serve_restarting: bool
) -> list[ObservedNode]:
    """The serving nodes whose Serve proxy is healthy: the serve endpoints."""
    healthy = {n.name for n in cluster.serve_endpoints}
    return [n for n in serving_nodes(cluster, exclude_head, serve_restarting) if n.name in healthy]


def needs_ensure(current: FrontState | None, wanted: FrontSpec) -> bool:
    """Whether the front must be acted on: missing, serving another spec, or short of one of
    its processes."""
    return current is None or current.spec != wanted or current.degraded is not None


def front_fault_events(current: FrontState | None, service: str) -> list[PlannedEvent]:
    """A Warning, about the Service ``service``, while a process of the front is down (repeats
    count on one event)."""
    if current is None or current.degraded is None:
        return []
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
    serve_restarting: Collection[str],
    exclude_head: bool,
    traffic_percent: int | None = None,
) -> list[Backend]:
    if cluster is None:
        return []
    nodes = _front_nodes(cluster, exclude_head)
    restarting = cluster.name in serve_restarting
    if traffic_percent is None:
        weight = DEFAULT_BACKEND_WEIGHT
    else:
        # shared among the nodes that serve now: the others fail HAProxy's check anyway
        weight = server_weight(traffic_percent, len(endpoints(cluster, exclude_head, restarting)))
    return [
        Backend(
            n.name,
            LOCALHOST,
            n.proxy_port,
            weight,
            drained=not _can_serve(cluster, n, restarting),
            cluster=cluster.name,
        )
        for n in nodes
    ]


def front_spec(
    record: ServiceRecord,
    exclude_head: bool,
    active: ObservedCluster | None,
    pending: ObservedCluster | None,
) -> FrontSpec:
    slot, pending_slot = record.active, record.pending
    if slot is None:
        return _listening(record)
    shares: tuple[tuple[str, int], ...]
    if pending_slot is not None and record.stepping:
        # traffic moves in steps (the pending cluster keeps its share even while the active
        # one is missing)
        restarting = record.serve_restarting
        backends = _backends(active, restarting, exclude_head, slot.traffic_percent)
        backends += _backends(pending, restarting, exclude_head, pending_slot.traffic_percent)
        shares = _serving_shares(
            ((slot.name, slot.traffic_percent, active),
             (pending_slot.name, pending_slot.traffic_percent, pending)),
            restarting,
        )  # fmt: skip
    else:
        backends = _backends(active, record.serve_restarting, exclude_head)
        shares = ((slot.name, FULL_CAPACITY),)
    return _listening(record, tuple(backends), _dashboard(active), shares)


def _serving_shares(
    slots: tuple[tuple[str, int, ObservedCluster | None], tuple[str, int, ObservedCluster | None]],
    restarting: Collection[str],
) -> tuple[tuple[str, int], ...]:
    """Each cluster's share of a stepping front, the active one first: a cluster that cannot
    serve as a whole (not there, its head gone without GCS fault tolerance, its Serve started
    again from nothing) gives its share to the other while that one can; HAProxy does the same
    by draining its servers."""

    def serves(cluster: ObservedCluster | None) -> bool:
        return cluster is not None and drain_reason(cluster, cluster.name in restarting) is None

    (first, first_share, first_cluster), (second, second_share, second_cluster) = slots
    if not serves(first_cluster) and serves(second_cluster):
        first_share, second_share = 0, first_share + second_share
    elif not serves(second_cluster) and serves(first_cluster):
        first_share, second_share = first_share + second_share, 0
    return ((first, first_share), (second, second_share))


def cluster_front(record: ServiceRecord, cluster: ObservedCluster | None) -> FrontSpec:
    """The fronts of a standalone RayCluster: its dashboard, and its nodes' Serve proxies when
    the record holds a serve port. Its Serve apps are the user's own (not followed here)."""
    serve = _backends(cluster, (), exclude_head=False) if record.serve_port else []
    shares = ((cluster.name, FULL_CAPACITY),) if cluster is not None else ()
    return _listening(record, tuple(serve), _dashboard(cluster), shares)


def listening_words(spec: FrontSpec, serve_service: str, head_service: str) -> str:
    """Where the Services of ``spec`` listen, in words: "<svc> on port 8000" on loopback,
    "<svc> on 0.0.0.0:8000" beyond it; the serve Service only when the spec has one."""

    def where(name: str, address: str, port: int) -> str:
        host = f"[{address}]" if ":" in address else address
        return f"{name} on port {port}" if address == LOCALHOST else f"{name} on {host}:{port}"

    head = where(head_service, spec.dashboard_address, spec.dashboard_port)
    if not spec.has_serve:
        return head
    return f"{where(serve_service, spec.serve_address, spec.serve_port)}, {head}"


def _listening(
    record: ServiceRecord,
    serve_backends: tuple[Backend, ...] = (),
    dashboard_backend: Backend | None = None,
    shares: tuple[tuple[str, int], ...] = (),
) -> FrontSpec:
    """The fronts on the ports and addresses the record holds, sending to these backends,
    each cluster taking its share."""
    return FrontSpec(
        serve_port=record.serve_port,
        dashboard_port=record.dashboard_port,
        serve_backends=serve_backends,
        dashboard_backend=dashboard_backend,
        serve_address=record.serve_address,
        dashboard_address=record.dashboard_address,
        shares=shares,
    )


def _dashboard(cluster: ObservedCluster | None) -> Backend | None:
    head = cluster.head if cluster is not None else None
    if cluster is None or head is None:
        return None
    port = urlsplit(cluster.dashboard_url).port or 0
    return Backend(head.name, LOCALHOST, port, cluster=cluster.name)
