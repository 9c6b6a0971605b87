"""Kubernetes-shaped objects for ``get raycluster|pods|services``, built from observations.

The controller writes them to the store each time they change, so the API answers ``get``
from the store without touching a cluster.
"""

from __future__ import annotations

from typing import Any

from rayservice.spec.events import ObjectKind
from rayservice.spec.observed import FrontSpec, NodePhase, NodeRole, ObservedCluster
from rayservice.spec.quantities import format_memory
from rayservice.spec.status import rfc3339
from rayservice.spec.vocabulary import ConditionType
from rayservice.store.base import View

SERVE_PORT_NAME = "serve"
DASHBOARD_PORT_NAME = "dashboard"


def _meta(name: str, namespace: str, created: float, owner: str) -> dict[str, Any]:
    return {
        "name": name,
        "namespace": namespace,
        "creationTimestamp": rfc3339(created),
        "labels": {"ray.io/serve": owner.split("/", 1)[1]},
    }


def cluster_view(namespace: str, owner: str, cluster: ObservedCluster, desired: int) -> View:
    workers = cluster.workers
    available = [w for w in workers if w.phase is NodePhase.RUNNING]
    doc = {
        "apiVersion": "ray.io/v1",
        "kind": ObjectKind.RAY_CLUSTER,
        "metadata": _meta(cluster.name, namespace, cluster.created_at, owner),
        "status": {
            "state": "ready" if cluster.head_ready else "",
            "desiredWorkerReplicas": desired,
            "availableWorkerReplicas": len(available),
            "desiredCPU": f"{sum(n.num_cpus for n in cluster.nodes):g}",
            "desiredMemory": format_memory(sum(n.memory_bytes for n in cluster.nodes)),
            "desiredGPU": f"{sum(n.num_gpus for n in cluster.nodes):g}",
            "head": {"podName": cluster.head.name if cluster.head else ""},
            "endpoints": {"dashboard": cluster.dashboard_url},
        },
    }
    return View(ObjectKind.RAY_CLUSTER, namespace, cluster.name, owner, doc)


def pod_views(namespace: str, owner: str, cluster: ObservedCluster) -> list[View]:
    views = []
    for node in cluster.nodes:
        # the head is ready when its dashboard answers; a worker only with a healthy Serve proxy
        ready = (
            cluster.head_ready and node.phase is NodePhase.RUNNING
            if node.role is NodeRole.HEAD
            else node.proxy_ready
        )
        doc = {
            "apiVersion": "v1",
            "kind": ObjectKind.POD,
            "metadata": {
                **_meta(node.name, namespace, node.started_at, owner),
                "labels": {
                    "ray.io/cluster": cluster.name,
                    "ray.io/node-type": node.role.value,
                    "ray.io/group": node.group,
                    "ray.io/is-ray-node": "yes",
                },
            },
            "status": {
                "phase": node.phase.value,
                "conditions": [{"type": ConditionType.READY, "status": str(ready)}],
                "containerStatuses": [
                    {"name": "ray", "ready": ready, "restartCount": node.restarts}
                ],
                "serveProxy": {"port": node.proxy_port, "healthy": node.proxy_ready},
            },
        }
        views.append(View(ObjectKind.POD, namespace, node.name, owner, doc))
    return views


def service_views(namespace: str, owner: str, front: FrontSpec, created: float) -> list[View]:
    name = owner.split("/", 1)[1]
    serve_svc = f"{name}-serve-svc"
    head_svc = f"{name}-head-svc"
    return [
        View(
            ObjectKind.SERVICE,
            namespace,
            serve_svc,
            owner,
            _service(
                serve_svc,
                namespace,
                owner,
                created,
                SERVE_PORT_NAME,
                front.serve_port,
                [b.name for b in front.serve_backends],
            ),
        ),
        View(
            ObjectKind.SERVICE,
            namespace,
            head_svc,
            owner,
            _service(
                head_svc,
                namespace,
                owner,
                created,
                DASHBOARD_PORT_NAME,
                front.dashboard_port,
                [front.dashboard_backend.name] if front.dashboard_backend else [],
            ),
        ),
    ]


def _service(
    name: str,
    namespace: str,
    owner: str,
    created: float,
    port_name: str,
    port: int,
    backends: list[str],
) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": ObjectKind.SERVICE,
        "metadata": _meta(name, namespace, created, owner),
        "spec": {
            "type": "ClusterIP",
            "clusterIP": "127.0.0.1",
            "ports": [{"name": port_name, "port": port, "protocol": "TCP"}],
        },
        "status": {"backends": backends},
    }
