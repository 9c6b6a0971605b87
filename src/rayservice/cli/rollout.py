"""``rayservice rollout status|history`` as text: where an upgrade stands, in a few lines."""

from __future__ import annotations

import time
from typing import Any

from rayservice.cli.tables import age, render
from rayservice.spec.status import RayServiceStatus, ServiceStatus, rfc3339
from rayservice.spec.vocabulary import AnnotationKey, ConditionReason, ConditionType, UpgradeType

# conditions whose message only says that nothing is happening
QUIET_REASONS = (ConditionReason.NO_ROLLBACK, ConditionReason.NO_PENDING_CLUSTER)


def _cluster_line(label: str, service: ServiceStatus) -> str:
    parts = [f"{label:<8} {service.rayClusterName or '<none>'}"]
    if service.trafficRoutedPercent is not None:
        parts.append(f"traffic {service.trafficRoutedPercent}%")
    if service.targetCapacity is not None:
        parts.append(f"capacity {service.targetCapacity}%")
    apps = service.applicationStatuses
    if apps:
        parts.append(", ".join(f"{n} {a.status}" for n, a in sorted(apps.items())))
    return "  " + "   ".join(parts)


def status_text(obj: dict[str, Any]) -> str:
    """What ``rollout status NAME`` prints for the RayService object ``obj``."""
    name = obj["metadata"]["name"]
    status = RayServiceStatus.model_validate(obj.get("status") or {})
    strategy = (obj.get("spec", {}).get("upgradeStrategy") or {}).get(
        "type", UpgradeType.NEW_CLUSTER
    )
    annotations = obj["metadata"].get("annotations", {})
    paused = annotations.get(AnnotationKey.ROLLOUT_PAUSED) == "true"
    if status.is_true(ConditionType.ROLLBACK_IN_PROGRESS):
        state = "rolling back"
    elif status.is_true(ConditionType.UPGRADE_IN_PROGRESS):
        state = "upgrade in progress"
    else:
        state = "no rollout in progress"
    lines = [f"{name}: {state} (upgradeStrategy {strategy}){', paused' if paused else ''}"]
    lines.append(_cluster_line("active", status.activeServiceStatus))
    if status.pendingServiceStatus.rayClusterName:
        lines.append(_cluster_line("pending", status.pendingServiceStatus))
    for kind in (ConditionType.ROLLBACK_IN_PROGRESS, ConditionType.UPGRADE_IN_PROGRESS):
        condition = status.condition(kind)
        if condition is not None and condition.message and condition.reason not in QUIET_REASONS:
            lines.append(f"  {condition.type}: {condition.message}")
    return "\n".join(lines)


def history_text(items: list[dict[str, Any]]) -> str:
    now = time.time()
    rows = [[str(i["generation"]), age(rfc3339(i["appliedAt"]), now), i["source"]] for i in items]
    return render(["GENERATION", "APPLIED", "SOURCE"], rows)
