"""``apply --wait``: follow a RayService until it serves the applied generation, or say why not.

Progress is printed whenever the story changes (cluster starting, head ready, apps deploying,
endpoints ready), each line with the seconds elapsed, so a long start never looks frozen.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

FAILED_APP_STATES = ("DEPLOY_FAILED", "UNHEALTHY")
POLL_SECONDS = 0.5


@dataclass(frozen=True)
class Outcome:
    ok: bool
    message: str


def _condition(status: dict[str, Any], kind: str) -> dict[str, Any]:
    return next((c for c in status.get("conditions", []) if c.get("type") == kind), {})


def summarize(obj: dict[str, Any], generation: int) -> tuple[str, Outcome | None]:
    """One progress line for the object, and the outcome once there is one.

    The Ready condition tells the controller is working on the generation; only once the
    generation is observed (its Serve config reached the cluster) do the application states
    belong to it, so only then is there an outcome."""
    status = obj.get("status") or {}
    ready = _condition(status, "Ready")
    landed = status.get("observedGeneration", 0) >= generation
    if not landed and ready.get("observedGeneration", 0) < generation:
        return "waiting for the controller to pick up the change", None
    upgrade = _condition(status, "UpgradeInProgress")
    if upgrade.get("status") == "True":
        return f"upgrade: {upgrade.get('message', '')}", None
    rollback = _condition(status, "RollbackInProgress")
    if rollback.get("status") == "True":
        return f"rollback: {rollback.get('message', '')}", None
    line = ready.get("message", "starting")
    if not landed:
        return line, None
    if upgrade.get("reason") == "PendingClusterTimedOut":
        return upgrade["message"], Outcome(False, f"upgrade failed: {upgrade['message']}")
    apps = status.get("activeServiceStatus", {}).get("applicationStatuses", {})
    failed = {n: a for n, a in apps.items() if a.get("status") in FAILED_APP_STATES}
    if failed:
        reasons = "; ".join(f"{n} {a['status']}: {a.get('message', '')}" for n, a in failed.items())
        return reasons, Outcome(False, f"application failed: {reasons}")
    if line.startswith("Ray rejected"):
        return line, Outcome(False, line)
    app_line = ", ".join(f"{n} {a.get('status')}" for n, a in sorted(apps.items()))
    if app_line:
        line += f" [{app_line}]"
    if (
        ready.get("status") == "True"
        and apps
        and all(a.get("status") == "RUNNING" for a in apps.values())
    ):
        endpoints = status.get("numServeEndpoints", 0)
        held = (
            f"\nnote: {upgrade['message']}"
            if upgrade.get("reason") == "UpgradeStrategyNone"
            else ""
        )
        return line, Outcome(True, f"Ready: {endpoints} serve endpoint(s); {app_line}{held}")
    return line, None


def wait_for(
    fetch: Callable[[], dict[str, Any]],
    generation: int,
    timeout: float,
    say: Callable[[str], None],
) -> Outcome:
    started = time.monotonic()
    last = ""
    while True:
        line, outcome = summarize(fetch(), generation)
        elapsed = time.monotonic() - started
        if line != last:
            say(f"[{elapsed:5.1f}s] {line}")
            last = line
        if outcome is not None:
            return outcome
        if elapsed > timeout:
            return Outcome(False, f"timed out after {timeout:.0f}s: {line}")
        time.sleep(POLL_SECONDS)
