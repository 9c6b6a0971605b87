"""The status of a RayService and of a RayCluster, shaped like KubeRay's so its tooling reads it.

Field names are KubeRay's camelCase JSON names. Everything here is a value: times are passed in
as RFC 3339 strings, so the controller owns the clock and the models stay pure and testable.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import NamedTuple

from pydantic import BaseModel, Field

from rayservice.spec.vocabulary import ConditionReason, ConditionStatus, ConditionType


class Condition(BaseModel):
    type: str
    status: ConditionStatus
    reason: str
    message: str = ""
    lastTransitionTime: str = ""  # RFC 3339, UTC, e.g. 2024-05-01T12:00:00Z
    observedGeneration: int = 0


class ServeDeploymentStatus(BaseModel):
    status: str
    message: str = ""
    healthLastUpdateTime: str | None = None
    lastUpdateTime: str | None = None


class AppStatus(BaseModel):
    status: str
    message: str = ""
    healthLastUpdateTime: str | None = None
    serveDeploymentStatuses: dict[str, ServeDeploymentStatus] = Field(default_factory=dict)


class ServiceStatus(BaseModel):
    """What one cluster (active or pending) serves."""

    rayClusterName: str = ""
    applicationStatuses: dict[str, AppStatus] = Field(default_factory=dict)
    targetCapacity: int | None = None
    trafficRoutedPercent: int | None = None


class RayServiceStatus(BaseModel):
    """The status document; the CLI reads it through this model, never as raw text."""

    conditions: list[Condition] = Field(default_factory=list)
    activeServiceStatus: ServiceStatus = Field(default_factory=ServiceStatus)
    pendingServiceStatus: ServiceStatus = Field(default_factory=ServiceStatus)
    numServeEndpoints: int = 0
    observedGeneration: int = 0
    serviceStatus: str = ""

    def condition(self, type: ConditionType) -> Condition | None:
        return next((c for c in self.conditions if c.type == type), None)

    def is_true(self, type: ConditionType) -> bool:
        found = self.condition(type)
        return found is not None and found.status == ConditionStatus.TRUE


class HeadInfo(BaseModel):
    podName: str = ""
    podIP: str = ""
    serviceName: str = ""
    serviceIP: str = ""


class RayClusterStatus(BaseModel):
    """A RayCluster's status: KubeRay's fields, read by ``get raycluster`` and the v1 API."""

    state: str = ""  # a ClusterState
    reason: str = ""
    conditions: list[Condition] = Field(default_factory=list)
    desiredWorkerReplicas: int = 0
    availableWorkerReplicas: int = 0
    readyWorkerReplicas: int = 0
    minWorkerReplicas: int = 0
    maxWorkerReplicas: int = 0
    desiredCPU: str = "0"
    desiredMemory: str = "0"
    desiredGPU: str = "0"
    endpoints: dict[str, str] = Field(default_factory=dict)  # port name -> port on 127.0.0.1
    head: HeadInfo = Field(default_factory=HeadInfo)
    observedGeneration: int = 0
    lastUpdateTime: str = ""

    def condition(self, type: ConditionType) -> Condition | None:
        return next((c for c in self.conditions if c.type == type), None)


def rfc3339(timestamp: float) -> str:
    """Unix seconds as an RFC 3339 UTC time with whole seconds, as Kubernetes writes them."""
    return datetime.fromtimestamp(timestamp, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Fact(NamedTuple):
    """A condition's status, reason and message."""

    status: ConditionStatus
    reason: ConditionReason
    message: str


def set_condition(
    conditions: list[Condition],
    type: ConditionType,
    status: ConditionStatus,
    reason: ConditionReason,
    message: str,
    now_rfc3339: str,
    generation: int,
) -> list[Condition]:
    """A copy of ``conditions`` with the condition ``type`` set.

    The transition time moves only when the status changes, so it keeps saying since when the
    condition has held; reason, message and generation are always refreshed.
    """
    previous = next((c for c in conditions if c.type == type), None)
    keeps_status = previous is not None and previous.status == status
    updated = Condition(
        type=type,
        status=status,
        reason=reason,
        message=message,
        lastTransitionTime=previous.lastTransitionTime
        if previous and keeps_status
        else now_rfc3339,
        observedGeneration=generation,
    )
    if previous is None:
        return [*conditions, updated]
    return [updated if c.type == type else c for c in conditions]
