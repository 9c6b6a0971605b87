"""The logical resources a Ray node announces, derived from its group's spec.

KubeRay derives a node's CPUs, GPUs and memory from the pod's container resources unless
``rayStartParams`` say otherwise; a local backend has no pods, so it needs the same answer
computed from the manifest alone. Keeping that rule here lets the planner, the provider and
status output agree on what each node offers.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from rayservice.spec.quantities import parse_cpu, parse_memory

CUSTOM_RESOURCES_HINT = 'a JSON object of resource names to amounts, e.g. {"TPU": 4}'
_RESERVED_CUSTOM_NAMES = {"CPU": "num-cpus", "GPU": "num-gpus", "memory": "memory"}
_MAX_JSON_DECODES = 2  # KubeRay samples wrap the JSON object in one extra pair of quotes
DEFAULT_NUM_CPUS = 1.0


@dataclass(frozen=True)
class NodeResources:
    num_cpus: float
    num_gpus: float = 0.0
    memory_bytes: int | None = None  # None: let Ray size memory from the machine
    custom: dict[str, float] = field(default_factory=dict)


def node_resources(
    ray_start_params: Mapping[str, str], template: Mapping[str, Any]
) -> NodeResources:
    """Resources of one node: ``ray start`` parameters first, then the first container's."""
    container = container_resources(template)
    num_cpus = _first_present(ray_start_params.get("num-cpus"), container.get("cpu"))
    num_gpus = _first_present(ray_start_params.get("num-gpus"), _gpu_quantity(container))
    memory = _first_present(ray_start_params.get("memory"), container.get("memory"))
    custom = ray_start_params.get("resources")
    return NodeResources(
        num_cpus=DEFAULT_NUM_CPUS if num_cpus is None else parse_cpu(num_cpus),
        num_gpus=0.0 if num_gpus is None else parse_cpu(num_gpus),
        memory_bytes=None if memory is None else parse_memory(memory),
        custom={} if custom is None else parse_custom_resources(custom),
    )


def container_resources(template: Mapping[str, Any]) -> dict[str, Any]:
    """The first container's resource amounts, a limit winning over a request of the same name."""
    containers = _mapping(template.get("spec")).get("containers")
    if not isinstance(containers, list) or not containers:
        return {}
    resources = _mapping(_mapping(containers[0]).get("resources"))
    return {**_mapping(resources.get("requests")), **_mapping(resources.get("limits"))}


def is_gpu_resource(name: str) -> bool:
    """Whether a container resource name counts GPUs (``nvidia.com/gpu``, ``amd.com/gpu``)."""
    return name.endswith("/gpu")


def parse_custom_resources(text: str) -> dict[str, float]:
    """Read the ``resources`` parameter: a JSON object, possibly wrapped in extra quotes."""
    value: object = text
    for _ in range(_MAX_JSON_DECODES):
        if not isinstance(value, str):
            break
        try:
            value = json.loads(value)
        except json.JSONDecodeError as error:
            raise ValueError(f"{text!r} is not valid JSON: {error.msg}") from error
    if not isinstance(value, dict):
        raise ValueError(f"{text!r} is not a JSON object of resource amounts")
    return {name: _custom_amount(name, amount) for name, amount in value.items()}


def _custom_amount(name: str, amount: object) -> float:
    if name in _RESERVED_CUSTOM_NAMES:
        raise ValueError(
            f"{name!r} cannot be a custom resource; use {_RESERVED_CUSTOM_NAMES[name]}"
        )
    if isinstance(amount, bool) or not isinstance(amount, int | float) or amount < 0:
        raise ValueError(f"resource {name!r} needs a non-negative number, got {amount!r}")
    return float(amount)


def _gpu_quantity(resources: Mapping[str, Any]) -> Any:
    return next((amount for name, amount in resources.items() if is_gpu_resource(name)), None)


def _first_present(*values: Any) -> Any:
    return next((value for value in values if value is not None), None)


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}
