"""How stored resources and views look on the wire: Kubernetes-shaped JSON objects and lists."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import HTTPException, Response

from rayservice.planner.change import ABSENT, Change, FieldChange
from rayservice.spec.status import rfc3339
from rayservice.store.base import Event, StoredResource, View

DRY_RUN_ALL = "All"  # the one dryRun value Kubernetes' API servers accept


def applied_document(body: dict[str, Any], namespace: str) -> tuple[dict[str, Any], str, Path]:
    """The manifest of an apply request (its namespace defaulted from the path), the file it
    came from and the folder its relative working_dirs resolve against."""
    document = body.get("manifest")
    if not isinstance(document, dict):
        found = "missing" if document is None else f"a {type(document).__name__}"
        raise HTTPException(
            400,
            "manifest must be an object (a RayService, RayCluster, Secret or ConfigMap),"
            f" got {found}",
        )
    meta = document.setdefault("metadata", {})
    if isinstance(meta, dict):
        meta.setdefault("namespace", namespace)
    source = str(body.get("source") or "<request body>")
    base_dir = Path(str(body.get("baseDir") or Path.cwd()))
    return document, source, base_dir


def check_dry_run_value(value: str) -> None:
    if value != DRY_RUN_ALL:
        raise HTTPException(400, f'dryRun must be "{DRY_RUN_ALL}" (got "{value}")')


def _metadata(resource: StoredResource) -> dict[str, Any]:
    metadata = {
        **resource.manifest.get("metadata", {}),
        "namespace": resource.namespace,
        "uid": resource.uid,
        "resourceVersion": str(resource.resource_version),
        "creationTimestamp": rfc3339(resource.created_at),
    }
    if resource.deleting:
        metadata["deletionTimestamp"] = rfc3339(resource.created_at)
    if resource.source:
        metadata.setdefault("annotations", {})["rayservice.io/applied-from"] = resource.source
    return metadata


def resource_object(resource: StoredResource) -> dict[str, Any]:
    manifest = resource.manifest
    return {
        "apiVersion": manifest.get("apiVersion", "ray.io/v1"),
        "kind": resource.kind,
        "metadata": {**_metadata(resource), "generation": resource.generation},
        "spec": manifest.get("spec", {}),
        "status": resource.status,
    }


def config_object(resource: StoredResource) -> dict[str, Any]:
    """A Secret or ConfigMap as Kubernetes answers it: no spec, no status, its values at the
    top (a Secret's in base64; the CLI never prints them)."""
    fields = {k: v for k, v in resource.manifest.items() if k not in ("kind", "metadata")}
    return {"kind": resource.kind, **fields, "metadata": _metadata(resource)}


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
