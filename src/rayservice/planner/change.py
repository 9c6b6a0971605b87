"""What applying a RayService would do to the stored one, and which fields cause it. Pure.

``rayservice diff``, ``apply --dry-run`` and the warnings of an apply answer this before (or
as) the spec is stored, so users see whether an edit restarts their cluster or only updates it
in place. The answer must be what the controller then does, so the kind of change is not
decided here: it is the rollout's own :func:`~rayservice.planner.rollout.intent_of`, asked
about the stored record (which cluster is active, which one is pending, what is held or was
given up). This module only lists the fields that differ from the stored manifest, grouped by
what changing them does, and words the answer.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from enum import Enum, StrEnum
from typing import Any

from rayservice import __version__
from rayservice.planner.record import ClusterSlot, ServiceRecord
from rayservice.planner.rollout import (
    DEFAULT_INTERVAL_SECONDS,
    DEFAULT_STEP_PERCENT,
    Intent,
    intent_of,
    wanted_of,
)
from rayservice.spec.hashing import (
    SCALING_FIELDS_OF_CLUSTER,
    SCALING_FIELDS_OF_GROUP,
    cluster_spec_hash,
    is_worker_group_append,
    serve_config_hash,
)
from rayservice.spec.manifest import (
    ClusterUpgradeOptions,
    RayCluster,
    RayClusterSpec,
    RayService,
    RayServiceSpec,
)
from rayservice.spec.paths import field_path
from rayservice.spec.references import NOTHING_FOUND, Found, Resolution, Resolve, resolve_manifest
from rayservice.spec.vocabulary import ClusterUpgradeType, UpgradeType

CLUSTER_CONFIG_FIELD = "spec.rayClusterConfig"
SERVE_CONFIG_FIELD = "spec.serveConfigV2"


class ChangeKind(StrEnum):
    """What applying does to a service, from the strongest effect to none."""

    CREATE = "create"
    NEW_CLUSTER = "new cluster"
    ROLLBACK = "rollback"  # back to the active cluster's spec: the pending cluster goes
    PENDING_UPDATE = "update of the pending cluster"
    HELD = "held cluster change"  # upgradeStrategy None: the cluster keeps its spec
    # the spec refers to a Secret, ConfigMap or key that is not there: the cluster keeps its spec
    WAITING = "cluster change waiting for a Secret or ConfigMap"
    WORKER_COUNT = "in-place worker-count change"
    SERVE_UPDATE = "in-place Serve update"
    SETTINGS = "settings change"
    VALUES = "values change"  # a Secret's or ConfigMap's
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


def classify_change(
    current: RayService | None,
    new: RayService,
    record: ServiceRecord | None = None,
    found: Found = NOTHING_FOUND,
    resolve: Resolve = resolve_manifest,
) -> Change:
    """What applying ``new`` over ``current`` (None when not stored yet) would do, given the
    controller's stored ``record`` (None, or one without a cluster yet: as if ``current`` ran
    alone on its cluster) and the Secrets and ConfigMaps ``found`` in its namespace, which
    the backend's ``resolve`` writes into the cluster spec (or leaves to the pods).

    Both services are expected to have passed admission, so their Serve configs parse.
    """
    resolution = resolve(new, found)
    if current is None:
        summary = f"{new.key} is not stored yet: it is created, on a new cluster."
        if resolution.missing:
            summary = (
                f"{new.key} is not stored yet: it is stored, but no cluster starts until"
                f" {CLUSTER_CONFIG_FIELD} can be resolved: {'; '.join(resolution.missing)}."
            )
        return Change(ChangeKind.CREATE, summary)
    fields = _ordered(
        [
            *_cluster_fields(current.spec.rayClusterConfig, new.spec.rayClusterConfig),
            *_serve_fields(current.spec, new.spec),
            *_settings_fields(current.spec, new.spec),
        ]
    )
    waiting = record is not None and record.active is None and bool(record.missing_references)
    runs = record is not None and record.active is not None
    if record is None or record.active is None:
        record = running_alone(current, resolve(current, found))
    wanted = wanted_of(new, resolution, new.spec.serve_config(), new_cluster="")
    intent = intent_of(record, wanted)
    kind = _kind(intent, record, new.spec, resolution.spec, fields)
    summary = _summary(kind, record, new.spec, fields)
    if intent is Intent.UNRESOLVED:
        running = "the running cluster keeps its spec" if runs else "no cluster runs yet"
        summary += (
            f" {CLUSTER_CONFIG_FIELD} cannot be resolved: {'; '.join(resolution.missing)}; no"
            f" cluster starts until it can, and {running}."
        )
    elif waiting:
        summary += (
            f" Its first cluster, held back until {CLUSTER_CONFIG_FIELD} could be resolved,"
            " starts: what it refers to is there now."
        )
    if intent is Intent.GIVEN_UP and record.given_up is not None:
        summary += (
            " This rayClusterConfig and Serve config already timed out"
            f" ({record.given_up.reason}); they are not tried again until one of them changes."
        )
    return Change(kind, summary, fields)


def running_alone(service: RayService, cluster: Resolution) -> ServiceRecord:
    """The record of ``service`` running on one cluster (its spec resolved as ``cluster``),
    with nothing pending or held."""
    spec = cluster.spec
    slot = ClusterSlot(
        name="",
        spec_hash=cluster_spec_hash(spec),
        hashed_by=__version__,
        cluster_spec=spec.model_dump(mode="json"),
        serve_config=service.spec.serve_config(),
    )
    return ServiceRecord(active=slot)


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


def _cluster_fields(
    current: RayClusterSpec, new: RayClusterSpec, path: str = CLUSTER_CONFIG_FIELD
) -> list[FieldChange]:
    """Changed leaves under the cluster spec at ``path``: scaling fields and appended groups
    count as workers, everything else as cluster (it is what the cluster hash covers)."""
    old_shape, new_shape = current.model_dump(mode="json"), new.model_dump(mode="json")
    old_groups, new_groups = old_shape.pop("workerGroupSpecs"), new_shape.pop("workerGroupSpecs")
    fields = _scaling_split_changes(old_shape, new_shape, path, SCALING_FIELDS_OF_CLUSTER)
    shared = min(len(old_groups), len(new_groups))
    for index in range(shared):
        before, after = old_groups[index], new_groups[index]
        group_path = field_path(path, "workerGroupSpecs", index)
        fields += _scaling_split_changes(before, after, group_path, SCALING_FIELDS_OF_GROUP)
    appended = is_worker_group_append(current, new)
    added_or_removed = FieldGroup.WORKERS if appended else FieldGroup.CLUSTER
    for index in range(shared, max(len(old_groups), len(new_groups))):
        before, after = _item(old_groups, index), _item(new_groups, index)
        group_path = field_path(path, "workerGroupSpecs", index)
        fields += _leaf_changes(before, after, group_path, added_or_removed)
    return fields


def classify_cluster_change(
    current: RayCluster | None,
    new: RayCluster,
    found: Found = NOTHING_FOUND,
    resolve: Resolve = resolve_manifest,
) -> Change:
    """What applying the standalone RayCluster ``new`` over ``current`` would do, with the
    Secrets and ConfigMaps ``found`` in its namespace: it is what
    :mod:`rayservice.planner.standalone` does with a changed spec."""
    missing = (
        () if new.spec.suspend else resolve(new, found).missing
    )  # a suspended cluster runs nothing
    unresolved = f"no node starts until the spec can be resolved: {'; '.join(missing)}."
    if current is None:
        summary = f"{new.key} is not stored yet: it is created"
        return Change(
            ChangeKind.CREATE, f"{summary}, but {unresolved}" if missing else f"{summary}."
        )
    fields = _ordered(_cluster_fields(current.spec, new.spec, "spec"))
    if missing:
        summary = f"Running nodes go on as they are, but {unresolved}"
        return Change(ChangeKind.WAITING if fields else ChangeKind.NO_OP, summary, fields)
    if not fields:
        return Change(ChangeKind.NO_OP, "Nothing changes.")
    if not any(field.group is FieldGroup.CLUSTER for field in fields):
        summary = "Worker groups change in place; running nodes stay."
        return Change(ChangeKind.WORKER_COUNT, summary, fields)
    if new.upgrade_type is ClusterUpgradeType.RECREATE:
        summary = (
            "The cluster spec changes and spec.upgradeStrategy.type is Recreate: the cluster is"
            " deleted and created anew (Serve applications and jobs on it are lost)."
        )
        return Change(ChangeKind.NEW_CLUSTER, summary, fields)
    summary = (
        "The cluster spec changes and spec.upgradeStrategy.type is None: running nodes keep"
        " their spec, nodes started from now take the new one."
    )
    return Change(ChangeKind.HELD, summary, fields)


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
    before, after = current.serve_config(), new.serve_config()
    return _leaf_changes(before, after, SERVE_CONFIG_FIELD, FieldGroup.SERVE)


def _settings_fields(current: RayServiceSpec, new: RayServiceSpec) -> list[FieldChange]:
    """Every other spec field; defaults are included, so writing a default out is no change."""
    exclude = {"serveConfigV2", "rayClusterConfig"}
    before = current.model_dump(mode="json", exclude=exclude)
    after = new.model_dump(mode="json", exclude=exclude)
    return _leaf_changes(before, after, "spec", FieldGroup.SETTINGS)


def _ordered(fields: list[FieldChange]) -> tuple[FieldChange, ...]:
    return tuple(sorted(fields, key=lambda field: _GROUP_ORDER.index(field.group)))


_KIND_OF_INTENT = {
    Intent.CREATE: ChangeKind.CREATE,
    Intent.NEW_PENDING: ChangeKind.NEW_CLUSTER,
    Intent.ROLLBACK: ChangeKind.ROLLBACK,
    Intent.HOLD: ChangeKind.HELD,
}


def cluster_change_effect(
    intent: Intent, record: ServiceRecord, spec: RayServiceSpec, new_cluster: RayClusterSpec
) -> str:
    """The words of a change of the resolved cluster spec alone (``new_cluster``, e.g. a
    Secret's value it takes), as :func:`classify_change` says them for ``intent``."""
    fields = (FieldChange(CLUSTER_CONFIG_FIELD, ABSENT, ABSENT, FieldGroup.CLUSTER),)
    kind = _kind(intent, record, spec, new_cluster, fields)
    return _effect(kind, record, spec, {FieldGroup.CLUSTER})


def _kind(
    intent: Intent,
    record: ServiceRecord,
    new: RayServiceSpec,
    new_cluster: RayClusterSpec,
    fields: tuple[FieldChange, ...],
) -> ChangeKind:
    """The kind of change the rollout's intent means. The in-place kinds are told apart by
    what the running cluster gets: its cluster spec and Serve config against the new ones
    (``new_cluster``: resolved; they can differ from the stored manifest's after a held or
    given-up change), the settings against the stored manifest."""
    if intent in _KIND_OF_INTENT:
        return _KIND_OF_INTENT[intent]
    if not fields:
        return ChangeKind.NO_OP
    if intent is Intent.UPDATE_PENDING:
        return ChangeKind.PENDING_UPDATE
    groups = {field.group for field in fields}
    active = record.active
    if intent is Intent.UNRESOLVED and groups & {FieldGroup.CLUSTER, FieldGroup.WORKERS}:
        return ChangeKind.WAITING
    if intent is Intent.GIVEN_UP:  # nothing reaches a cluster
        groups &= {FieldGroup.SETTINGS}
    elif intent is Intent.IN_PLACE and active is not None:
        running = RayClusterSpec.model_validate(active.cluster_spec)
        groups -= {FieldGroup.WORKERS, FieldGroup.SERVE}
        groups |= {field.group for field in _cluster_fields(running, new_cluster)}
        running_config = active.serve_config
        if running_config is not None and serve_config_hash(running_config) != serve_config_hash(
            new.serve_config()
        ):
            groups.add(FieldGroup.SERVE)
    if not groups:
        return ChangeKind.NO_OP
    for group, kind in (
        (FieldGroup.WORKERS, ChangeKind.WORKER_COUNT),
        (FieldGroup.SERVE, ChangeKind.SERVE_UPDATE),
    ):
        if group in groups:
            return kind
    return ChangeKind.SETTINGS  # settings, or a cluster spec the running cluster already has


def _summary(
    kind: ChangeKind, record: ServiceRecord, spec: RayServiceSpec, fields: tuple[FieldChange, ...]
) -> str:
    groups = {field.group for field in fields}
    sentences = [_effect(kind, record, spec, groups)]
    if kind is ChangeKind.SETTINGS and FieldGroup.CLUSTER in groups:
        sentences.append(
            f"{CLUSTER_CONFIG_FIELD} is the running cluster's spec again: nothing about the"
            " cluster changes."
        )
    if FieldGroup.WORKERS in groups and spec.rayClusterConfig.enableInTreeAutoscaling:
        sentences.append(
            f"{CLUSTER_CONFIG_FIELD}.enableInTreeAutoscaling is true: Ray's autoscaler sets"
            " the worker counts once it asked for a group (replicas is the count a cluster"
            " starts with); minReplicas and maxReplicas bound it, applied in place."
        )
    return " ".join(sentences)


def _effect(
    kind: ChangeKind, record: ServiceRecord, spec: RayServiceSpec, groups: set[FieldGroup]
) -> str:
    active, pending = record.active, record.pending
    match kind:
        case ChangeKind.NEW_CLUSTER:
            replaced = (
                f" Pending cluster {pending.name} is replaced." if pending is not None else ""
            )
            return _new_cluster_effect(spec) + replaced
        case ChangeKind.WAITING:
            serve = (
                " The Serve config changes are still deployed to the running cluster."
                if FieldGroup.SERVE in groups
                else ""
            )
            return "The cluster spec changes, but not before it can be resolved." + serve
        case ChangeKind.HELD:
            serve = (
                " The Serve config changes are still deployed to the running cluster."
                if FieldGroup.SERVE in groups
                else ""
            )
            return (
                "The cluster spec changes, but the cluster change will NOT be applied because"
                " spec.upgradeStrategy.type is None: the running cluster keeps its spec." + serve
            )
        case ChangeKind.ROLLBACK:
            assert active is not None and pending is not None
            back = (
                " after traffic steps back from it"
                if record.stepping
                and pending.traffic_percent > 0
                and spec.upgradeStrategy.type is UpgradeType.INCREMENTAL
                else ""
            )
            return (
                f"{CLUSTER_CONFIG_FIELD} is the active cluster {active.name}'s spec again: the"
                f" upgrade is rolled back and pending cluster {pending.name} is deleted{back}."
            )
        case ChangeKind.PENDING_UPDATE:
            assert pending is not None
            return (
                f"An upgrade is under way: pending cluster {pending.name} takes the change; the"
                " active cluster keeps serving until it is ready."
            )
        case ChangeKind.WORKER_COUNT:
            serve = ", and it gets the new Serve config" if FieldGroup.SERVE in groups else ""
            return f"The running cluster is kept; its worker groups change in place{serve}."
        case ChangeKind.SERVE_UPDATE:
            return (
                "The running cluster is kept and the new Serve config is deployed to it in place."
            )
        case ChangeKind.SETTINGS:
            return (
                "Only service settings change; they apply without touching the cluster or the"
                " Serve applications."
            )
    return "Nothing that takes effect changes."


def _new_cluster_effect(spec: RayServiceSpec) -> str:
    strategy = spec.upgradeStrategy
    if strategy.type is UpgradeType.INCREMENTAL:
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
