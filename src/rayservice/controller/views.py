"""Kubernetes-shaped objects for ``get raycluster|pods|services``, built from observations.

The controller writes them to the store each time they change, so the API answers ``get``
from the store without touching a cluster.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from rayservice.planner.pod_readiness import (
    READINESS_CHECK,
    is_ready,
    not_ready_reason,
    replicas_on,
)
from rayservice.planner.record import PodReadiness
from rayservice.spec.events import ObjectKind
from rayservice.spec.observed import (
    FrontSpec,
    NodeRole,
    ObservedCluster,
    ObservedNode,
    ServeState,
)
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
    namespace: str,
    owner: str,
    cluster: ObservedCluster,
    serves: bool,
    serve: ServeState | None,
    readiness: Mapping[str, PodReadiness],
) -> list[View]:
    """The nodes as pods, with what ``describe pod`` shows: readiness (``serves``: of a
    RayService, see :mod:`rayservice.planner.pod_readiness`) with its reason and since when,
    the node's resources, ports, Serve replicas and logs."""
    views = []
    for node in cluster.nodes:
        ready = is_ready(node, cluster, serves)
        known = readiness.get(node.name)
        since = known.since if known is not None and known.ready == ready else node.started_at
        condition: dict[str, Any] = {
            "type": ConditionType.READY,
            "status": str(ready),
            "lastTransitionTime": rfc3339(since),
        }
        if not ready:
            condition["message"] = not_ready_reason(node, cluster, serve, serves)
        container: dict[str, Any] = {"name": "ray", "ready": ready, "restartCount": node.restarts}
        if node.last_words:
            container["lastState"] = {
                "terminated": {"reason": "Exited", "message": node.last_words}
            }
        meta = _meta(node.name, namespace, node.started_at, owner)
        doc = {
            "apiVersion": "v1",
            "kind": ObjectKind.POD,
            "metadata": {
                **meta,
                "labels": {
                    **meta["labels"],
                    "ray.io/cluster": cluster.name,
                    "ray.io/node-type": node.role.value,
                    "ray.io/group": node.group,
                    "ray.io/is-ray-node": "yes",
                },
            },
            "spec": {"resources": _resources(node), "ports": _ports(node, cluster)},
            "status": {
                "phase": node.phase.value,
                "conditions": [condition],
                "containerStatuses": [container],
                "serveProxy": {
                    "port": node.proxy_port,
                    "healthy": node.proxy_ready,
                    "check": READINESS_CHECK if serves else "",
                    "answer": node.proxy_answer,
                },
                "rayNodeId": node.node_id,
                "serveReplicas": [
                    {"application": app, "deployment": deployment, "state": state}
                    for app, deployment, state in replicas_on(node, serve)
                ],
                "logs": list(node.log_files),
            },
        }
        views.append(View(ObjectKind.POD, namespace, node.name, owner, doc))
    return views


def _resources(node: ObservedNode) -> dict[str, Any]:
    """The node's logical resources, as Ray counts them."""
    return {
        "cpu": node.num_cpus,
        "memory": node.memory_bytes,
        "gpu": node.num_gpus,
        **dict(node.custom_resources),
    }


def _ports(node: ObservedNode, cluster: ObservedCluster) -> dict[str, int]:
    ports = {"serve-proxy": node.proxy_port}
    if node.role is NodeRole.HEAD:
        dashboard = urlsplit(cluster.dashboard_url).port or 0
        ports = {"gcs": cluster.gcs_port, "dashboard": dashboard, **ports}
    return ports


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
