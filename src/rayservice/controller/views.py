"""Kubernetes-shaped objects for ``get raycluster|pods|services``, built from observations.

The controller writes them to the store each time they change, so the API answers ``get``
from the store without touching a cluster.
"""

from __future__ import annotations

import signal
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

from rayservice.planner.pod_readiness import (
    is_ready,
    not_ready_reason,
    readiness_check,
    replicas_on,
)
from rayservice.planner.record import PodReadiness, ServiceRecord
from rayservice.spec.addresses import reachable_from_here
from rayservice.spec.events import ObjectKind
from rayservice.spec.manifest import Manifest, RayService
from rayservice.spec.observed import (
    Backend,
    FrontState,
    NodePhase,
    NodeRole,
    ObservedCluster,
    ObservedNode,
    ServeState,
)
from rayservice.spec.service_exposure import service_type
from rayservice.spec.status import RayClusterStatus, rfc3339
from rayservice.spec.text import headline
from rayservice.spec.vocabulary import LOCALHOST, STANDALONE_ROLE, ConditionType, ServicePort
from rayservice.store.base import View


def _meta(name: str, namespace: str, created: float, owner: str) -> dict[str, Any]:
    return {
        "name": name,
        "namespace": namespace,
        "creationTimestamp": rfc3339(created),
        "labels": {"ray.io/serve": owner.split("/", 1)[1]},
    }


def cluster_view(
    namespace: str,
    owner: str,
    cluster: ObservedCluster,
    status: RayClusterStatus,
    role: str,
    serve: ServeState | None,
) -> View:
    """The cluster with its KubeRay status and what ``describe raycluster`` adds: its role
    for the owner, its node groups as they run, and the Serve applications on it."""
    serves = role != STANDALONE_ROLE
    groups: dict[str, dict[str, Any]] = {}
    for node in cluster.nodes:
        group = groups.setdefault(
            node.group,
            {"name": node.group, "nodes": 0, "ready": 0, "resources": _resources(node)},
        )
        group["nodes"] += 1
        group["ready"] += is_ready(node, cluster, serves)
    doc = {
        "apiVersion": "ray.io/v1",
        "kind": ObjectKind.RAY_CLUSTER,
        "metadata": _meta(cluster.name, namespace, cluster.created_at, owner),
        "status": {
            **status.model_dump(mode="json"),
            "role": role,
            "groups": list(groups.values()),
            "serveApplications": {app.name: app.status for app in serve.apps} if serve else {},
            # Ray's autoscaler beside the head (enableInTreeAutoscaling): whether it runs
            **(
                {"autoscaler": {"running": cluster.autoscaler_running}}
                if cluster.autoscaler_running is not None
                else {}
            ),
        },
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
            condition["message"] = (
                known.reason
                if known is not None and known.reason
                else not_ready_reason(node, cluster, serve, serves)
            )
        container: dict[str, Any] = {"name": "ray", "ready": ready, "restartCount": node.restarts}
        if node.phase is NodePhase.FAILED or node.restarts:
            container["lastState"] = {"terminated": _terminated(node)}
        by_proxy = serves and node.role is NodeRole.WORKER
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
                "serveProxy": {"port": node.proxy_port, "healthy": node.proxy_ready},
                "readinessCheck": {
                    "check": readiness_check(node, serves),
                    "answer": node.proxy_answer if by_proxy else "",
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


def _terminated(node: ObservedNode) -> dict[str, Any]:
    """How the node's last process ended, as a container's ``lastState.terminated``."""
    code = node.last_exit_code
    terminated: dict[str, Any] = {"message": headline(node.last_words)}
    if code is None:
        terminated["reason"] = "exit status not known (it was started by an earlier controller)"
    elif code < 0:
        try:
            killer = signal.Signals(-code).name
        except ValueError:  # a real-time signal, which has no name
            killer = f"signal {-code}"
        terminated["reason"] = f"killed by {killer}"
        terminated["exitCode"] = 128 - code  # as a shell and Kubernetes report it
    else:
        terminated["reason"] = "Completed" if code == 0 else "Error"
        terminated["exitCode"] = code
    return terminated


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


def cluster_roles(
    record: ServiceRecord, clusters: Iterable[str], standalone: bool
) -> dict[str, str]:
    """What each of ``clusters`` is to its owner (a RayService, or a standalone RayCluster),
    in a few words, from the owner's record."""
    slots = {slot.name: slot for slot in (record.active, record.pending) if slot is not None}
    retiring = {r.name: r.delete_at for r in record.retiring}
    roles = {}
    for name in clusters:
        slot = slots.get(name)
        if standalone:
            roles[name] = STANDALONE_ROLE
        elif slot is not None:
            role = "active" if slot is record.active else "pending"
            if record.stepping:
                role += f", {slot.traffic_percent}% of traffic"
            roles[name] = role
        elif name in retiring:
            roles[name] = f"retiring, deleted at {rfc3339(retiring[name])}"
        elif name in record.rolled_back:
            roles[name] = "dropped by a rollback, being deleted"
        else:
            roles[name] = "no longer used, being deleted"
    return roles


def service_views(
    namespace: str,
    owner: Manifest,
    front: FrontState,
    created: float,
    roles: Mapping[str, str],
) -> list[View]:
    """The head Service, and the serve one when the front has one, named as KubeRay names
    them (a RayService's ``spec.serveService`` names its serve Service and gives it labels and
    annotations), each with its backends as the front sees them and what it selects
    (``roles``: each cluster of the owner, "active", "pending" or another word for what it is
    to the owner)."""
    key = owner.key
    spec = front.spec
    services: list[tuple[str, ServicePort, int, list[Backend | None], dict[str, dict[str, str]]]]
    services = [
        (owner.head_service_name, ServicePort.DASHBOARD, spec.dashboard_port,
         [spec.dashboard_backend], {})
    ]  # fmt: skip
    if spec.has_serve:
        extra = owner.serve_service_metadata if isinstance(owner, RayService) else {}
        services.insert(
            0,
            (owner.serve_service_name, ServicePort.SERVE, spec.serve_port,
             list(spec.serve_backends), extra),
        )  # fmt: skip
    addresses = {
        ServicePort.SERVE: spec.serve_address,
        ServicePort.DASHBOARD: spec.dashboard_address,
    }
    own_addresses = dict(front.service_addresses)
    views = []
    for service, port_name, port, backends, extra in services:
        present = [b for b in backends if b is not None]
        meta = _meta(service, namespace, created, key)
        meta["labels"] = {**extra.get("labels", {}), **meta["labels"]}  # ours win, as KubeRay's
        if extra.get("annotations"):
            meta["annotations"] = extra["annotations"]
        address = addresses[port_name]
        where: dict[str, Any] = (
            {"clusterIP": own_addresses[service]}  # an address of its own (Kubernetes)
            if service in own_addresses
            else {
                # where a client on this machine reaches it, and (when it listens elsewhere
                # than 127.0.0.1, as its type asked) the address it listens on
                "clusterIP": reachable_from_here(address),
                **({"externalIPs": [address]} if address != LOCALHOST else {}),
            }
        )
        doc = {
            "apiVersion": "v1",
            "kind": ObjectKind.SERVICE,
            "metadata": meta,
            "spec": {
                "type": service_type(owner, port_name)[0],
                **where,
                "ports": [{"name": port_name, "port": port, "protocol": "TCP"}],
                "selector": _selector(port_name, present, roles),
            },
            "status": {
                "backends": [_backend(b, port_name, front.healthy_backends) for b in present]
            },
        }
        views.append(View(ObjectKind.SERVICE, namespace, service, key, doc))
    return views


def _backend(backend: Backend, port_name: str, healthy: tuple[str, ...]) -> dict[str, Any]:
    """One server of the front: where, its weight, and its state (drained: sent nothing by
    choice; up or down: what the health check of a Serve proxy says)."""
    if backend.drained:
        state = "drained"
    elif port_name == ServicePort.DASHBOARD:
        state = "not checked"  # the front checks no dashboard; the head pod's readiness tells
    else:
        state = "up" if backend.name in healthy else "down"
    return {
        "name": backend.name,
        "address": f"{backend.host}:{backend.port}",
        "weight": backend.weight,
        "state": state,
    }


def _selector(port_name: str, backends: list[Backend], roles: Mapping[str, str]) -> str:
    """What the service sends to, in words: which nodes of which clusters."""
    what = (
        "the dashboard of the head" if port_name == ServicePort.DASHBOARD else "the Serve proxies"
    )
    clusters = [c for c in roles if any(b.name.startswith(f"{c}-") for b in backends)]
    if not clusters:
        return f"{what} of no cluster"
    named = " and ".join(f"cluster {c} ({roles[c]})" for c in clusters)
    return f"{what} of {named}"
