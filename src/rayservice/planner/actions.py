"""Actions the planner asks for and the Plan that carries them.

Each action is idempotent (create-if-absent, full-document PUT, switch-to-target) and carries
the human reason it was chosen: the executor turns that reason into an event and a log line.
Each also names what it acts on (``key``) and what exactly it would do (``fingerprint``): the
failures of an action are filed under its key, and a failed action is held back only while
its fingerprint is the one that failed.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from rayservice.planner.record import ServiceRecord, failure_key
from rayservice.spec.cluster_request import ClusterRequest
from rayservice.spec.events import ObjectKind, ObjectRef
from rayservice.spec.observed import FrontSpec
from rayservice.spec.status import RayClusterStatus, RayServiceStatus
from rayservice.spec.vocabulary import EventReason, EventType


def _digest(*parts: object) -> str:
    text = json.dumps(parts, sort_keys=True, default=repr, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class EnsureCluster:
    request: ClusterRequest
    reason: str
    event: EventReason = EventReason.CLUSTER_CREATED

    @property
    def key(self) -> str:
        return failure_key(type(self).__name__, self.request.name)

    @property
    def fingerprint(self) -> str:
        return _digest(self.request.model_dump(mode="json"))

    @property
    def involved(self) -> ObjectRef:
        return ObjectRef(ObjectKind.RAY_CLUSTER, self.request.name)


@dataclass(frozen=True)
class DeleteCluster:
    name: str
    reason: str
    event: EventReason = EventReason.CLUSTER_DELETED

    @property
    def key(self) -> str:
        return failure_key(type(self).__name__, self.name)

    @property
    def fingerprint(self) -> str:
        return self.name

    @property
    def involved(self) -> ObjectRef:
        return ObjectRef(ObjectKind.RAY_CLUSTER, self.name)


@dataclass(frozen=True)
class DeployServeConfig:
    cluster: str
    dashboard_url: str
    token: str
    config: dict[str, Any]
    config_hash: str
    reason: str
    event: EventReason = EventReason.SERVE_CONFIG_SUBMITTED

    @property
    def key(self) -> str:
        return failure_key(type(self).__name__, self.cluster)

    @property
    def fingerprint(self) -> str:
        return self.config_hash  # a new dashboard or token is a new cluster: a new key

    @property
    def involved(self) -> ObjectRef:
        return ObjectRef(ObjectKind.RAY_CLUSTER, self.cluster)


@dataclass(frozen=True)
class EnsureFront:
    front: str  # the front key, <namespace>.<name>
    spec: FrontSpec
    reason: str
    service: str  # the Service its events are about: the serve one, else the head one
    event: EventReason = EventReason.ENDPOINTS_UPDATED

    @property
    def key(self) -> str:
        return failure_key(type(self).__name__, self.front)

    @property
    def fingerprint(self) -> str:
        return _digest(self.spec)

    @property
    def involved(self) -> ObjectRef:
        return ObjectRef(ObjectKind.SERVICE, self.service)


@dataclass(frozen=True)
class DeleteFront:
    front: str  # the front key, <namespace>.<name>
    reason: str
    service: str  # the Service its events are about: the serve one, else the head one
    event: EventReason = EventReason.ENDPOINTS_DELETED

    @property
    def key(self) -> str:
        return failure_key(type(self).__name__, self.front)

    @property
    def fingerprint(self) -> str:
        return self.front

    @property
    def involved(self) -> ObjectRef:
        return ObjectRef(ObjectKind.SERVICE, self.service)


@dataclass(frozen=True)
class ForgetService:
    """The last step of a deletion: remove the resource from the store."""

    reason: str
    event: EventReason = EventReason.DELETED

    @property
    def key(self) -> str:
        return type(self).__name__

    @property
    def fingerprint(self) -> str:
        return ""

    @property
    def involved(self) -> None:
        return None  # the RayService itself


Action = (
    EnsureCluster | DeleteCluster | DeployServeConfig | EnsureFront | DeleteFront | ForgetService
)


@dataclass(frozen=True)
class PlannedEvent:
    type: EventType
    reason: EventReason
    message: str
    involved: ObjectRef | None = None  # None: the RayService itself


StatusT = TypeVar("StatusT", RayServiceStatus, RayClusterStatus)


@dataclass(frozen=True)
class Plan(Generic[StatusT]):
    """What one pass decided; ``status`` is a RayService's or a standalone RayCluster's."""

    actions: tuple[Action, ...]
    record: ServiceRecord
    status: StatusT
    events: tuple[PlannedEvent, ...] = ()
    requeue_after: float = 5.0
    wake_at: float | None = None  # when a stored timer falls due (a deletion, a step, a retry)
    notes: tuple[str, ...] = field(default=())  # why nothing else happened, for logs
