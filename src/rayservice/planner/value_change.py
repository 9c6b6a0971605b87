"""What applying or deleting a Secret or ConfigMap does: to the object itself (which keys change,
never their values) and to every RayService and RayCluster that takes values from it. Pure.

A value a cluster spec takes is part of that spec once resolved
(:mod:`rayservice.spec.references`), so a changed value is a cluster change like any other: the
rollout's :func:`~rayservice.planner.rollout.intent_of` says what it does to a RayService (a
new cluster, held by ``upgradeStrategy.type: None``, waiting for a missing object), and a
standalone RayCluster follows its own ``upgradeStrategy``. Users learn it from ``diff``,
``apply --dry-run`` and the warnings of an apply or delete, before or as it happens.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from rayservice.planner.change import Change, ChangeKind, cluster_change_effect
from rayservice.planner.record import ServiceRecord
from rayservice.planner.rollout import Intent, intent_of, wanted_of
from rayservice.spec.hashing import cluster_spec_hash
from rayservice.spec.manifest import RayCluster, RayService
from rayservice.spec.references import (
    Found,
    Resolution,
    Resolve,
    Source,
    cluster_spec_of,
    resolve_manifest,
    sources,
)
from rayservice.spec.vocabulary import ClusterUpgradeType


@dataclass(frozen=True)
class Referrer:
    """A stored RayService (with the controller's record, None before its first pass) or
    RayCluster in the namespace of the object that changes."""

    manifest: RayService | RayCluster
    record: ServiceRecord | None = None


def classify_config_change(
    key: str,
    kind: str,
    current: Mapping[str, bytes] | None,
    new: Mapping[str, bytes],
    other_fields: Sequence[str] = (),
    effects: Sequence[str] = (),
) -> Change:
    """What applying a Secret or ConfigMap with values ``new`` over one with ``current``
    (None when not stored yet) would do, ``other_fields`` changing too and ``effects`` (from
    :func:`referrer_effects`) on what takes values from it; it names the keys, never the
    values."""
    also = "".join(f" {effect}" for effect in effects)
    if current is None:
        return Change(ChangeKind.CREATE, f"{kind} {key} is not stored yet: it is created.{also}")
    changed = sorted(k for k in new.keys() | current.keys() if new.get(k) != current.get(k))
    if changed:
        fields = f" Also: {', '.join(other_fields)}." if other_fields else ""
        summary = f"Keys whose value changes: {', '.join(changed)}.{fields}{also}"
        return Change(ChangeKind.VALUES, summary)
    if other_fields:
        return Change(ChangeKind.SETTINGS, f"Fields that change: {', '.join(other_fields)}.")
    return Change(ChangeKind.NO_OP, "Nothing changes.")


def referrer_effects(
    source: Source,
    namespace: str,
    before: Found,
    after: Found,
    referrers: Sequence[Referrer],
    resolve: Resolve = resolve_manifest,
) -> list[str]:
    """One sentence for each of ``referrers`` whose resolved cluster spec changes when the
    objects ``before`` become ``after`` (``source`` changed, or is gone from ``after``): what
    it takes from ``source`` and what the change does to it."""
    effects = []
    for referrer in referrers:
        manifest = referrer.manifest
        if source not in sources(cluster_spec_of(manifest)[0]):
            continue
        old, new = resolve(manifest, before), resolve(manifest, after)
        same_hash = cluster_spec_hash(old.spec) == cluster_spec_hash(new.spec)
        if old.missing == new.missing and same_hash:
            continue
        taken = _taken(source, new, before.get(source, {}), after.get(source, {}))
        if isinstance(manifest, RayService):
            effect = _service_effect(manifest, referrer.record, new)
        else:
            effect = _cluster_effect(manifest, new)
        effects.append(f"{manifest.kind} {manifest.key} takes {taken}: {effect}")
    return effects


def _taken(source: Source, resolution: Resolution, before: Mapping[str, bytes],
           after: Mapping[str, bytes]) -> str:  # fmt: skip
    """What a spec takes from ``source`` that changed: keys with the fields that take them."""
    changed = {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}
    parts = []
    for use in resolution.uses:
        if use.source != source:
            continue
        if use.key is None:
            keys = ", ".join(sorted(changed)) or "no key that changes"
            parts.append(f"every key ({keys}) in {use.path}")
        elif use.key in changed:
            parts.append(f"key {use.key} in {use.path}")
    return "; ".join(parts)


def _service_effect(service: RayService, record: ServiceRecord | None, new: Resolution) -> str:
    missing = "; ".join(new.missing)
    if record is None or record.active is None:
        if new.missing:
            return f"no cluster of it runs, and none starts until it can be resolved ({missing})"
        return "no cluster of it runs yet: its first cluster starts with these values"
    wanted = wanted_of(service, new, service.spec.serve_config(), new_cluster="")
    intent = intent_of(record, wanted)
    if intent is Intent.UNRESOLVED:
        return (
            "its running cluster keeps the values it started with, and no new cluster can start"
            f" until it can be resolved ({missing})"
        )
    if intent is Intent.IN_PLACE:
        return "its running cluster already has these values: nothing restarts"
    return cluster_change_effect(intent, record, service.spec, new.spec)


def _cluster_effect(cluster: RayCluster, new: Resolution) -> str:
    if cluster.spec.suspend:
        return "spec.suspend is true: no node runs, the values are taken when it resumes"
    if new.missing:
        return f"running nodes go on, no node starts until it is there ({'; '.join(new.missing)})"
    if cluster.upgrade_type is ClusterUpgradeType.RECREATE:
        return "spec.upgradeStrategy.type is Recreate: the cluster is deleted and created anew"
    return (
        "spec.upgradeStrategy.type is None: running nodes keep the values they started with,"
        " nodes started from now take the new ones"
    )
