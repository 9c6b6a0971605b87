"""Actions the planner asks for and the Plan that carries them.

Each action is idempotent (create-if-absent, full-document PUT, switch-to-target) and carries
the human reason it was chosen: the executor turns that reason into an event and a log line.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rayservice.planner.record import ServiceRecord
from rayservice.spec.cluster_request import ClusterRequest
from rayservice.spec.observed import FrontSpec
from rayservice.spec.status import RayServiceStatus


@dataclass(frozen=True)
class EnsureCluster:
    request: ClusterRequest
    reason: str
    event: str = "ClusterEnsured"


@dataclass(frozen=True)
class DeleteCluster:
    name: str
    reason: str
    event: str = "ClusterDeleted"


@dataclass(frozen=True)
class DeployServeConfig:
    cluster: str
    dashboard_url: str
    token: str
    config: dict[str, Any]
    config_hash: str
    reason: str
    event: str = "ServeConfigSubmitted"


@dataclass(frozen=True)
class EnsureFront:
    key: str
    spec: FrontSpec
    reason: str
    event: str = "EndpointsUpdated"


@dataclass(frozen=True)
class DeleteFront:
    key: str
    reason: str
    event: str = "EndpointsDeleted"


@dataclass(frozen=True)
class ForgetService:
    """The last step of a deletion: remove the resource from the store."""

    reason: str
    event: str = "Deleted"


Action = (
    EnsureCluster | DeleteCluster | DeployServeConfig | EnsureFront | DeleteFront | ForgetService
)


@dataclass(frozen=True)
class PlannedEvent:
    type: str  # Normal | Warning
    reason: str
    message: str


@dataclass(frozen=True)
class Plan:
    actions: tuple[Action, ...]
    record: ServiceRecord
    status: RayServiceStatus
    events: tuple[PlannedEvent, ...] = ()
    requeue_after: float = 5.0
    notes: tuple[str, ...] = field(default=())  # why nothing else happened, for logs
