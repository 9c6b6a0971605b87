"""Fingerprints that tell the planner which kind of change a new spec brings.

Like KubeRay, a change of the cluster spec means a new cluster, but scaling fields do not count:
changing ``replicas``, the replica bounds, ``workersToDelete`` or ``suspend`` is done in place
(and a standalone RayCluster's ``upgradeStrategy`` says how to apply a change, it is none).
Hashes are taken over canonical JSON that includes default values, so writing a default
explicitly and leaving it out give the same hash.
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
    shape = _drop(spec.model_dump(mode="json"), SCALING_FIELDS_OF_CLUSTER)
    shape["workerGroupSpecs"] = [
        _drop(group, SCALING_FIELDS_OF_GROUP) for group in shape["workerGroupSpecs"]
    ]
    return shape


def _drop(fields: dict[str, Any], names: frozenset[str]) -> dict[str, Any]:
    return {name: value for name, value in fields.items() if name not in names}


def _digest(value: object) -> str:
    canonical = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()[:HASH_LENGTH]
