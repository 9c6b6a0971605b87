"""ClusterRequest: what a cluster provider is asked to make exist.

It is the RayCluster spec reduced to what a backend needs (node groups, their counts, resources,
extra ``ray start`` parameters and environment), computed purely by the planner. The local
backend turns it into process trees; the Kubernetes backend turns it into a RayCluster object,
for which it also carries the cluster spec itself (pod templates intact), who owns it, and where
the nodes' Serve proxies listen.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from rayservice.spec.events import ObjectKind
from rayservice.spec.vocabulary import GcsBackend


class NodeGroupRequest(BaseModel):
    model_config = ConfigDict(frozen=True)

    group: str  # "headgroup" for the head
    replicas: int = 1
    num_cpus: float = 1.0
    num_gpus: float = 0.0
    memory_bytes: int | None = None
    custom_resources: dict[str, float] = Field(default_factory=dict)
    ray_start_params: dict[str, str] = Field(default_factory=dict)  # user-settable ones only
    env: dict[str, str] = Field(default_factory=dict)
    # ``ray start`` port options fixed by the user (a standalone RayCluster's head only)
    fixed_ports: dict[str, int] = Field(default_factory=dict)
    # the bounds Ray's autoscaler keeps the group in (workers only)
    min_replicas: int = 0
    max_replicas: int = 0


class FaultTolerance(BaseModel):
    """GCS fault tolerance: on a Redis (the user's at ``redis_address``, or with
    ``managed_redis`` one the backend runs itself), or in embedded RocksDB files that outlive
    the head's process (kept with the cluster, gone with it)."""

    model_config = ConfigDict(frozen=True)

    backend: GcsBackend = GcsBackend.REDIS
    managed_redis: bool = False
    redis_address: str = ""  # host:port or a redis:// URI; empty when managed
    redis_password: str | None = None
    storage_namespace: str


class Autoscaling(BaseModel):
    """Ray's own autoscaler runs beside the head (``enableInTreeAutoscaling``): how long a
    worker may idle before it goes, and how fast workers are added (Ray's
    ``upscaling_speed``)."""

    model_config = ConfigDict(frozen=True)

    idle_timeout_seconds: float
    upscaling_speed: float


class ClusterRequest(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    owner: str  # "<namespace>/<name>" of the RayService
    spec_hash: str
    head: NodeGroupRequest
    workers: tuple[NodeGroupRequest, ...] = ()
    workers_to_delete: tuple[str, ...] = ()
    fault_tolerance: FaultTolerance | None = None
    autoscaling: Autoscaling | None = None
    autoscaled_groups: tuple[str, ...] = ()  # groups whose count Ray's autoscaler asked for
    # for a backend that makes an object of its own of the cluster (Kubernetes): the spec as
    # JSON, the owner's kind, the labels and annotations a standalone RayCluster keeps, and
    # where the nodes' Serve proxies listen (None: a standalone RayCluster's Serve is the user's)
    cluster_spec: dict[str, Any] = Field(default_factory=dict)
    owner_kind: ObjectKind = ObjectKind.RAY_SERVICE
    owner_labels: dict[str, str] = Field(default_factory=dict)
    owner_annotations: dict[str, str] = Field(default_factory=dict)
    serve_proxy_port: int | None = None
    head_serves: bool = True  # False: excludeHeadPodFromServeSvc keeps the head out of serving

    @property
    def namespace(self) -> str:
        return self.owner.partition("/")[0]

    @property
    def owner_name(self) -> str:
        return self.owner.partition("/")[2]


def bounds_of(request: ClusterRequest) -> tuple[tuple[str, int, int], ...]:
    """Each worker group's (name, min, max): what Ray's autoscaler keeps the groups in."""
    return tuple((g.group, g.min_replicas, g.max_replicas) for g in request.workers)


def leaving_workers(
    members: Sequence[tuple[str, float]], replicas: int, to_delete: Collection[str]
) -> set[str]:
    """Which of a group's workers ``(name, started_at)`` go: the named ones (as KubeRay's
    ``workersToDelete``, whatever the count), then the newest of any surplus over
    ``replicas``; the provider starts new ones for what is missing after that."""
    named = {name for name, _ in members if name in to_delete}
    rest = sorted((m for m in members if m[0] not in to_delete), key=lambda m: m[1])
    surplus = max(0, len(rest) - replicas)
    return named | {name for name, _ in rest[len(rest) - surplus :]}
