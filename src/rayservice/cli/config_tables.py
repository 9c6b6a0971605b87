"""How ``get`` and ``describe`` print Secrets and ConfigMaps, as kubectl does: a Secret's
values never reach the terminal (``describe`` gives each key's size; ``get -o yaml|json``
shows the size in place of the value), a ConfigMap's are shown."""

from __future__ import annotations

from typing import Any

from rayservice.cli.tables import age
from rayservice.spec.config_objects import decoded
from rayservice.spec.events import ObjectKind


def secret_rows(items: list[dict[str, Any]], wide: bool) -> tuple[list[str], list[list[str]]]:
    rows = [
        [
            item["metadata"]["name"],
            str(item.get("type", "Opaque")),
            str(len(item.get("data") or {})),
            age(item["metadata"].get("creationTimestamp")),
        ]
        for item in items
    ]
    return ["NAME", "TYPE", "DATA", "AGE"], rows


def config_map_rows(items: list[dict[str, Any]], wide: bool) -> tuple[list[str], list[list[str]]]:
    rows = [
        [
            item["metadata"]["name"],
            str(len(item.get("data") or {}) + len(item.get("binaryData") or {})),
            age(item["metadata"].get("creationTimestamp")),
        ]
        for item in items
    ]
    return ["NAME", "DATA", "AGE"], rows


LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"  # holds the whole object


def without_secret_values(item: dict[str, Any]) -> dict[str, Any]:
    """A Secret with each value replaced by its size, and without the annotation that
    copies the object as last applied; any other object as it is."""
    if item.get("kind") != ObjectKind.SECRET:
        return item
    sizes = {key: f"<{_size(value)} bytes>" for key, value in (item.get("data") or {}).items()}
    metadata = dict(item["metadata"])
    annotations = {
        k: v for k, v in (metadata.get("annotations") or {}).items() if k != LAST_APPLIED
    }
    if "annotations" in metadata:
        metadata["annotations"] = annotations
    return {**item, "data": sizes, "metadata": metadata}


def describe_config_object(item: dict[str, Any]) -> str:
    meta = without_secret_values(item)["metadata"]
    lines = [
        f"Name:         {meta['name']}",
        f"Namespace:    {meta.get('namespace', 'default')}",
        f"Labels:       {_pairs(meta.get('labels'))}",
        f"Annotations:  {_pairs(meta.get('annotations'))}",
        "",
    ]
    if item.get("kind") == ObjectKind.SECRET:
        lines += [f"Type:  {item.get('type', 'Opaque')}", "", "Data", "===="]
        lines += [f"{key}:  {_size(value)} bytes" for key, value in _sorted(item.get("data"))]
    else:
        lines += ["Data", "===="]
        for key, value in _sorted(item.get("data")):
            lines += [f"{key}:", "----", str(value), ""]
        lines += ["BinaryData", "===="]
        lines += [f"{key}: {_size(value)} bytes" for key, value in _sorted(item.get("binaryData"))]
    return "\n".join(lines).rstrip()


def _sorted(values: object) -> list[tuple[str, Any]]:
    return sorted(values.items()) if isinstance(values, dict) else []


def _pairs(mapping: object) -> str:
    if not isinstance(mapping, dict) or not mapping:
        return "<none>"
    return "\n              ".join(f"{key}={value}" for key, value in sorted(mapping.items()))


def _size(encoded: object) -> int:
    return len(decoded(encoded) or b"")
