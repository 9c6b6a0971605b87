"""KubeRay-shaped status from what was observed, and the events its changes deserve.

Times move only when something changes (an application's status, a condition's truth), so a
steady service writes no status and emits no events.
"""

from __future__ import annotations

from rayservice.planner.actions import PlannedEvent
from rayservice.spec.events import ObjectKind, ObjectRef
from rayservice.spec.observed import ServeState
from rayservice.spec.status import AppStatus, Fact, ServeDeploymentStatus, ServiceStatus
from rayservice.spec.text import headline
from rayservice.spec.vocabulary import (
    FAILED_APP_STATES,
    UNHEALTHY_DEPLOYMENT_STATES,
    ApplicationStatus,
    ConditionReason,
    ConditionStatus,
    EventReason,
    EventType,
    ServiceState,
    state_event_reason,
)


def service_status(
    cluster: str,
    serve: ServeState | None,
    previous: ServiceStatus,
    now: str,
    head_down: bool = False,
) -> ServiceStatus:
    """The Serve side of one cluster. While Serve does not answer the last known apps stay;
    while the head is down (``head_down``) they say UNKNOWN, and why, instead."""
    if serve is None:
        if previous.rayClusterName != cluster:
            return ServiceStatus(rayClusterName=cluster)
        if not head_down:
            return previous
        unknown = {
            name: app.model_copy(
                update={
                    "status": ApplicationStatus.UNKNOWN,
                    "message": _unknown_message(app),
                    "healthLastUpdateTime": app.healthLastUpdateTime
                    if app.status == ApplicationStatus.UNKNOWN
                    else now,
                }
            )
            for name, app in previous.applicationStatuses.items()
        }
        return previous.model_copy(update={"applicationStatuses": unknown})
    known = previous.applicationStatuses if previous.rayClusterName == cluster else {}
    apps = {}
    for app in serve.apps:
        before = known.get(app.name)
        deployments = {}
        for dep in app.deployments:
            old = before.serveDeploymentStatuses.get(dep.name) if before else None
            changed = old is None or old.status != dep.status
            deployments[dep.name] = ServeDeploymentStatus(
                status=dep.status,
                message=dep.message,
                healthLastUpdateTime=now if changed or old is None else old.healthLastUpdateTime,
                lastUpdateTime=now if changed or old is None else old.lastUpdateTime,
            )
        unchanged = before is not None and before.status == app.status
        apps[app.name] = AppStatus(
            status=app.status,
            message=app.message,
            healthLastUpdateTime=before.healthLastUpdateTime if unchanged and before else now,
            serveDeploymentStatuses=deployments,
        )
    capacity = None if serve.target_capacity is None else round(serve.target_capacity)
    return previous.model_copy(
        update={
            "rayClusterName": cluster,
            "applicationStatuses": apps,
            "targetCapacity": capacity if capacity is not None else previous.targetCapacity,
        }
    )


def _unknown_message(app: AppStatus) -> str:
    if app.status == ApplicationStatus.UNKNOWN:
        return app.message
    return f"the head node is down, so Serve cannot be asked; last known status {app.status}"


def service_state(status: ServiceStatus, endpoints: int) -> ServiceState:
    """The SERVICE STATUS of a service whose active cluster serves ``status``."""
    states = {app.status for app in status.applicationStatuses.values()}
    if states & FAILED_APP_STATES:
        return ServiceState.UNHEALTHY
    if ApplicationStatus.UNKNOWN in states:
        return ServiceState.UNKNOWN
    if not endpoints:
        return ServiceState.WAITING
    if states and states <= {ApplicationStatus.RUNNING}:
        return ServiceState.RUNNING
    if not states:
        return ServiceState.WAITING
    return ServiceState.DEPLOYING


def applications_health(status: ServiceStatus) -> Fact:
    """The ApplicationsHealthy condition: whether every application of the active cluster
    runs, and which do not, with Ray's message for a failed one."""
    apps = status.applicationStatuses
    failed = {name: app for name, app in apps.items() if app.status in FAILED_APP_STATES}
    if failed:
        name, app = sorted(failed.items())[0]
        detail = f": {headline(app.message)}" if app.message else ""
        message = f"application {name} is {app.status}{detail}"
        return Fact(ConditionStatus.FALSE, ConditionReason.APPLICATION_FAILED, message)
    unknown = sorted(n for n, a in apps.items() if a.status == ApplicationStatus.UNKNOWN)
    if unknown:
        message = f"{', '.join(unknown)}: {apps[unknown[0]].message}"
        return Fact(ConditionStatus.UNKNOWN, ConditionReason.SERVE_UNREACHABLE, message)
    waiting = sorted(
        f"{n} {a.status}" for n, a in apps.items() if a.status != ApplicationStatus.RUNNING
    )
    if waiting or not apps:
        message = ", ".join(waiting) if waiting else "no Serve application runs yet"
        return Fact(ConditionStatus.FALSE, ConditionReason.APPLICATIONS_NOT_RUNNING, message)
    message = f"{len(apps)} application(s) RUNNING"
    return Fact(ConditionStatus.TRUE, ConditionReason.ALL_APPLICATIONS_RUNNING, message)


def app_events(before: ServiceStatus, after: ServiceStatus) -> list[PlannedEvent]:
    """An event for every application whose status changed on the same cluster."""
    if before.rayClusterName != after.rayClusterName:
        before = ServiceStatus(rayClusterName=after.rayClusterName)
    events = []
    for name, app in after.applicationStatuses.items():
        old = before.applicationStatuses.get(name)
        if old is not None and old.status == app.status:
            continue
        events.append(
            _status_event(
                "Application",
                app.status,
                f"application {name} on {after.rayClusterName} is {app.status}",
                app.message if app.status in FAILED_APP_STATES else None,
            )
        )
    for name, app in after.applicationStatuses.items():
        old = before.applicationStatuses.get(name)
        if old is not None:
            events += _deployment_events(name, old, app)
    return events


def _deployment_events(app_name: str, before: AppStatus, after: AppStatus) -> list[PlannedEvent]:
    """Transitions of deployments that already existed (an update, a scale, a failure); a
    new application's deployments are told by its own events."""
    events = []
    for name, deployment in after.serveDeploymentStatuses.items():
        old = before.serveDeploymentStatuses.get(name)
        if old is None or old.status == deployment.status:
            continue
        unhealthy = deployment.status in UNHEALTHY_DEPLOYMENT_STATES
        events.append(
            _status_event(
                "Deployment",
                deployment.status,
                f"deployment {name} of {app_name} is {deployment.status} (was {old.status})",
                deployment.message if unhealthy else None,
            )
        )
    return events


def _status_event(kind: str, state: str, text: str, failure: str | None) -> PlannedEvent:
    """``<Kind><State>`` event; a Warning carrying Ray's message when ``failure`` is set."""
    reason = state_event_reason(kind, state)
    if failure is None:
        return PlannedEvent(EventType.NORMAL, reason, text)
    detail = f": {headline(failure)}" if failure else ""
    return PlannedEvent(EventType.WARNING, reason, text + detail)


def endpoint_events(cluster: str, before: list[str], after: list[str]) -> list[PlannedEvent]:
    def event(reason: EventReason, node: str, message: str) -> PlannedEvent:
        return PlannedEvent(EventType.NORMAL, reason, message, ObjectRef(ObjectKind.POD, node))

    added = [
        event(EventReason.ENDPOINT_ADDED, n, f"serve endpoint {n} added (cluster {cluster})")
        for n in after
        if n not in before
    ]
    removed = [
        event(EventReason.ENDPOINT_REMOVED, n, f"serve endpoint {n} removed")
        for n in before
        if n not in after
    ]
    return added + removed


def progress_message(cluster: str, serve: ServeState | None, head_ready: bool) -> str:
    """Why a service without serve endpoints is not ready yet, in one sentence."""
    if not head_ready:
        return f"waiting for the head of cluster {cluster} to answer"
    if serve is None or not serve.apps:
        return f"waiting for Serve applications on cluster {cluster}"
    failing = [a for a in serve.apps if a.status in FAILED_APP_STATES]
    if failing:
        return "; ".join(
            f"application {a.name} is {a.status}: {headline(a.message)}" for a in failing
        )
    pending = [f"{a.name} {a.status}" for a in serve.apps if a.status != ApplicationStatus.RUNNING]
    if pending:
        return "applications not running yet: " + ", ".join(pending)
    return f"applications are RUNNING; waiting for a healthy Serve proxy on cluster {cluster}"
