"""Events told by status changes: applications, and the deployments inside them."""

from __future__ import annotations

from rayservice.planner.actions import PlannedEvent
from rayservice.planner.service_status import app_events
from rayservice.spec.status import AppStatus, ServeDeploymentStatus, ServiceStatus
from rayservice.spec.vocabulary import EventReason, EventType

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
