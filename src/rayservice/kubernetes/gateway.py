"""Weighted traffic between two clusters on Kubernetes: a Gateway API ``Gateway`` and
``HTTPRoute`` per incrementally upgraded RayService.

Kubernetes Services cannot split traffic by weight, so a RayService whose upgrades are
``NewClusterWithIncrementalUpgrade`` is reached through a Gateway of the class its
``clusterUpgradeOptions.gatewayClassName`` names, whose route sends each cluster's share to that
cluster's own serve Service. The weights are the controller's traffic steps; the Gateway
listens on the serve port the manifest asks for.
"""

from __future__ import annotations

from collections.abc import Sequence

from rayservice.kubernetes.raycluster import labels_of
from rayservice.kubernetes.services import cluster_serve_service_name, serve_port
from rayservice.spec.errors import SpecProblem
from rayservice.spec.manifest import KubernetesObject, RayService
from rayservice.spec.vocabulary import UpgradeType

GATEWAY_API_VERSION = "gateway.networking.k8s.io/v1"
_LISTENER = "http"
_GATEWAY_CLASS_FIELD = "spec.upgradeStrategy.clusterUpgradeOptions.gatewayClassName"


def gateway_class(service: RayService) -> str | None:
    """The Gateway class of an incrementally upgraded service (None: none named, or not
    incremental)."""
    strategy = service.spec.upgradeStrategy
    if strategy.type is not UpgradeType.INCREMENTAL or strategy.clusterUpgradeOptions is None:
        return None
    return strategy.clusterUpgradeOptions.gatewayClassName or None


def gateway_problem(service: RayService, source: str) -> SpecProblem | None:
    """Incremental upgrades on Kubernetes need a Gateway class to weigh traffic with."""
    if service.spec.upgradeStrategy.type is not UpgradeType.INCREMENTAL:
        return None
    if gateway_class(service) is not None:
        return None
    return SpecProblem(
        source,
        _GATEWAY_CLASS_FIELD,
        "is required on Kubernetes for NewClusterWithIncrementalUpgrade: traffic is weighed"
        " between the clusters by a Gateway API HTTPRoute",
        "the name of a GatewayClass installed in the cluster (kubectl get gatewayclasses), or"
        " upgradeStrategy.type NewCluster",
    )


def gateway_name(service: RayService) -> str:
    return f"{service.metadata.name}-gateway"


def route_name(service: RayService) -> str:
    return f"{service.metadata.name}-httproute"


def gateway(service: RayService) -> KubernetesObject:
    """The Gateway in front of an incrementally upgraded service (``gateway_class`` set)."""
    return {
        "apiVersion": GATEWAY_API_VERSION,
        "kind": "Gateway",
        "metadata": _metadata(service, gateway_name(service)),
        "spec": {
            "gatewayClassName": gateway_class(service),
            "listeners": [{"name": _LISTENER, "protocol": "HTTP", "port": serve_port(service)}],
        },
    }


def http_route(service: RayService, shares: Sequence[tuple[str, int]]) -> KubernetesObject:
    """The route sending each cluster of ``shares`` (cluster name, weight) its weight of the
    service's requests, through the cluster's own serve Service."""
    namespace = service.metadata.namespace
    backends = [
        {
            "name": cluster_serve_service_name(cluster),
            "namespace": namespace,
            "port": serve_port(service),
            "weight": weight,
        }
        for cluster, weight in shares
    ]
    return {
        "apiVersion": GATEWAY_API_VERSION,
        "kind": "HTTPRoute",
        "metadata": _metadata(service, route_name(service)),
        "spec": {
            "parentRefs": [{"name": gateway_name(service), "namespace": namespace}],
            "rules": [
                {
                    "matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
                    "backendRefs": backends,
                }
            ],
        },
    }


def _metadata(service: RayService, name: str) -> dict[str, object]:
    return {"name": name, "namespace": service.metadata.namespace, "labels": labels_of(service)}
