"""The Store protocol: the one place the control plane keeps what must survive a restart.

Resources (the manifests users applied, with generation and resourceVersion), their status,
the controller's per-service record (its checkpoint), events, the observed views that
``get``/``describe`` print, and the host ports handed out to stable endpoints.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any, Protocol

from rayservice.spec.events import ObjectRef


@dataclass(frozen=True)
class StoredResource:
    kind: str
    namespace: str
    name: str
    uid: str
    generation: int  # bumped when spec changes
    resource_version: int  # bumped on every write
    created_at: float
    manifest: dict[str, Any]  # apiVersion, kind, metadata, spec as applied
    status: dict[str, Any] = field(default_factory=dict)
    record: dict[str, Any] = field(default_factory=dict)  # the controller's checkpoint
    deleting: bool = False
    source: str = ""  # the file it was applied from, for messages

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class Event:
    """An event of a RayService (its owner) about one of its objects (the involved object)."""

    namespace: str
    name: str  # the RayService that owns the event
    involved_kind: str  # an ObjectKind: the service itself, a cluster, a pod, a front service
    involved_name: str
    type: str  # Normal | Warning
    reason: str
    message: str
    first_seen: float
    last_seen: float
    count: int = 1


@dataclass(frozen=True)
class Revision:
    """The manifest as applied at one generation: the history ``rollout undo`` goes back to."""

    generation: int
    manifest: dict[str, Any]
    source: str
    applied_at: float


@dataclass(frozen=True)
class View:
    """An observed object printed by ``get`` (RayCluster, Pod, Service), owned by a service."""

    kind: str
    namespace: str
    name: str
    owner: str  # "<namespace>/<name>" of the RayService
    doc: dict[str, Any]


def canonical_json(doc: Any) -> str:
    """``doc`` as JSON with sorted keys and no spaces: equal documents give equal text."""
    return json.dumps(doc, sort_keys=True, separators=(",", ":"))


def spec_changed(old_manifest: dict[str, Any], new_manifest: dict[str, Any]) -> bool:
    """Whether storing ``new_manifest`` over ``old_manifest`` moves the generation."""
    return canonical_json(old_manifest.get("spec")) != canonical_json(new_manifest.get("spec"))


def generation_after_apply(current: StoredResource | None, manifest: dict[str, Any]) -> int:
    """The generation a resource has once ``manifest`` is applied over ``current``."""
    if current is None:
        return 1
    return current.generation + int(spec_changed(current.manifest, manifest))


class Store(Protocol):
    def apply(self, kind: str, manifest: dict[str, Any], source: str, now: float) -> StoredResource:
        """Create the resource or replace its spec; generation moves only if spec changed."""
        ...

    def get(self, kind: str, namespace: str, name: str) -> StoredResource | None: ...

    def list_resources(self, kind: str, namespace: str | None = None) -> list[StoredResource]: ...

    def keys(self, kind: str) -> list[str]:
        """``<namespace>/<name>`` of every resource of ``kind``, without reading the documents
        (the control loop asks on every tick)."""
        ...

    def mark_deleting(self, kind: str, namespace: str, name: str) -> StoredResource | None: ...

    def remove(self, kind: str, namespace: str, name: str) -> None:
        """Forget the resource, its events and its revisions."""
        ...

    def revisions(self, kind: str, namespace: str, name: str) -> list[Revision]:
        """The generations of the resource's spec the store keeps (a bounded number of the
        newest), oldest first."""
        ...

    def write_status(self, kind: str, namespace: str, name: str, status: dict[str, Any]) -> bool:
        """Store the status if it differs from the stored one; True when it was written."""
        ...

    def write_record(self, kind: str, namespace: str, name: str, record: dict[str, Any]) -> bool:
        """Checkpoint the controller's record for a resource (before acting on it); a changed
        record moves the resourceVersion, like a changed status. True when it was written."""
        ...

    def resource_version(self, kind: str, namespace: str, name: str) -> int | None:
        """The resource's resourceVersion (None when it is not stored), without reading it:
        an unchanged version means an unchanged manifest, status and record."""
        ...

    def add_event(
        self,
        namespace: str,
        name: str,
        type_: str,
        reason: str,
        message: str,
        now: float,
        involved: ObjectRef | None = None,
    ) -> None:
        """Record an event of the RayService ``name`` about ``involved`` (None: the service
        itself). A repeat of any stored event of that service (same involved object, type,
        reason and message) bumps its count and last time seen instead of adding one; only
        a bounded number of events per service is kept, the least recently seen go first."""
        ...

    def events(self, namespace: str, name: str) -> list[Event]:
        """The RayService's events, about any of its objects, least recently seen first."""
        ...

    def replace_views(self, owner: str, views: list[View]) -> None:
        """Make ``views`` the complete set of observed objects owned by ``owner``."""
        ...

    def views(self, kind: str, namespace: str | None = None) -> list[View]: ...

    def allocate_port(
        self, owner: str, purpose: str, start: int, usable: Callable[[int], bool]
    ) -> int:
        """The port already given to (owner, purpose), or the lowest port >= start that no
        other owner holds and ``usable`` accepts, recorded atomically."""
        ...

    def release_ports(self, owner: str, purpose: str | None = None) -> None: ...

    def put_scale_request(self, cluster: str, owner: str, request: dict[str, Any]) -> None:
        """Keep what the autoscaler of ``cluster`` (a cluster of ``owner``) last asked for."""
        ...

    def scale_requests(self, owner: str) -> dict[str, dict[str, Any]]:
        """What the autoscalers of ``owner``'s clusters last asked for, by cluster."""
        ...

    def forget_scale_requests(self, clusters: Collection[str]) -> None:
        """Drop the requests of ``clusters`` (gone)."""
        ...

    def forget_removed_workers(self, cluster: str, present: Collection[str]) -> None:
        """Drop from ``cluster``'s request the workers to delete that are no longer
        ``present`` (removed, so done), in one transaction with any concurrent request."""
        ...

    def port_is_held(self, port: int) -> bool:
        """Whether some owner holds ``port``."""
        ...
