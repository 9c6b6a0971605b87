"""Kubernetes-shaped objects for ``get raycluster|pods|services``, built from observations.

The controller writes them to the store each time they change, so the API answers ``get``
from the store without touching a cluster.
"""

from __future__ import annotations

from typing import Any

from rayservice.spec.events import ObjectKind
from rayservice.spec.observed import FrontSpec, NodePhase, NodeRole, ObservedCluster
from rayservice.spec.status import RayClusterStatus, rfc3339
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


def cluster_view(
    namespace: str, owner: str, cluster: ObservedCluster, status: RayClusterStatus
) -> View:
    doc = {
        "apiVersion": "ray.io/v1",
        "kind": ObjectKind.RAY_CLUSTER,
        "metadata": _meta(cluster.name, namespace, cluster.created_at, owner),
        "status": status.model_dump(mode="json"),
    }
    return View(ObjectKind.RAY_CLUSTER, namespace, cluster.name, owner, doc)


def pod_views(
    namespace: str, owner: str, cluster: ObservedCluster, worker_needs_proxy: bool
) -> list[View]:
    """The nodes as pods. The head is ready when its dashboard answers; a worker of a
    RayService only with a healthy Serve proxy (it serves nothing else), a worker of a
    standalone RayCluster once it joined the cluster."""
    views = []
    for node in cluster.nodes:
        if node.role is NodeRole.HEAD:
            ready = cluster.head_ready and node.phase is NodePhase.RUNNING
        elif worker_needs_proxy:
            ready = node.proxy_ready
        else:
            ready = node.phase is NodePhase.RUNNING
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
    """``<name>-head-svc``, and ``<name>-serve-svc`` when the front has one."""
    name = owner.split("/", 1)[1]
    services = [
        (f"{name}-head-svc", DASHBOARD_PORT_NAME, front.dashboard_port, [front.dashboard_backend])
    ]
    if front.has_serve:
        services.insert(
            0, (f"{name}-serve-svc", SERVE_PORT_NAME, front.serve_port, list(front.serve_backends))
        )
    return [
        View(
            ObjectKind.SERVICE,
            namespace,
            service,
            owner,
            _service(
                service,
                namespace,
                owner,
                created,
                port_name,
                port,
                [b.name for b in backends if b is not None],
            ),
        )
        for service, port_name, port, backends in services
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
