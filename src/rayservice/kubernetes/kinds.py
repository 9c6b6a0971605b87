"""The kinds of Kubernetes object rayservice reads or makes, with where the API serves them.

One table, so that the client, the permissions the controller needs and the objects the
builders make all name a kind the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Kind:
    """A namespaced kind of object: its API group ('' for the core group), version, name and
    plural (its path segment and its name in RBAC rules)."""

    group: str
    version: str
    kind: str
    plural: str

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version


RAY_CLUSTER = Kind("ray.io", "v1", "RayCluster", "rayclusters")
SERVICE = Kind("", "v1", "Service", "services")
POD = Kind("", "v1", "Pod", "pods")
SECRET = Kind("", "v1", "Secret", "secrets")
CONFIG_MAP = Kind("", "v1", "ConfigMap", "configmaps")
GATEWAY = Kind("gateway.networking.k8s.io", "v1", "Gateway", "gateways")
HTTP_ROUTE = Kind("gateway.networking.k8s.io", "v1", "HTTPRoute", "httproutes")
KINDS = (RAY_CLUSTER, SERVICE, POD, SECRET, CONFIG_MAP, GATEWAY, HTTP_ROUTE)

RAY_CLUSTER_CRD = "rayclusters.ray.io"  # the CustomResourceDefinition KubeRay installs


class UnknownKind(ValueError):
    """An object of a kind rayservice does not make."""


def kind_of(obj: dict[str, Any]) -> Kind:
    """The kind of ``obj``, by its apiVersion and kind."""
    for known in KINDS:
        if (known.api_version, known.kind) == (obj.get("apiVersion"), obj.get("kind")):
            return known
    raise UnknownKind(f"{obj.get('apiVersion')} {obj.get('kind')} is not a kind rayservice makes")
