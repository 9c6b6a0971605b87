"""Operator control of a rollout: pause, resume, promote, undo, history.

Each verb is a declarative change to the stored RayService, never a call into the control
loop, so it survives a controller restart like any other apply:

- pause / resume set or clear the annotation ``rayservice.io/rollout-paused``: traffic steps
  (and a NewCluster switch) wait while it is set;
- promote names the pending cluster in ``rayservice.io/rollout-promote``: once that cluster
  is ready it takes all traffic at once;
- undo applies the spec of the generation before the current one again (a new generation),
  from the revisions the store keeps, as ``kubectl rollout undo`` does.
"""

from __future__ import annotations

import copy
import time
from typing import Any

from rayservice.planner.record import load_record
from rayservice.spec.errors import PermanentError
from rayservice.spec.vocabulary import KIND, AnnotationKey
from rayservice.store.base import Revision, Store, StoredResource

VERBS = ("pause", "resume", "promote", "undo")


class RolloutRefused(PermanentError):
    """The verb makes no sense in the service's current state (e.g. promote with no upgrade)."""


def run_verb(store: Store, resource: StoredResource, verb: str) -> tuple[StoredResource, str]:
    """Carry out ``verb`` on the stored service; the new resource and what was done."""
    match verb:
        case "pause":
            return _annotate(
                store, resource, AnnotationKey.ROLLOUT_PAUSED, "true"
            ), "rollout paused"
        case "resume":
            return _annotate(store, resource, AnnotationKey.ROLLOUT_PAUSED, None), "rollout resumed"
        case "promote":
            pending = _pending_cluster(resource)
            updated = _annotate(store, resource, AnnotationKey.ROLLOUT_PROMOTE, pending)
            return updated, f"{pending} takes all traffic as soon as it is ready"
        case "undo":
            return _undo(store, resource)
    raise RolloutRefused(f"unknown rollout verb {verb!r}; valid: {', '.join(VERBS)}")


def _pending_cluster(resource: StoredResource) -> str:
    """The pending cluster a promote names, from the controller's record (its rollout phase)."""
    record = load_record(resource.record)
    if record.pending is None:
        raise RolloutRefused(f"{resource.key} has no pending cluster: there is nothing to promote")
    if record.rolling_back:
        raise RolloutRefused(
            f"{resource.key} is rolling back from {record.pending.name}; apply its spec again"
            " to go on"
        )
    return record.pending.name


def _annotate(
    store: Store, resource: StoredResource, key: str, value: str | None
) -> StoredResource:
    manifest = copy.deepcopy(resource.manifest)
    annotations = manifest.setdefault("metadata", {}).setdefault("annotations", {})
    if value is None:
        annotations.pop(key, None)
    else:
        annotations[key] = value
    return store.apply(KIND, manifest, resource.source, time.time())


def _undo(store: Store, resource: StoredResource) -> tuple[StoredResource, str]:
    previous = previous_revision(store.revisions(KIND, resource.namespace, resource.name), resource)
    if previous is None:
        raise RolloutRefused(f"{resource.key} has no earlier spec to go back to")
    manifest = copy.deepcopy(resource.manifest)
    manifest["spec"] = copy.deepcopy(previous.manifest["spec"])
    manifest.get("metadata", {}).get("annotations", {}).pop(AnnotationKey.ROLLOUT_PROMOTE, None)
    source = f"rollout undo to generation {previous.generation} ({previous.source})"
    updated = store.apply(KIND, manifest, source, time.time())
    return (
        updated,
        f"spec of generation {previous.generation} applied as generation {updated.generation}",
    )


def previous_revision(revisions: list[Revision], current: StoredResource) -> Revision | None:
    """The latest revision older than the current generation whose spec differs from it."""
    spec = current.manifest.get("spec")
    older = [r for r in revisions if r.generation < current.generation]
    return next((r for r in reversed(older) if r.manifest.get("spec") != spec), None)


def history(revisions: list[Revision]) -> list[dict[str, Any]]:
    return [
        {"generation": r.generation, "source": r.source, "appliedAt": r.applied_at}
        for r in revisions
    ]
