"""The Kubernetes Services in front of a RayService's clusters.

``<name>-head-svc`` selects the active cluster's head pod; ``<name>-serve-svc`` selects the
active cluster's pods labelled ``ray.io/serve: "true"`` (workers whose readiness probe passes, and
the head while its Serve proxy answers): moving a service to another cluster changes the
``ray.io/cluster`` of both selectors, once. For incremental upgrades each cluster also gets a serve
Service of its own, ``<cluster>-serve-svc``, for the weighted route to point at.

Names, ports and types follow the same rules as on the local backend
(:mod:`rayservice.spec.service_exposure`): the serve Service's port is the one
``spec.serveService`` asks for, else the head container's port named ``serve``, else 8000; the
head Service has the head container's ports as KubeRay's has (its defaults when the container
names none), and the metrics and dashboard ports unless the container has them already.
"""

from __future__ import annotations

import copy
from typing import Any

from rayservice.kubernetes.labels import Label, NodeType, Serving
from rayservice.kubernetes.raycluster import labels_of
from rayservice.spec.manifest import KubernetesObject, RayService, head_container_ports
from rayservice.spec.service_exposure import (
    FIRST_DASHBOARD_PORT,
    FIRST_SERVE_PORT,
    port_ask,
    proxy_port,
    service_type,
)
from rayservice.spec.vocabulary import ServicePort

# KubeRay's head Service ports for a head container that names none (its metrics port always)
DEFAULT_HEAD_PORTS = {
    "client": 10001,
    "gcs-server": 6379,
    ServicePort.DASHBOARD.value: FIRST_DASHBOARD_PORT,
    "metrics": 8080,
    ServicePort.SERVE.value: FIRST_SERVE_PORT,
}
_METRICS = "metrics"


def _service(
    owner: RayService,
    name: str,
    selector: dict[str, str],
    ports: list[dict[str, Any]],
    kind: ServicePort,
) -> KubernetesObject:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": name,
            "namespace": owner.metadata.namespace,
            "labels": labels_of(owner),
        },
        "spec": {"type": service_type(owner, kind)[0].value, "selector": selector, "ports": ports},
    }


def _proxy_port(service: RayService) -> int:
    return proxy_port(service.spec.serve_config())


def head_ports(service: RayService) -> list[dict[str, Any]]:
    """The head Service's ports: the head container's (an unnamed one as ``<port>-port``, as
    KubeRay names it), else KubeRay's defaults; the metrics and dashboard ports are added
    when the container has neither their name nor their number (a Service takes each port
    once)."""
    given = head_container_ports(service.spec.rayClusterConfig)
    named = {(name or f"{port}-port"): port for name, port in given} or dict(DEFAULT_HEAD_PORTS)
    for name, port in (
        (_METRICS, DEFAULT_HEAD_PORTS[_METRICS]),
        (ServicePort.DASHBOARD.value, FIRST_DASHBOARD_PORT),
    ):
        if name not in named and port not in named.values():
            named[name] = port
    return [
        {"name": name, "port": port, "targetPort": port, "protocol": "TCP"}
        for name, port in named.items()
    ]


def head_service(service: RayService, cluster: str) -> KubernetesObject:
    """``<name>-head-svc``: the head pod of the active cluster ``cluster``."""
    selector: dict[str, str] = {Label.CLUSTER: cluster, Label.NODE_TYPE: NodeType.HEAD}
    return _service(
        service, service.head_service_name, selector, head_ports(service), ServicePort.DASHBOARD
    )


def serve_port(service: RayService) -> int:
    """The serve Service's port, derived as on the local backend (with no port search: each
    Kubernetes Service has an address of its own)."""
    return port_ask(service, ServicePort.SERVE).start


def _serve_ports(service: RayService) -> list[dict[str, Any]]:
    return [
        {
            "name": ServicePort.SERVE.value,
            "port": serve_port(service),
            "targetPort": _proxy_port(service),
            "protocol": "TCP",
        }
    ]


def serving_pods(cluster: str) -> dict[str, str]:
    """The selector of the pods of ``cluster`` that may take Serve traffic."""
    return {Label.CLUSTER: cluster, Label.SERVE: Serving.YES}


def serve_service(service: RayService, cluster: str) -> KubernetesObject:
    """``<name>-serve-svc``: the serving pods of the active cluster ``cluster``. What
    ``spec.serveService`` says is kept (its labels, annotations, ports and other fields); the
    name, namespace and selector are ours."""
    selector = serving_pods(cluster)
    built = _service(
        service, service.serve_service_name, selector, _serve_ports(service), ServicePort.SERVE
    )
    given = copy.deepcopy(service.spec.serveService or {})
    metadata = service.serve_service_metadata
    built["metadata"]["labels"] = {**metadata["labels"], **built["metadata"]["labels"]}
    if metadata["annotations"]:
        built["metadata"]["annotations"] = metadata["annotations"]
    given_spec = given.get("spec")
    spec: dict[str, Any] = given_spec if isinstance(given_spec, dict) else {}
    built["spec"] = {**spec, **{k: v for k, v in built["spec"].items() if k not in spec}}
    built["spec"]["selector"] = selector
    for port in built["spec"]["ports"]:
        port.setdefault("targetPort", _proxy_port(service))
    return built


def cluster_serve_service_name(cluster: str) -> str:
    return f"{cluster}-serve-svc"


def cluster_serve_service(service: RayService, cluster: str) -> KubernetesObject:
    """``<cluster>-serve-svc``: the serving pods of one cluster, for a weighted route."""
    name = cluster_serve_service_name(cluster)
    built = _service(service, name, serving_pods(cluster), _serve_ports(service), ServicePort.SERVE)
    built["spec"]["type"] = "ClusterIP"  # reached through the Gateway only
    return built
