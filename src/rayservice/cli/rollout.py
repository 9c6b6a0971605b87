"""``rayservice rollout status|history`` as text: where an upgrade stands, in a few lines."""

from __future__ import annotations

import time
from typing import Any

from rayservice.cli.tables import age, render

QUIET_REASONS = (None, "NoRollback", "NoPendingCluster")  # nothing to tell beyond the state


def _condition(status: dict[str, Any], kind: str) -> dict[str, Any]:
    return next((c for c in status.get("conditions", []) if c.get("type") == kind), {})


def _cluster_line(label: str, service: dict[str, Any]) -> str:
    parts = [f"{label:<8} {service.get('rayClusterName') or '<none>'}"]
    if service.get("trafficRoutedPercent") is not None:
        parts.append(f"traffic {service['trafficRoutedPercent']}%")
    if service.get("targetCapacity") is not None:
        parts.append(f"capacity {service['targetCapacity']}%")
    apps = service.get("applicationStatuses") or {}
    if apps:
        parts.append(", ".join(f"{n} {a.get('status')}" for n, a in sorted(apps.items())))
    return "  " + "   ".join(parts)


def status_text(obj: dict[str, Any]) -> str:
    """What ``rollout status NAME`` prints for the RayService object ``obj``."""
    name = obj["metadata"]["name"]
    status = obj.get("status") or {}
    strategy = (obj.get("spec", {}).get("upgradeStrategy") or {}).get("type", "NewCluster")
    paused = obj["metadata"].get("annotations", {}).get("rayservice.io/rollout-paused") == "true"
    upgrade, rollback = (
        _condition(status, "UpgradeInProgress"),
        _condition(status, "RollbackInProgress"),
    )
    if rollback.get("status") == "True":
        state = "rolling back"
    elif upgrade.get("status") == "True":
        state = "upgrade in progress"
    else:
        state = "no rollout in progress"
    lines = [f"{name}: {state} (upgradeStrategy {strategy}){', paused' if paused else ''}"]
    lines.append(_cluster_line("active", status.get("activeServiceStatus") or {}))
    pending = status.get("pendingServiceStatus") or {}
    if pending.get("rayClusterName"):
        lines.append(_cluster_line("pending", pending))
    for condition in (rollback, upgrade):
        if condition.get("message") and condition.get("reason") not in QUIET_REASONS:
            lines.append(f"  {condition['type']}: {condition['message']}")
    return "\n".join(lines)


def history_text(items: list[dict[str, Any]]) -> str:
    now = time.time()
    rows = [[str(i["generation"]), age(_rfc3339(i["appliedAt"]), now), i["source"]] for i in items]
    return render(["GENERATION", "APPLIED", "SOURCE"], rows)


def _rfc3339(timestamp: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(timestamp))
