"""What applying a RayService would do to the stored one, and which fields cause it. Pure.

``rayservice diff`` and ``apply --dry-run`` answer this before anything is stored, so users see
whether an edit restarts their cluster or only updates it in place. The answer has to agree
with what the controller then does, so it rests on the fingerprints the reconcile planner uses
(:mod:`rayservice.spec.hashing`): a changed cluster hash means a new cluster, scaling fields and
worker groups appended at the end are applied in place, a changed Serve config goes to the
running cluster. It lives in the planner layer, without IO or clock, so any interface can reuse
it and its rules can be tested as a table.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from enum import Enum, StrEnum
from typing import Any

import yaml

from rayservice.planner.upgrade import DEFAULT_INTERVAL_SECONDS, DEFAULT_STEP_PERCENT
from rayservice.spec.hashing import (
    SCALING_FIELDS_OF_CLUSTER,
    SCALING_FIELDS_OF_GROUP,
    cluster_spec_hash,
    is_worker_group_append,
)
from rayservice.spec.manifest import (
    ClusterUpgradeOptions,
    RayClusterSpec,
    RayService,
    RayServiceSpec,
)
from rayservice.spec.serve_config import field_path

CLUSTER_CONFIG_FIELD = "spec.rayClusterConfig"
SERVE_CONFIG_FIELD = "spec.serveConfigV2"


class ChangeKind(StrEnum):
    """What applying does to a service, from the strongest effect to none."""

    CREATE = "create"
    NEW_CLUSTER = "new cluster"
    WORKER_COUNT = "in-place worker-count change"
    SERVE_UPDATE = "in-place Serve update"
    SETTINGS = "settings change"
    NO_OP = "no-op"


class FieldGroup(StrEnum):
    """Which part of the service a changed field belongs to, by what changing it does."""

    CLUSTER = "cluster"  # needs a new cluster
    WORKERS = "workers"  # scales or extends the worker groups in place
    SERVE = "serve"  # goes to the running cluster as a new Serve config
    SETTINGS = "settings"  # service settings, applied without touching the cluster


_GROUP_ORDER = tuple(FieldGroup)


class Absent(Enum):
    """Stands for a field that one side of a comparison does not have."""

    ABSENT = "absent"


ABSENT = Absent.ABSENT


@dataclass(frozen=True)
class FieldChange:
    path: str  # e.g. spec.rayClusterConfig.workerGroupSpecs[0].replicas
    before: object  # a JSON-like value, or ABSENT when the field is new
    after: object  # a JSON-like value, or ABSENT when the field is removed
    group: FieldGroup


@dataclass(frozen=True)
class Change:
    kind: ChangeKind
    summary: str  # what applying does, in words, with the notes a user must not miss
    fields: tuple[FieldChange, ...] = ()  # every causing field, ordered by group


def classify_change(current: RayService | None, new: RayService) -> Change:
    """What applying ``new`` over ``current`` (None when not stored yet) would do.

    Both services are expected to have passed admission, so their Serve configs parse.
    """
    if current is None:
        summary = f"{new.key} is not stored yet: it is created, on a new cluster."
        return Change(ChangeKind.CREATE, summary)
    fields = _ordered(
        [
            *_cluster_fields(current.spec.rayClusterConfig, new.spec.rayClusterConfig),
            *_serve_fields(current.spec, new.spec),
            *_settings_fields(current.spec, new.spec),
        ]
    )
    kind = _kind(current.spec.rayClusterConfig, new.spec.rayClusterConfig, fields)
    return Change(kind, _summary(kind, new.spec, fields), fields)


def changed_leaves(
    before: object, after: object, path: str = ""
) -> Iterator[tuple[str, object, object]]:
    """``(path, before, after)`` of every leaf that differs between two JSON-like values.

    Mappings are compared key by key and lists item by item, by index. A key or item found on
    one side only is one leaf, with ``ABSENT`` on the other side. Scalars count as equal only
    with the same type, as in canonical JSON (``1``, ``1.0`` and ``true`` all differ).
    """
    if isinstance(before, Mapping) and isinstance(after, Mapping):
        for key in [*before, *(key for key in after if key not in before)]:
            child = field_path(path, str(key))
            yield from changed_leaves(before.get(key, ABSENT), after.get(key, ABSENT), child)
    elif isinstance(before, list) and isinstance(after, list):
        for index in range(max(len(before), len(after))):
            child = field_path(path, index)
            yield from changed_leaves(_item(before, index), _item(after, index), child)
    elif type(before) is not type(after) or before != after:
        yield path, before, after


def _item(items: list[Any], index: int) -> object:
    return items[index] if index < len(items) else ABSENT


def _leaf_changes(before: object, after: object, path: str, group: FieldGroup) -> list[FieldChange]:
    return [FieldChange(p, old, new, group) for p, old, new in changed_leaves(before, after, path)]


def _split(
    shape: Mapping[str, Any], names: frozenset[str]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(the fields named in names, every other field)`` of a dumped model."""
    named = {key: value for key, value in shape.items() if key in names}
    others = {key: value for key, value in shape.items() if key not in names}
    return named, others


def _cluster_fields(current: RayClusterSpec, new: RayClusterSpec) -> list[FieldChange]:
    """Changed leaves under spec.rayClusterConfig: scaling fields and appended groups count as
    workers, everything else as cluster (it is what the cluster hash covers)."""
    old_shape, new_shape = current.model_dump(mode="json"), new.model_dump(mode="json")
    old_groups, new_groups = old_shape.pop("workerGroupSpecs"), new_shape.pop("workerGroupSpecs")
    fields = _scaling_split_changes(
        old_shape, new_shape, CLUSTER_CONFIG_FIELD, SCALING_FIELDS_OF_CLUSTER
    )
    shared = min(len(old_groups), len(new_groups))
    for index in range(shared):
        before, after = old_groups[index], new_groups[index]
        fields += _scaling_split_changes(before, after, _group_path(index), SCALING_FIELDS_OF_GROUP)
    appended = is_worker_group_append(current, new)
    added_or_removed = FieldGroup.WORKERS if appended else FieldGroup.CLUSTER
    for index in range(shared, max(len(old_groups), len(new_groups))):
        before, after = _item(old_groups, index), _item(new_groups, index)
        fields += _leaf_changes(before, after, _group_path(index), added_or_removed)
    return fields


def _group_path(index: int) -> str:
    return field_path(CLUSTER_CONFIG_FIELD, "workerGroupSpecs", index)


def _scaling_split_changes(
    before: Mapping[str, Any], after: Mapping[str, Any], path: str, scaling: frozenset[str]
) -> list[FieldChange]:
    old_scaling, old_rest = _split(before, scaling)
    new_scaling, new_rest = _split(after, scaling)
    return [
        *_leaf_changes(old_rest, new_rest, path, FieldGroup.CLUSTER),
        *_leaf_changes(old_scaling, new_scaling, path, FieldGroup.WORKERS),
    ]


def _serve_fields(current: RayServiceSpec, new: RayServiceSpec) -> list[FieldChange]:
    """Changes inside the parsed Serve configs: formatting and key order do not count."""
    before, after = yaml.safe_load(current.serveConfigV2), yaml.safe_load(new.serveConfigV2)
    return _leaf_changes(before, after, SERVE_CONFIG_FIELD, FieldGroup.SERVE)


def _settings_fields(current: RayServiceSpec, new: RayServiceSpec) -> list[FieldChange]:
    """Every other spec field; defaults are included, so writing a default out is no change."""
    exclude = {"serveConfigV2", "rayClusterConfig"}
    before = current.model_dump(mode="json", exclude=exclude)
    after = new.model_dump(mode="json", exclude=exclude)
    return _leaf_changes(before, after, "spec", FieldGroup.SETTINGS)


def _ordered(fields: list[FieldChange]) -> tuple[FieldChange, ...]:
    return tuple(sorted(fields, key=lambda field: _GROUP_ORDER.index(field.group)))


def _kind(
    current: RayClusterSpec, new: RayClusterSpec, fields: tuple[FieldChange, ...]
) -> ChangeKind:
    """The strongest effect: the cluster hash decides about a new cluster, as in the planner."""
    same_cluster = cluster_spec_hash(current) == cluster_spec_hash(new)
    if not same_cluster and not is_worker_group_append(current, new):
        return ChangeKind.NEW_CLUSTER
    groups = {field.group for field in fields}
    for group, kind in (
        (FieldGroup.WORKERS, ChangeKind.WORKER_COUNT),
        (FieldGroup.SERVE, ChangeKind.SERVE_UPDATE),
        (FieldGroup.SETTINGS, ChangeKind.SETTINGS),
    ):
        if group in groups:
            return kind
    return ChangeKind.NO_OP


def _summary(kind: ChangeKind, spec: RayServiceSpec, fields: tuple[FieldChange, ...]) -> str:
    groups = {field.group for field in fields}
    sentences = [_effect(kind, spec, groups)]
    if FieldGroup.WORKERS in groups and spec.rayClusterConfig.enableInTreeAutoscaling:
        sentences.append(
            f"{CLUSTER_CONFIG_FIELD}.enableInTreeAutoscaling is true, but the local backend"
            " runs no Ray autoscaler: worker counts follow replicas, applied in place."
        )
    return " ".join(sentences)


def _effect(kind: ChangeKind, spec: RayServiceSpec, groups: set[FieldGroup]) -> str:
    if kind is ChangeKind.NEW_CLUSTER:
        return _new_cluster_effect(spec, groups)
    if kind is ChangeKind.WORKER_COUNT:
        serve = ", and it gets the new Serve config" if FieldGroup.SERVE in groups else ""
        return f"The running cluster is kept; its worker groups change in place{serve}."
    return {
        ChangeKind.SERVE_UPDATE: "The running cluster is kept and the new Serve config is"
        " deployed to it in place.",
        ChangeKind.SETTINGS: "Only service settings change; they apply without touching the"
        " cluster or the Serve applications.",
        ChangeKind.NO_OP: "Nothing that takes effect changes.",
    }[kind]


def _new_cluster_effect(spec: RayServiceSpec, groups: set[FieldGroup]) -> str:
    strategy = spec.upgradeStrategy
    if strategy.type == "None":
        serve = (
            " The Serve config changes are still deployed to the running cluster."
            if FieldGroup.SERVE in groups
            else ""
        )
        return (
            "The cluster spec changes, but the cluster change will NOT be applied because"
            " spec.upgradeStrategy.type is None: the running cluster keeps its spec." + serve
        )
    if strategy.type == "NewClusterWithIncrementalUpgrade":
        options = strategy.clusterUpgradeOptions or ClusterUpgradeOptions()
        step = _option(options.stepSizePercent, DEFAULT_STEP_PERCENT, "%")
        interval = _option(options.intervalSeconds, DEFAULT_INTERVAL_SECONDS, " s")
        return (
            "A new cluster is created with the new spec; traffic moves to it in steps of"
            f" {step} every {interval} (spec.upgradeStrategy.clusterUpgradeOptions)."
        )
    return (
        "A new cluster is created with the new spec; traffic switches to it once it serves,"
        " and the old cluster is deleted after spec.rayClusterDeletionDelaySeconds"
        f" ({spec.rayClusterDeletionDelaySeconds} s)."
    )


def _option(value: int | None, default: int, unit: str) -> str:
    """An upgrade option as the planner will use it: the default when it is not set."""
    return f"{value}{unit}" if value is not None else f"{default}{unit} (default)"
