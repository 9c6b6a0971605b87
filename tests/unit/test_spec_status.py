"""KubeRay-shaped status models and the condition helper."""

from __future__ import annotations

import pydantic
import pytest

from rayservice.spec.status import (
    AppStatus,
    Condition,
    RayServiceStatus,
    ServeDeploymentStatus,
    rfc3339,
    set_condition,
)
from rayservice.spec.vocabulary import ConditionReason, ConditionStatus, ConditionType

READY = ConditionType.READY
TRUE, FALSE = ConditionStatus.TRUE, ConditionStatus.FALSE

EARLIER = "2024-05-01T10:00:00Z"
LATER = "2024-05-01T10:05:00Z"


def ready() -> Condition:
    return Condition(
        type="Ready",
        status="False",
        reason="Initializing",
        message="",
        lastTransitionTime=EARLIER,
        observedGeneration=1,
    )


def test_rfc3339_writes_utc_with_whole_seconds() -> None:
    assert rfc3339(0) == "1970-01-01T00:00:00Z"
    assert rfc3339(1714557600.9) == "2024-05-01T10:00:00Z"


def test_a_new_condition_is_appended() -> None:
    conditions = set_condition(
        [], READY, TRUE, ConditionReason.NON_ZERO_SERVE_ENDPOINTS, "ok", LATER, 2
    )

    assert conditions == [
        Condition(
            type="Ready",
            status="True",
            reason="NonZeroServeEndpoints",
            message="ok",
            lastTransitionTime=LATER,
            observedGeneration=2,
        )
    ]


def test_an_unchanged_status_keeps_its_transition_time_but_refreshes_the_rest() -> None:
    [condition] = set_condition(
        [ready()], READY, FALSE, ConditionReason.ZERO_SERVE_ENDPOINTS, "no", LATER, 3
    )

    assert condition.lastTransitionTime == EARLIER
    assert (condition.reason, condition.message, condition.observedGeneration) == (
        "ZeroServeEndpoints",
        "no",
        3,
    )


def test_a_status_flip_moves_the_transition_time() -> None:
    [condition] = set_condition(
        [ready()], READY, TRUE, ConditionReason.NON_ZERO_SERVE_ENDPOINTS, "", LATER, 1
    )

    assert (condition.status, condition.lastTransitionTime) == ("True", LATER)


def test_other_conditions_keep_their_place_and_the_input_is_not_changed() -> None:
    upgrade = ready().model_copy(update={"type": "UpgradeInProgress"})
    original = [upgrade, ready()]

    updated = set_condition(
        original, READY, TRUE, ConditionReason.NON_ZERO_SERVE_ENDPOINTS, "", LATER, 1
    )

    assert [c.type for c in updated] == ["UpgradeInProgress", "Ready"]
    assert updated[0] is upgrade
    assert original[1].status == "False"


def test_condition_status_must_be_a_kubernetes_value() -> None:
    fields = ready().model_dump() | {"status": "Yes"}

    with pytest.raises(pydantic.ValidationError):
        Condition.model_validate(fields)


def test_status_serialises_with_kuberay_field_names() -> None:
    status = RayServiceStatus(numServeEndpoints=2, serviceStatus="Running")
    status.activeServiceStatus.applicationStatuses["fruit"] = AppStatus(
        status="RUNNING",
        serveDeploymentStatuses={"MangoStand": ServeDeploymentStatus(status="HEALTHY")},
    )

    dumped = status.model_dump()

    assert set(dumped) == {
        "conditions",
        "activeServiceStatus",
        "pendingServiceStatus",
        "numServeEndpoints",
        "observedGeneration",
        "serviceStatus",
    }
    active = dumped["activeServiceStatus"]
    assert set(active) == {
        "rayClusterName",
        "applicationStatuses",
        "targetCapacity",
        "trafficRoutedPercent",
    }
    app = active["applicationStatuses"]["fruit"]
    assert app["serveDeploymentStatuses"]["MangoStand"]["status"] == "HEALTHY"
    assert set(app) == {"status", "message", "healthLastUpdateTime", "serveDeploymentStatuses"}


def test_a_fresh_status_is_empty() -> None:
    status = RayServiceStatus()

    assert (status.conditions, status.numServeEndpoints, status.serviceStatus) == ([], 0, "")
    assert status.pendingServiceStatus.rayClusterName == ""
