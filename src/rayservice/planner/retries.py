"""Which planned actions may run now, given how each one failed before. Pure.

The executor files every failed action in the record with what it tried (its fingerprint) and
what the error means (``FailureKind``, decided in one place: controller/outcomes). Here the
planner honours it: the same action is held back until its back-off is over (temporary) or for
as long as it would do the same thing again (permanent, rejected). An action that would do
something new runs at once, and a failure of an action nobody asks for any more is forgotten.
Cluster deletions wait while anything before them is held back: the front must let go of a
cluster before the cluster goes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from rayservice.planner.actions import Action, DeleteCluster
from rayservice.planner.record import ActionFailure
from rayservice.spec.vocabulary import FailureKind


@dataclass(frozen=True)
class Gate:
    actions: tuple[Action, ...]  # what runs in this pass
    failures: dict[str, ActionFailure]  # the failures that still stand
    held: tuple[str, ...]  # why an action waits, for notes
    retry_at: float | None  # the earliest back-off that ends


def gate(actions: Sequence[Action], failures: Mapping[str, ActionFailure], now: float) -> Gate:
    run: list[Action] = []
    standing: dict[str, ActionFailure] = {}
    held: list[str] = []
    retry_at: float | None = None
    for action in actions:
        failure = failures.get(action.key)
        if failure is not None and failure.fingerprint == action.fingerprint:
            standing[action.key] = failure
            if failure.kind is FailureKind.TEMPORARY and failure.retry_at is not None:
                if now >= failure.retry_at:
                    run.append(action)
                    continue
                retry_at = failure.retry_at if retry_at is None else min(retry_at, failure.retry_at)
            held.append(f"{action.key} waits ({failure.kind.lower()} failure): {failure.message}")
            continue
        if held and isinstance(action, DeleteCluster):
            held.append(f"{action.key} waits for the actions before it")
            continue
        run.append(action)
    return Gate(tuple(run), standing, tuple(held), retry_at)
