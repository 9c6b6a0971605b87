"""``apply --wait``: follow a RayService until it serves the applied generation (a RayCluster
until its nodes run), or say why not.

Progress is printed whenever the story changes (cluster starting, head ready, apps deploying,
endpoints ready), each line with the seconds elapsed, so a long start never looks frozen.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rayservice.spec.status import RayClusterStatus, RayServiceStatus
from rayservice.spec.vocabulary import (
    FAILED_APP_STATES,
    ApplicationStatus,
    ClusterState,
    ConditionReason,
    ConditionStatus,
    ConditionType,
)

POLL_SECONDS = 0.5
# ReconcileFailed reasons that no retry will mend: the apply failed
FINAL_FAILURES = frozenset({ConditionReason.SERVE_CONFIG_REJECTED, ConditionReason.PERMANENT_ERROR})
# UpgradeInProgress reasons of a cluster change that is not applied: said with a Ready outcome
HELD_CHANGES = frozenset(
    {ConditionReason.UPGRADE_STRATEGY_NONE, ConditionReason.REFERENCE_NOT_FOUND}
)


@dataclass(frozen=True)
class Outcome:
    ok: bool
    message: str


def summarize(obj: dict[str, Any], generation: int) -> tuple[str, Outcome | None]:
    """One progress line for the object, and the outcome once there is one.

    The Ready condition tells the controller is working on the generation; only once the
    generation is observed (its Serve config reached the cluster) do the application states
    belong to it, so only then is there an outcome."""
    status = RayServiceStatus.model_validate(obj.get("status") or {})
    ready = status.condition(ConditionType.READY)
    landed = status.observedGeneration >= generation
    if not landed and (ready is None or ready.observedGeneration < generation):
        return "waiting for the controller to pick up the change", None
    upgrade = status.condition(ConditionType.UPGRADE_IN_PROGRESS)
    if upgrade is not None and status.is_true(ConditionType.UPGRADE_IN_PROGRESS):
        return f"upgrade: {upgrade.message}", None
    rollback = status.condition(ConditionType.ROLLBACK_IN_PROGRESS)
    if rollback is not None and status.is_true(ConditionType.ROLLBACK_IN_PROGRESS):
        return f"rollback: {rollback.message}", None
    line = ready.message if ready is not None and ready.message else "starting"
    if ready is not None and ready.reason == ConditionReason.INITIALIZING_TIMEOUT:
        return line, Outcome(False, f"initializing timed out: {ready.message}")
    if ready is not None and ready.reason == ConditionReason.REFERENCE_NOT_FOUND:
        return line, Outcome(False, f"{ready.message} (it starts once that is applied)")
    if not landed:
        return line, None
    if upgrade is not None and upgrade.reason == ConditionReason.PENDING_CLUSTER_TIMED_OUT:
        return upgrade.message, Outcome(False, f"upgrade failed: {upgrade.message}")
    apps = status.activeServiceStatus.applicationStatuses
    failed = {n: a for n, a in apps.items() if a.status in FAILED_APP_STATES}
    if failed:
        reasons = "; ".join(f"{n} {a.status}: {a.message}" for n, a in failed.items())
        return reasons, Outcome(False, f"application failed: {reasons}")
    failing = status.condition(ConditionType.RECONCILE_FAILED)
    if failing is not None and status.is_true(ConditionType.RECONCILE_FAILED):
        if failing.reason in FINAL_FAILURES:
            return line, Outcome(False, failing.message)
        line += f" (retrying: {failing.message})"
    app_line = ", ".join(f"{n} {a.status}" for n, a in sorted(apps.items()))
    if app_line:
        line += f" [{app_line}]"
    if (
        status.is_true(ConditionType.READY)
        and apps
        and all(a.status == ApplicationStatus.RUNNING for a in apps.values())
    ):
        held = (
            f"\nnote: {upgrade.message}"
            if upgrade is not None and upgrade.reason in HELD_CHANGES
            else ""
        )
        return line, Outcome(
            True, f"Ready: {status.numServeEndpoints} serve endpoint(s); {app_line}{held}"
        )
    return line, None


def summarize_cluster(obj: dict[str, Any], generation: int) -> tuple[str, Outcome | None]:
    """One progress line for a standalone RayCluster, and the outcome once it is ready."""
    status = RayClusterStatus.model_validate(obj.get("status") or {})
    if status.observedGeneration < generation:
        return "waiting for the controller to pick up the change", None
    head = status.condition(ConditionType.HEAD_POD_READY)
    head_ready = head is not None and head.status == ConditionStatus.TRUE
    if head is not None and head.reason == ConditionReason.REFERENCE_NOT_FOUND:
        return head.message, Outcome(False, f"{head.message} (it starts once that is applied)")
    line = (
        f"head {'ready' if head_ready else 'starting'},"
        f" {status.availableWorkerReplicas}/{status.desiredWorkerReplicas} worker(s)"
    )
    failing = status.condition(ConditionType.RECONCILE_FAILED)
    if failing is not None and failing.status == ConditionStatus.TRUE:
        if failing.reason in FINAL_FAILURES:
            return line, Outcome(False, failing.message)
        line += f" (retrying: {failing.message})"
    if status.state == ClusterState.READY:
        ports = ", ".join(f"{name} {port}" for name, port in status.endpoints.items())
        return line, Outcome(True, f"Ready: {line}; ports on 127.0.0.1: {ports}")
    return line, None


Summary = Callable[[dict[str, Any], int], tuple[str, Outcome | None]]


def wait_for(
    fetch: Callable[[], dict[str, Any]],
    generation: int,
    timeout: float,
    say: Callable[[str], None],
    summary: Summary = summarize,
) -> Outcome:
    started = time.monotonic()
    last = ""
    while True:
        line, outcome = summary(fetch(), generation)
        elapsed = time.monotonic() - started
        if line != last:
            say(f"[{elapsed:5.1f}s] {line}")
            last = line
        if outcome is not None:
            return outcome
        if elapsed > timeout:
            return Outcome(False, f"timed out after {timeout:.0f}s: {line}")
        time.sleep(POLL_SECONDS)
