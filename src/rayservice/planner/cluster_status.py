"""What a Ray cluster's status says, from what was observed of it. Pure.

A standalone RayCluster's status and the clusters ``get raycluster`` lists under a RayService
are the same thing seen twice, so both are derived here: worker counts, the resources the nodes
offer, the state (``ready`` once the head and every wanted worker run), the head's conditions
and where its ports are.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from rayservice.planner.record import ServiceRecord
from rayservice.spec.autoscaling import ScaleRequest, autoscaling_of, scaled_replicas
from rayservice.spec.manifest import RayClusterSpec, WorkerGroupSpec
from rayservice.spec.observed import NodePhase, ObservedCluster
from rayservice.spec.quantities import format_memory
from rayservice.spec.status import Condition, HeadInfo, RayClusterStatus, set_condition
from rayservice.spec.vocabulary import (
    LOCALHOST,
    ClusterState,
    ConditionReason,
    ConditionStatus,
    ConditionType,
)


@dataclass(frozen=True)
class WorkerBounds:
    desired: int
    minimum: int
    maximum: int

    @classmethod
    def of(cls, spec: RayClusterSpec, scale: ScaleRequest | None = None) -> WorkerBounds:
        """The bounds of ``spec``; desired is what Ray's autoscaler asked (``scale``) when
        the spec runs it."""
        groups: list[WorkerGroupSpec] = [g for g in spec.workerGroupSpecs if not g.suspend]
        asked = scale if autoscaling_of(spec) is not None else None
        return cls(
            desired=sum(scaled_replicas(g, asked) for g in groups),
            minimum=sum(g.minReplicas for g in groups),
            maximum=sum(g.maxReplicas * g.numOfHosts for g in groups),
        )


def observed_status(cluster: ObservedCluster, bounds: WorkerBounds) -> RayClusterStatus:
    """Counts, resources, state and the head of a running cluster (no conditions)."""
    running = [w for w in cluster.workers if w.phase is NodePhase.RUNNING]
    head = cluster.head
    ready = cluster.head_ready and len(running) >= bounds.desired
    return RayClusterStatus(
        state=ClusterState.READY if ready else ClusterState.PROVISIONING,
        desiredWorkerReplicas=bounds.desired,
        availableWorkerReplicas=len(running),
        readyWorkerReplicas=len(running),
        minWorkerReplicas=bounds.minimum,
        maxWorkerReplicas=min(bounds.maximum, 2**31 - 1),
        desiredCPU=f"{sum(n.num_cpus for n in cluster.nodes):g}",
        desiredMemory=format_memory(sum(n.memory_bytes for n in cluster.nodes)),
        desiredGPU=f"{sum(n.num_gpus for n in cluster.nodes):g}",
        head=HeadInfo(podName=head.name if head else "", podIP=LOCALHOST),
        endpoints=_ports(
            {
                "dashboard": urlsplit(cluster.dashboard_url).port or 0,
                "gcs-server": cluster.gcs_port,
                "client": cluster.client_port,
            }
        ),
    )


def _ports(ports: dict[str, int]) -> dict[str, str]:
    return {name: str(port) for name, port in sorted(ports.items()) if port}


def front_endpoints(cluster: ObservedCluster | None, record: ServiceRecord) -> dict[str, str]:
    """Port names of ``<name>-head-svc`` as KubeRay names them, with the ports they are on
    here: the dashboard and serve fronts, and the head's own GCS and client ports."""
    ports = {"dashboard": record.dashboard_port, "serve": record.serve_port}
    if cluster is not None:
        ports |= {"gcs-server": cluster.gcs_port, "client": cluster.client_port}
    return _ports(ports)


def cluster_conditions(
    previous: list[Condition],
    status: RayClusterStatus,
    head_ready: bool,
    now_rfc3339: str,
    generation: int,
) -> list[Condition]:
    """HeadPodReady and RayClusterProvisioned, which stays true once every node first ran."""
    head = (
        (ConditionStatus.TRUE, ConditionReason.HEAD_POD_RUNNING_AND_READY, "the head is ready")
        if head_ready
        else (ConditionStatus.FALSE, ConditionReason.HEAD_POD_NOT_READY, "the head is starting")
    )
    conditions = set_condition(
        previous, ConditionType.HEAD_POD_READY, *head, now_rfc3339, generation
    )
    provisioned = next(
        (c for c in previous if c.type == ConditionType.RAY_CLUSTER_PROVISIONED), None
    )
    if provisioned is not None and provisioned.status == ConditionStatus.TRUE:
        return conditions
    fact = (
        (ConditionStatus.TRUE, ConditionReason.ALL_PODS_READY, "all nodes ran and were ready")
        if status.state == ClusterState.READY
        else (
            ConditionStatus.FALSE,
            ConditionReason.PODS_PROVISIONING,
            f"{status.availableWorkerReplicas} of {status.desiredWorkerReplicas} worker(s) run",
        )
    )
    return set_condition(
        conditions, ConditionType.RAY_CLUSTER_PROVISIONED, *fact, now_rfc3339, generation
    )
