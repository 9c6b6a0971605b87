"""Small, fast HTTP probes the local provider uses to tell what a node is doing.

They play the part of Kubernetes readiness probes: the head is ready when its dashboard
answers with our token; a worker is running when the head lists its raylet as ALIVE; a node is
a serve endpoint when its Serve proxy answers ``GET /-/healthz`` with 200 ``success``.
Every probe has a short timeout and answers False/None instead of raising.
"""

from __future__ import annotations

from collections import deque
from pathlib import Path

import httpx

PROBE_TIMEOUT = httpx.Timeout(1.0, connect=0.5)


class NodeProbes:
    """The HTTP probes, over one pooled client: a client is costly to build (TLS set-up) and
    the control loop probes every node twice a second."""

    def __init__(self, transport: httpx.BaseTransport | None = None) -> None:
        self._http = httpx.Client(timeout=PROBE_TIMEOUT, transport=transport)

    def alive_node_manager_ports(self, dashboard_url: str, token: str) -> set[int] | None:
        """Node-manager ports of the raylets the head reports ALIVE; None if the head's
        dashboard does not answer (so the head is not ready)."""
        try:
            response = self._http.get(
                f"{dashboard_url}/nodes?view=summary",
                headers={"x-ray-authorization": f"Bearer {token}"},
            )
            response.raise_for_status()
            summary = response.json()["data"]["summary"]
        except (httpx.HTTPError, ValueError, KeyError, TypeError):
            return None
        return {
            int(node["raylet"]["nodeManagerPort"])
            for node in summary
            if node.get("raylet", {}).get("state") == "ALIVE"
        }

    def proxy_healthy(self, host: str, port: int) -> bool:
        try:
            response = self._http.get(f"http://{host}:{port}/-/healthz")
        except httpx.HTTPError:
            return False
        return response.status_code == 200 and response.text.strip() == "success"


def tail_node_logs(log_file: Path, temp_dir: Path, lines: int) -> str:
    """The tail of the node's ``ray start`` output, then of its raylet log."""
    parts = []
    sources = [log_file, *sorted(temp_dir.glob("session_latest/logs/raylet.out"))]
    for source in sources:
        try:
            with source.open(errors="replace") as f:
                tail = "".join(deque(f, maxlen=lines))
        except OSError:
            continue
        parts.append(f"==> {source.name} <==\n{tail}")
    return "\n".join(parts)
