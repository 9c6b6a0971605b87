"""Small, fast HTTP probes the local provider uses to tell what a node is doing.

They play the part of Kubernetes readiness probes: the head is ready when its dashboard
answers with our token; a worker is running when the head lists its raylet as ALIVE; a node is
a serve endpoint when its Serve proxy answers ``GET /-/healthz`` with 200 ``success``.
Every probe has a short timeout and answers False/None instead of raising.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from pathlib import Path

import httpx

PROBE_TIMEOUT = httpx.Timeout(1.0, connect=0.5)
_ANSWER_LENGTH = 200  # of a proxy's answer, kept for describe


@dataclass(frozen=True)
class ProxyAnswer:
    """A readiness check of a Serve proxy: passed or not, and its answer in a few words
    (``200 success``, ``503 This node is being drained.``, ``connection refused: ...``)."""

    healthy: bool
    answer: str


class NodeProbes:
    """The HTTP probes, over one pooled client: a client is costly to build (TLS set-up) and
    the control loop probes every node twice a second."""

    def __init__(self, transport: httpx.BaseTransport | None = None) -> None:
        self._http = httpx.Client(timeout=PROBE_TIMEOUT, transport=transport)

    def alive_nodes(self, dashboard_url: str, token: str) -> dict[int, str] | None:
        """The raylets the head reports ALIVE: node-manager port -> Ray node id (the port tells
        the nodes of one host apart); None if the head's dashboard does not answer (so the
        head is not ready)."""
        try:
            response = self._http.get(
                f"{dashboard_url}/nodes?view=summary",
                headers={"x-ray-authorization": f"Bearer {token}"},
            )
            response.raise_for_status()
            summary = response.json()["data"]["summary"]
            alive = [
                node["raylet"] for node in summary if node.get("raylet", {}).get("state") == "ALIVE"
            ]
            # a node restarted on the same port may still be listed beside its predecessor
            # for a moment: the one started last is the node there now
            alive.sort(key=lambda raylet: int(raylet.get("startTimeMs") or 0))
            return {int(r["nodeManagerPort"]): str(r.get("nodeId", "")) for r in alive}
        except (httpx.HTTPError, ValueError, KeyError, TypeError):
            return None

    def proxy_answer(self, host: str, port: int) -> ProxyAnswer:
        """What the node's Serve proxy answers ``GET /-/healthz``."""
        try:
            response = self._http.get(f"http://{host}:{port}/-/healthz")
        except httpx.ConnectError:
            return ProxyAnswer(False, "connection refused: no Serve proxy listens")
        except httpx.HTTPError as error:
            return ProxyAnswer(False, f"no answer: {type(error).__name__}")
        text = " ".join(response.text.split())[:_ANSWER_LENGTH]
        healthy = response.status_code == 200 and text == "success"
        return ProxyAnswer(healthy, f"{response.status_code} {text}".rstrip())


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
