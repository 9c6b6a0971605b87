"""Whether a cluster can take traffic, and the Serve config each cluster is to run. Pure.

A cluster serves once its head answers, it accepted the Serve config meant for it, ALL of
that config's applications are RUNNING and at least one of its Serve proxies is healthy (as
KubeRay decides before switching). The rollout decides with it which way traffic may move;
status says with it why an upgrade waits.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rayservice.planner import front
from rayservice.planner import service_status as statuses
from rayservice.planner.record import ClusterSlot
from rayservice.spec.hashing import serve_config_hash
from rayservice.spec.observed import ObservedCluster, ServeState
from rayservice.spec.vocabulary import FULL_CAPACITY, LOCALHOST, ApplicationStatus


def deployable_config(
    config: Mapping[str, Any], proxy_port: int, proxy_host: str = LOCALHOST
) -> dict[str, Any]:
    """The user's Serve config with what the backend must own: where the proxies listen
    (``proxy_host``: loopback on this machine) and the head's port (here one per node)."""
    result = dict(config)
    http_options = dict(result.get("http_options") or {})
    http_options.update(host=proxy_host, port=proxy_port)
    result["http_options"] = http_options
    result.setdefault("proxy_location", "EveryNode")
    return result


def slot_config(
    slot: ClusterSlot, cluster: ObservedCluster, wanted_config: Mapping[str, Any]
) -> dict[str, Any]:
    """The Serve config ``slot`` is to run, as PUT to ``cluster`` (whose head answers)."""
    head = cluster.head
    assert head is not None
    base = wanted_config if slot.serve_config is None else slot.serve_config
    config = deployable_config(base, head.proxy_port, cluster.proxy_host)
    if slot.capacity < FULL_CAPACITY:
        config["target_capacity"] = slot.capacity  # 100 is Serve's default: left out
    return config


def serve_ready(
    slot: ClusterSlot,
    cluster: ObservedCluster | None,
    deployed: Mapping[str, str],
    serve: Mapping[str, ServeState],
    wanted_config: Mapping[str, Any],
    exclude_head: bool,
) -> str | None:
    """Why ``cluster`` cannot take traffic yet, or None when all its apps are RUNNING on the
    config it is meant to run and it has a healthy serve endpoint."""
    if cluster is None or not cluster.head_ready:
        return f"waiting for the head of cluster {slot.name} to answer"
    config = slot_config(slot, cluster, wanted_config)
    if deployed.get(cluster.name) != serve_config_hash(config):
        return f"waiting for cluster {cluster.name} to accept the Serve config"
    state = serve.get(cluster.name)
    wanted = {str(app.get("name", "default")) for app in config.get("applications") or []}
    running = (
        {a.name for a in state.apps if a.status == ApplicationStatus.RUNNING} if state else set()
    )
    if not wanted <= running:
        return statuses.progress_message(cluster.name, state, cluster.head_ready)
    if not front.endpoints(cluster, exclude_head, serve_restarting=False):  # its apps run
        return f"waiting for a healthy Serve proxy on cluster {cluster.name}"
    return None
