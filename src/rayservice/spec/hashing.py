"""Fingerprints that tell the planner which kind of change a new spec brings.

Like KubeRay, a change of the cluster spec means a new cluster, but scaling fields do not count:
changing ``replicas``, the replica bounds, ``workersToDelete`` or ``suspend`` is done in place
(and a standalone RayCluster's ``upgradeStrategy`` says how to apply a change, it is none).
Hashes are taken over canonical JSON that includes default values, so writing a default
explicitly and leaving it out give the same hash. Fields modelled after the first release are
left out of the hash while they are None (:data:`FIELDS_ADDED_LATER`), so that modelling one
more field never changes the hash of a spec that does not use it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from rayservice.spec.manifest import RayClusterSpec

HASH_LENGTH = 16
SCALING_FIELDS_OF_GROUP = frozenset(
    {"replicas", "minReplicas", "maxReplicas", "scaleStrategy", "suspend"}
)
SCALING_FIELDS_OF_CLUSTER = frozenset({"suspend", "upgradeStrategy"})
FIELDS_ADDED_LATER = frozenset(
    {
        "authOptions",
        "headServiceAnnotations",
        "historyServerOptions",
        "managedBy",
        "networkPolicy",
        "tlsOptions",
        "gcsFaultToleranceOptions.redisUsername",
        "gcsFaultToleranceOptions.storage",
        "headGroupSpec.headService",
        "headGroupSpec.ingressOptions",
        "headGroupSpec.labels",
        "headGroupSpec.resources",
        "workerGroupSpecs[].idleTimeoutSeconds",
        "workerGroupSpecs[].labels",
        "workerGroupSpecs[].priority",
        "workerGroupSpecs[].resources",
    }
)
"""Paths (in a cluster spec; ``[]`` stands for every item of a list) of the fields the first
release did not model. It hashed what the user wrote there, as written: such a field counts
only when set, and inside it only what is set counts (None values are the model's, not the
user's)."""
FREEFORM_BEFORE = frozenset({"autoscalerOptions", "gcsFaultToleranceOptions.redisPassword"})
"""Paths of fields that were free-form mappings before they were modelled: inside them too,
only what is set counts."""


def cluster_spec_hash(spec: RayClusterSpec) -> str:
    """Hash of everything in a cluster spec that needs a new cluster when it changes."""
    return _digest(_without_scaling(spec))


def serve_config_hash(config: Mapping[str, Any]) -> str:
    """Hash of a parsed Serve config; key order and formatting do not matter."""
    return _digest(config)


def is_worker_group_append(old: RayClusterSpec, new: RayClusterSpec) -> bool:
    """True when ``new`` is ``old`` plus one or more worker groups added at the end.

    Scaling fields are ignored on both sides, so an append may come with replica changes.
    """
    old_shape, new_shape = _without_scaling(old), _without_scaling(new)
    old_groups = old_shape.pop("workerGroupSpecs")
    new_groups = new_shape.pop("workerGroupSpecs")
    return (
        old_shape == new_shape
        and len(new_groups) > len(old_groups)
        and new_groups[: len(old_groups)] == old_groups
    )


def _without_scaling(spec: RayClusterSpec) -> dict[str, Any]:
    shape = _drop(_as_hashed(spec.model_dump(mode="json"), ""), SCALING_FIELDS_OF_CLUSTER)
    shape["workerGroupSpecs"] = [
        _drop(group, SCALING_FIELDS_OF_GROUP) for group in shape["workerGroupSpecs"]
    ]
    return shape


def _as_hashed(value: Any, path: str) -> Any:
    """``value`` (at ``path`` in a dumped cluster spec) without the None values of the fields
    a previous release did not model, nor any None inside them."""
    if isinstance(value, list):
        return [_as_hashed(item, f"{path}[]") for item in value]
    if not isinstance(value, dict):
        return value
    kept = {}
    for key, item in value.items():
        child = f"{path}.{key}" if path else key
        if child in FREEFORM_BEFORE:
            kept[key] = _without_none(item)
        elif child in FIELDS_ADDED_LATER:
            if item is not None:
                kept[key] = _without_none(item)
        else:
            kept[key] = _as_hashed(item, child)
    return kept


def _without_none(value: Any) -> Any:
    if isinstance(value, list):
        return [_without_none(item) for item in value]
    if isinstance(value, dict):
        return {key: _without_none(item) for key, item in value.items() if item is not None}
    return value


def _drop(fields: dict[str, Any], names: frozenset[str]) -> dict[str, Any]:
    return {name: value for name, value in fields.items() if name not in names}


def _digest(value: object) -> str:
    canonical = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()[:HASH_LENGTH]
