"""Objects of a manifest file that rayservice does not run, and how to name them.

KubeRay's samples keep what a Ray cluster needs on Kubernetes in the same file as the
RayService or RayCluster: a Redis Deployment and Service, Secrets, ConfigMaps, RBAC objects,
scheduler queues. Users apply those files as they are. Only ``ray.io`` objects run on this
machine, and Secrets and ConfigMaps are kept as objects of their own; every other object is
named and skipped, so the rest of the file applies unchanged and nothing is skipped silently.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rayservice.spec.config_objects import is_config_object

RAY_API_GROUP = "ray.io"
# KubeRay's kinds: one of them under another apiVersion is a mistake for admission to refuse,
# not an object to skip
RAY_KINDS = frozenset({"RayService", "RayCluster", "RayJob", "RayCronJob"})


def api_group(api_version: str) -> str:
    """The API group of an apiVersion: ``apps`` of ``apps/v1``, empty for the core ``v1``."""
    return api_version.rpartition("/")[0]


def not_run_here(document: object) -> str | None:
    """Why ``document`` is skipped, or None when it is to be applied: a ``ray.io`` object, a
    Secret or ConfigMap, or one too malformed to tell (admission explains what is wrong)."""
    if not isinstance(document, Mapping):
        return None
    api_version, kind = document.get("apiVersion"), document.get("kind")
    if not isinstance(api_version, str) or not isinstance(kind, str) or not kind:
        return None
    if api_group(api_version) == RAY_API_GROUP or kind in RAY_KINDS or is_config_object(document):
        return None
    return (
        f"{kind} objects ({api_version}) are not applied on this machine;"
        f" only {RAY_API_GROUP} objects, Secrets and ConfigMaps are"
    )


def object_label(document: Mapping[str, Any]) -> str:
    """How kubectl names the object: ``deployment.apps/redis``, ``secret/redis-password``."""
    group = api_group(str(document.get("apiVersion", "")))
    kind = str(document.get("kind", "")).lower()
    metadata = document.get("metadata")
    name = metadata.get("name") if isinstance(metadata, Mapping) else None
    return f"{kind}{'.' + group if group else ''}/{name or '<unnamed>'}"
