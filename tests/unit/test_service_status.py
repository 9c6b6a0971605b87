"""Status from what Serve reports: the events its changes tell, SERVICE STATUS, the
ApplicationsHealthy condition, and apps that say UNKNOWN while the head is down."""

from __future__ import annotations

import pytest

from rayservice.planner.actions import PlannedEvent
from rayservice.planner.service_status import (
    app_events,
    applications_health,
    service_state,
    service_status,
)
from rayservice.spec.status import AppStatus, ServeDeploymentStatus, ServiceStatus
from rayservice.spec.vocabulary import (
    ConditionReason,
    ConditionStatus,
    EventReason,
    EventType,
    ServiceState,
)

CLUSTER = "demo-raycluster-abcde"


def service(app: str, **deployments: str | tuple[str, str]) -> ServiceStatus:
    statuses = {}
    for name, value in deployments.items():
        state, message = value if isinstance(value, tuple) else (value, "")
        statuses[name] = ServeDeploymentStatus(status=state, message=message)
    return ServiceStatus(
        rayClusterName=CLUSTER,
        applicationStatuses={"fruit_app": AppStatus(status=app, serveDeploymentStatuses=statuses)},
    )


def test_an_in_place_update_tells_each_deployment_going_updating_and_back() -> None:
    before = service("RUNNING", MangoStand="HEALTHY", PearStand="HEALTHY")
    updating = service("DEPLOYING", MangoStand="UPDATING", PearStand="HEALTHY")

    going = app_events(before, updating)
    back = app_events(updating, before)

    assert (
        PlannedEvent(
            EventType.NORMAL,
            EventReason("DeploymentUpdating"),
            "deployment MangoStand of fruit_app is UPDATING (was HEALTHY)",
        )
        in going
    )
    assert not [e for e in going if "PearStand" in e.message], "an unchanged deployment is quiet"
    assert [e.reason for e in back] == ["ApplicationRunning", "DeploymentHealthy"]


def test_an_unhealthy_deployment_is_a_warning_with_rays_message() -> None:
    before = service("RUNNING", MangoStand="HEALTHY")
    after = service("UNHEALTHY", MangoStand=("UNHEALTHY", "replica crashed"))

    [deployment] = [e for e in app_events(before, after) if e.reason.startswith("Deployment")]

    assert deployment.type == "Warning"
    assert deployment.reason == "DeploymentUnhealthy"
    assert deployment.message.endswith(": replica crashed")


def test_a_new_application_tells_only_its_own_status() -> None:
    after = service("DEPLOYING", MangoStand="UPDATING", PearStand="UPDATING")

    events = app_events(ServiceStatus(rayClusterName=CLUSTER), after)

    assert [e.reason for e in events] == ["ApplicationDeploying"]


def test_a_new_cluster_starts_its_story_afresh() -> None:
    before = service("RUNNING", MangoStand="HEALTHY")
    other = service("DEPLOYING", MangoStand="UPDATING").model_copy(
        update={"rayClusterName": "demo-raycluster-fghij"}
    )

    assert [e.reason for e in app_events(before, other)] == ["ApplicationDeploying"]


def _status(**apps: str) -> ServiceStatus:
    return ServiceStatus(
        rayClusterName="c1",
        applicationStatuses={name: AppStatus(status=state) for name, state in apps.items()},
    )


@pytest.mark.parametrize(
    ("apps", "endpoints", "expected"),
    [
        ({"a": "RUNNING", "b": "RUNNING"}, 2, ServiceState.RUNNING),
        ({"a": "RUNNING", "b": "DEPLOYING"}, 1, ServiceState.DEPLOYING),
        ({"a": "RUNNING", "b": "UNHEALTHY"}, 2, ServiceState.UNHEALTHY),
        ({"a": "DEPLOY_FAILED"}, 0, ServiceState.UNHEALTHY),
        ({"a": "UNKNOWN"}, 2, ServiceState.UNKNOWN),
        ({"a": "RUNNING"}, 0, ServiceState.WAITING),
        ({}, 0, ServiceState.WAITING),
        ({}, 2, ServiceState.WAITING),  # endpoints, but no app yet
    ],
)
def test_the_service_status_is_never_blank_and_never_running_while_an_app_fails(
    apps: dict[str, str], endpoints: int, expected: ServiceState
) -> None:
    assert service_state(_status(**apps), endpoints) is expected


def test_applications_health_names_the_failed_app_with_rays_last_line() -> None:
    status = _status(a="RUNNING", b="UNHEALTHY")
    status.applicationStatuses["b"] = AppStatus(
        status="UNHEALTHY", message="Traceback (most recent call last):\nRuntimeError: sick"
    )

    fact = applications_health(status)

    assert fact == (
        ConditionStatus.FALSE,
        ConditionReason.APPLICATION_FAILED,
        "application b is UNHEALTHY: RuntimeError: sick",
    )
    assert applications_health(_status(a="RUNNING")).status is ConditionStatus.TRUE
    deploying = applications_health(_status(a="DEPLOYING"))
    assert deploying.reason is ConditionReason.APPLICATIONS_NOT_RUNNING
    assert deploying.message == "a DEPLOYING"


def test_apps_say_unknown_and_why_while_the_head_is_down_and_come_back_from_serve() -> None:
    before = _status(a="RUNNING")

    kept = service_status("c1", None, before, "t1")
    down = service_status("c1", None, before, "t1", head_down=True)
    still_down = service_status("c1", None, down, "t2", head_down=True)

    assert kept == before  # Serve did not answer once: the last known status stays
    app = down.applicationStatuses["a"]
    assert (app.status, app.healthLastUpdateTime) == ("UNKNOWN", "t1")
    assert app.message == (
        "the head node is down, so Serve cannot be asked; last known status RUNNING"
    )
    assert still_down == down  # no new time, no new message while it lasts
    assert applications_health(down).status is ConditionStatus.UNKNOWN
    events = app_events(before, down)
    assert [e.reason for e in events] == [EventReason.APPLICATION_UNKNOWN]
