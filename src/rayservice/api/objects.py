"""How stored resources and views look on the wire: Kubernetes-shaped JSON objects and lists."""

from __future__ import annotations

from typing import Any

from rayservice.spec.status import rfc3339
from rayservice.store.base import Event, StoredResource, View


def resource_object(resource: StoredResource) -> dict[str, Any]:
    manifest = resource.manifest
    metadata = {
        **manifest.get("metadata", {}),
        "namespace": resource.namespace,
        "uid": resource.uid,
        "generation": resource.generation,
        "resourceVersion": str(resource.resource_version),
        "creationTimestamp": rfc3339(resource.created_at),
    }
    if resource.deleting:
        metadata["deletionTimestamp"] = rfc3339(resource.created_at)
    if resource.source:
        metadata.setdefault("annotations", {})["rayservice.io/applied-from"] = resource.source
    return {
        "apiVersion": manifest.get("apiVersion", "ray.io/v1"),
        "kind": resource.kind,
        "metadata": metadata,
        "spec": manifest.get("spec", {}),
        "status": resource.status,
    }


def view_object(view: View) -> dict[str, Any]:
    return view.doc


def event_object(event: Event) -> dict[str, Any]:
    return {
        "type": event.type,
        "reason": event.reason,
        "message": event.message,
        "count": event.count,
        "firstTimestamp": rfc3339(event.first_seen),
        "lastTimestamp": rfc3339(event.last_seen),
        "involvedObject": {"kind": "RayService", "namespace": event.namespace, "name": event.name},
    }


def list_object(kind: str, items: list[dict[str, Any]]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "List", "metadata": {}, "items": items, "itemKind": kind}
