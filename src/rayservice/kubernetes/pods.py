"""Reading the pods KubeRay makes (and other objects): whether one is ready, its labels and
annotations. Pure."""

from __future__ import annotations

from typing import Any


def is_ready(pod: dict[str, Any]) -> bool:
    """Whether the kubelet reports the pod Ready (its readiness probes pass)."""
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def labels_on(obj: dict[str, Any]) -> dict[str, str]:
    """The labels of an object ({} when it has none)."""
    labels: dict[str, str] = obj["metadata"].get("labels") or {}
    return labels


def annotations_on(obj: dict[str, Any]) -> dict[str, str]:
    """The annotations of an object ({} when it has none)."""
    annotations: dict[str, str] = (obj.get("metadata") or {}).get("annotations") or {}
    return annotations
