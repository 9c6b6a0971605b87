"""Ray's own autoscaler on a cluster (``enableInTreeAutoscaling``): its settings from the manifest,
and the scale it asks for. Pure.

On Kubernetes, KubeRay runs Ray's autoscaler beside the head; its node provider patches the
RayCluster's ``replicas`` and ``workersToDelete`` and the operator makes or removes the pods.
Here the same autoscaler (Ray's monitor) runs beside each cluster's head with a node provider of
ours that asks the controller, through its API, for a number of workers per group and for given
workers to go: the controller stays the only one that starts and stops nodes, and records it.

Who wins: with autoscaling on, the autoscaler's count, kept per cluster apart from the manifest
(as KubeRay's autoscaler overwrites ``replicas``); a group's ``replicas`` (else ``minReplicas``)
is the count a cluster starts with. Every count stays within ``minReplicas`` and
``maxReplicas``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from rayservice.spec.cluster_request import Autoscaling
from rayservice.spec.errors import SpecProblem
from rayservice.spec.manifest import RayClusterSpec, WorkerGroupSpec, node_groups, replicas_of
from rayservice.spec.paths import field_path

DEFAULT_IDLE_TIMEOUT_SECONDS = 60.0  # KubeRay's default: a minute
# KubeRay's mapping of upscalingMode to Ray's upscaling_speed (Default and Aggressive: unlimited)
UPSCALING_SPEED = {"Default": 1000.0, "Aggressive": 1000.0, "Conservative": 1.0}
MAX_WORKERS_ASKED = 1000  # more than one machine runs, less than an accident
AUTOSCALER_SETTINGS = frozenset({"idleTimeoutSeconds", "upscalingMode", "version"})
"""The fields of ``autoscalerOptions`` that set the autoscaler (the rest are its container's)."""
V2_ENV = "RAY_enable_autoscaler_v2"
"""The variable that switches Ray's autoscaler to v2, which is not supported here yet."""


def autoscaling_of(spec: RayClusterSpec) -> Autoscaling | None:
    """The autoscaler's settings when the spec asks for Ray's autoscaler, else None."""
    if not spec.enableInTreeAutoscaling:
        return None
    options = spec.autoscalerOptions
    idle = options.idleTimeoutSeconds if options is not None else None
    mode = (options.upscalingMode if options is not None else None) or "Default"
    return Autoscaling(
        idle_timeout_seconds=float(DEFAULT_IDLE_TIMEOUT_SECONDS if idle is None else idle),
        upscaling_speed=UPSCALING_SPEED[mode],
    )


class ScaleRequest(BaseModel):
    """What a cluster's autoscaler last asked for: workers per group, and workers to remove
    (by pod name) that it found idle. On the wire (the controller's API) as
    ``{"replicas": {...}, "workersToDelete": [...]}``, KubeRay's field names."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    replicas: dict[str, Annotated[int, Field(ge=0, le=MAX_WORKERS_ASKED)]] = Field(
        default_factory=dict
    )
    workers_to_delete: tuple[str, ...] = Field(default=(), alias="workersToDelete")


class AutoscaledNode(BaseModel):
    """A node as the autoscaler's node provider sees it: its pod name, group, whether it is
    the head, its Ray node id once it registered ("" before) and its phase (NodePhase)."""

    name: str
    group: str
    head: bool
    rayNodeId: str = ""
    phase: str


class AutoscalingState(BaseModel):
    """What the controller tells a cluster's autoscaler: its nodes and its last request."""

    nodes: list[AutoscaledNode]
    scale: ScaleRequest
    rayStatus: str = ""  # what ``ray status`` prints, when asked for


def scaled_replicas(group: WorkerGroupSpec, asked: ScaleRequest | None) -> int:
    """Workers ``group`` should have: what the autoscaler asked (when it asked for this
    group), else ``replicas`` (else ``minReplicas``), kept within the group's bounds."""
    if asked is None or group.groupName not in asked.replicas:
        return replicas_of(group)
    return max(group.minReplicas, min(asked.replicas[group.groupName], group.maxReplicas))


def problems(spec: RayClusterSpec, source: str, prefix: str) -> Iterator[SpecProblem]:
    """What Ray's autoscaler refuses on any backend: an unknown ``upscalingMode`` or a
    negative idle timeout."""
    options = spec.autoscalerOptions
    if options is None:
        return
    options_path = f"{prefix}.autoscalerOptions"
    if options.upscalingMode is not None and options.upscalingMode not in UPSCALING_SPEED:
        yield SpecProblem(
            source,
            f"{options_path}.upscalingMode",
            f"unknown mode {options.upscalingMode!r}",
            ", ".join(UPSCALING_SPEED),
        )
    if options.idleTimeoutSeconds is not None and options.idleTimeoutSeconds < 0:
        yield SpecProblem(
            source,
            f"{options_path}.idleTimeoutSeconds",
            f"must not be negative (got {options.idleTimeoutSeconds})",
            "seconds, 0 or more",
        )


def local_problems(spec: RayClusterSpec, source: str, prefix: str) -> Iterator[SpecProblem]:
    """What Ray's autoscaler cannot run with on this machine (KubeRay's operator runs both on
    Kubernetes): a worker group without ``maxReplicas``, and autoscaler v2 (``version: v2``, or
    ``RAY_enable_autoscaler_v2`` set in a container's or the autoscaler's environment), which
    is not supported here yet."""
    if spec.enableInTreeAutoscaling:
        for index, workers in enumerate(spec.workerGroupSpecs):
            if "maxReplicas" not in workers.model_fields_set:
                yield SpecProblem(
                    source,
                    field_path(prefix, "workerGroupSpecs", index, "maxReplicas"),
                    "is required with enableInTreeAutoscaling: without it Ray's autoscaler may"
                    " start nodes without bound on this machine",
                    "the most workers the group may have",
                )
    options = spec.autoscalerOptions
    options_path = f"{prefix}.autoscalerOptions"
    if options is not None:
        if options.version is not None and options.version != "v1":
            yield SpecProblem(
                source,
                f"{options_path}.version",
                f"Ray's autoscaler {options.version} is not supported here",
                "v1, or leave it out",
            )
        for index, variable in enumerate(options.env or []):
            if _asks_for_v2(variable):
                yield _v2_problem(source, field_path(options_path, "env", index))
    for relative_path, group in node_groups(spec):
        pod = group.template.get("spec")
        containers = pod.get("containers") if isinstance(pod, dict) else None
        for c_index, container in enumerate(containers if isinstance(containers, list) else []):
            env = container.get("env") if isinstance(container, dict) else None
            for index, variable in enumerate(env if isinstance(env, list) else []):
                if _asks_for_v2(variable):
                    path = field_path(
                        f"{prefix}.{relative_path}.template.spec.containers", c_index, "env", index
                    )
                    yield _v2_problem(source, path)


def _asks_for_v2(variable: object) -> bool:
    if not isinstance(variable, Mapping) or variable.get("name") != V2_ENV:
        return False
    return str(variable.get("value", "")).strip().lower() not in ("", "0", "false")


def _v2_problem(source: str, path: str) -> SpecProblem:
    return SpecProblem(
        source,
        path,
        f"{V2_ENV} asks for Ray's autoscaler v2, which is not supported here yet",
        f"leave {V2_ENV} out (Ray's autoscaler v1 runs with enableInTreeAutoscaling)",
    )
