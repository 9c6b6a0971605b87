"""Whether a pod (one Ray node) is ready, why not in words, and the events of its changes. Pure.

The readiness check plays Kubernetes' readiness probe. A pod of a RayService serves, so its
worker is ready only when its Serve proxy answers ``GET /-/healthz`` with 200 ``success``;
its head once its dashboard answers (Ray Serve's controller runs there). A pod of a
standalone RayCluster is ready once it joined the cluster. When a pod is not ready, the reason
is told from what was observed, in the order a user would look: the process, its place in the
cluster, Serve on the cluster, the proxy on the node (Serve runs a proxy only where a replica
runs, so a worker with no replica is never ready), and what the proxy answered.

The planner keeps, per pod, whether it was ready, since when and why not
(``ServiceRecord.pod_readiness``), and records an ``Unhealthy`` Warning when a pod is not ready
for a reason that lasts (not one of a node that starts) and held for a few seconds; the same
reason again later counts on the same event, as Kubernetes counts failed probes.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

from rayservice.planner.actions import PlannedEvent
from rayservice.planner.record import PodReadiness
from rayservice.spec.events import ObjectKind, ObjectRef
from rayservice.spec.observed import NodePhase, NodeRole, ObservedCluster, ObservedNode, ServeState
from rayservice.spec.text import headline
from rayservice.spec.vocabulary import EventReason, EventType

PROXY_CHECK = "GET /-/healthz on the node's Serve proxy, 200 success"
DASHBOARD_CHECK = "the head's dashboard answers with the cluster's token"
REGISTERED_CHECK = "the head lists the node's raylet as alive"
# replica states that keep a proxy on their node (Serve drains a node's proxy when none is left)
_ACTIVE_REPLICA_STATES = frozenset(
    {"STARTING", "UPDATING", "RECOVERING", "RUNNING", "PENDING_MIGRATION"}
)
STARTING_PREFIX = "starting: "  # a reason that passes by itself: no event
UNHEALTHY_AFTER_SECONDS = 10.0  # a lasting reason is an event once it held this long
_NO_WORKER_PROXY = frozenset({"HeadOnly", "Disabled"})  # Serve's proxy_location values


def is_ready(node: ObservedNode, cluster: ObservedCluster, serves: bool) -> bool:
    """The readiness of ``node``; ``serves``: it belongs to a RayService."""
    if node.phase is not NodePhase.RUNNING:
        return False
    if node.role is NodeRole.HEAD:
        return cluster.head_ready
    return node.proxy_ready if serves else True


def readiness_check(node: ObservedNode, serves: bool) -> str:
    """The check that decides whether ``node`` is ready, in words (see :func:`is_ready`)."""
    if node.role is NodeRole.HEAD:
        return DASHBOARD_CHECK
    return PROXY_CHECK if serves else REGISTERED_CHECK


def replicas_on(node: ObservedNode, serve: ServeState | None) -> list[tuple[str, str, str]]:
    """``(app, deployment, replica state)`` of every replica Ray placed on ``node``."""
    if serve is None or not node.node_id:
        return []
    return [
        (app.name, deployment.name, replica.state)
        for app in serve.apps
        for deployment in app.deployments
        for replica in deployment.replicas
        if replica.node_id == node.node_id
    ]


def not_ready_reason(
    node: ObservedNode,
    cluster: ObservedCluster,
    serve: ServeState | None,
    serves: bool,
    deployed: bool = False,
) -> str:
    """Why ``node`` is not ready, in words ('' when it is); ``deployed``: the cluster was
    given a Serve config. A reason that passes by itself while the node starts begins with
    ``starting: ``. The check's own answer is not part of it (it is shown beside it): the
    same cause keeps the same words."""
    if is_ready(node, cluster, serves):
        return ""
    if node.phase is NodePhase.FAILED:
        words = f"; its log ends: {headline(node.last_words)}" if node.last_words else ""
        return f"its process exited; it is started again{words}"
    if node.role is NodeRole.HEAD:
        return f"{STARTING_PREFIX}the head's dashboard does not answer yet"
    head = cluster.head
    if head is None or head.phase is NodePhase.FAILED:
        return "the head is down, so the node cannot be checked with it"
    if not cluster.head_ready:
        return f"{STARTING_PREFIX}the head does not answer yet"
    if not node.node_id:
        return f"{STARTING_PREFIX}node not registered with the head yet"
    if serve is None:
        if deployed:
            return "Ray Serve's status could not be read from the head"
        return f"{STARTING_PREFIX}no Serve config on the cluster yet"
    return _proxy_reason(node, serve)


def _proxy_reason(node: ObservedNode, serve: ServeState) -> str:
    if serve.proxy_location in _NO_WORKER_PROXY:
        return (
            f"Serve's proxy_location is {serve.proxy_location}: no proxy runs on a worker, so"
            " no worker is a serve endpoint"
        )
    proxy = dict(serve.proxies).get(node.node_id)
    active = [r for r in replicas_on(node, serve) if r[2] in _ACTIVE_REPLICA_STATES]
    if not active and proxy is None:
        return "no Serve replica on this node, so Ray Serve runs no proxy here"
    if not active and proxy == "HEALTHY":
        return "no Serve replica is left on this node, so Ray Serve stops its proxy"
    if proxy in ("DRAINING", "DRAINED"):
        return "its Serve proxy is draining: no Serve replica is left on this node"
    if proxy == "UNHEALTHY":
        return "its Serve proxy is unhealthy; Ray Serve starts it again"
    if proxy is None or proxy == "STARTING":
        return f"{STARTING_PREFIX}its Serve proxy is starting"
    if not any(state == "RUNNING" for _, _, state in active):
        return f"{STARTING_PREFIX}no Serve replica on this node runs yet"
    return "its Serve proxy does not pass the check"


def track(
    previous: Mapping[str, PodReadiness],
    clusters: Mapping[str, ObservedCluster],
    serve: Mapping[str, ServeState],
    serves: bool,
    now: float,
    deployed: Collection[str] = (),
) -> tuple[dict[str, PodReadiness], list[PlannedEvent], float | None]:
    """Every observed pod's readiness (kept since its last change; ``deployed``: the clusters
    given a Serve config); a Warning for each pod whose lasting reason held for
    ``UNHEALTHY_AFTER_SECONDS`` (a node Serve is still placing replicas on passes through "no
    replica here" for a moment); and when to look again for a reason not yet that old (None:
    no such pod). A pod that was ready once is not "starting" any more: what would pass by
    itself at its start lasts now."""
    current: dict[str, PodReadiness] = {}
    events = []
    wake_at: float | None = None
    for cluster in clusters.values():
        in_deployed = cluster.name in deployed
        for node in cluster.nodes:
            reason = not_ready_reason(node, cluster, serve.get(cluster.name), serves, in_deployed)
            ready = not reason
            before = previous.get(node.name)
            was_ready = before is not None and (before.ready or before.was_ready)
            if was_ready and reason.startswith(STARTING_PREFIX):
                reason = reason.removeprefix(STARTING_PREFIX)
            if before is None:  # first seen (or first since a controller restart)
                before = PodReadiness(ready=ready, since=node.started_at)
            since = before.since if before.ready == ready else now
            if before.reason == reason and before.ready == ready:
                state = before
            else:
                state = PodReadiness(
                    ready=ready, since=since, reason=reason, reason_since=now, was_ready=was_ready
                )
            lasting = (
                bool(reason)
                and not reason.startswith(STARTING_PREFIX)
                and node.phase is not NodePhase.FAILED  # NodeLost says it
            )
            if lasting and not state.reported:
                due = state.reason_since + UNHEALTHY_AFTER_SECONDS
                if now >= due:
                    state = state.model_copy(update={"reported": True})
                    events.append(
                        PlannedEvent(
                            EventType.WARNING,
                            EventReason.UNHEALTHY,
                            f"Readiness probe failed: {reason}",
                            ObjectRef(ObjectKind.POD, node.name),
                        )
                    )
                else:
                    wake_at = due if wake_at is None else min(wake_at, due)
            current[node.name] = state
    return current, events, wake_at
