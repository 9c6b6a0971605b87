"""How stored resources and views look on the wire: Kubernetes-shaped JSON objects and lists."""

from __future__ import annotations

from typing import Any

from fastapi import Response

from rayservice.planner.change import ABSENT, Change, FieldChange
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


def change_object(change: Change, generation: int) -> dict[str, Any]:
    """A dry run's answer: the kind of change, why, and the generation it would lead to."""
    return {
        "kind": change.kind.value,
        "summary": change.summary,
        "fields": [_field_change_object(field) for field in change.fields],
        "generation": generation,
    }


def _field_change_object(field: FieldChange) -> dict[str, Any]:
    """``path``, ``before``, ``after`` and ``group``; a side where the field is absent is left
    out, so an absent field and an explicit null stay distinct."""
    item = {"path": field.path, "before": field.before, "after": field.after}
    present = {key: value for key, value in item.items() if value is not ABSENT}
    return {**present, "group": field.group.value}


def view_object(view: View) -> dict[str, Any]:
    return view.doc


def event_object(event: Event) -> dict[str, Any]:
    """A Kubernetes Event (core/v1): the object it is about, what happened and how often."""
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "involvedObject": {
            "kind": event.involved_kind,
            "name": event.involved_name,
            "namespace": event.namespace,
        },
        "type": event.type,
        "reason": event.reason,
        "message": event.message,
        "count": event.count,
        "firstTimestamp": rfc3339(event.first_seen),
        "lastTimestamp": rfc3339(event.last_seen),
    }


def list_object(kind: str, items: list[dict[str, Any]]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "List", "metadata": {}, "items": items, "itemKind": kind}


def add_warning(response: Response, text: str) -> None:
    """A Kubernetes-style ``Warning: 299 - "..."`` header, as kubectl prints it."""
    response.headers.append("Warning", f'299 - "{text}"')
