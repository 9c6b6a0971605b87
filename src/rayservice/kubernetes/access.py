"""What the controller must be allowed to do on a Kubernetes cluster, and why.

Checked at start (a SelfSubjectAccessReview per line) so that a missing permission is one
clear error naming what to grant, not a failure deep in a reconcile; ``deploy/rbac.yaml`` is the
ClusterRole that grants all of it (a test keeps the two in step).
"""

from __future__ import annotations

from dataclasses import dataclass

from rayservice.kubernetes.kinds import (
    CONFIG_MAP,
    GATEWAY,
    HTTP_ROUTE,
    POD,
    RAY_CLUSTER,
    SECRET,
    SERVICE,
)

MANAGE = ("get", "list", "create", "update", "patch", "delete")


@dataclass(frozen=True)
class Permission:
    group: str
    resource: str  # a plural, or plural/subresource
    verbs: tuple[str, ...]
    why: str


NEEDED = (
    Permission(RAY_CLUSTER.group, RAY_CLUSTER.plural, MANAGE, "one RayCluster per cluster"),
    Permission(SERVICE.group, SERVICE.plural, MANAGE, "the head and serve Services"),
    Permission(SECRET.group, SECRET.plural, MANAGE, "Secrets a manifest brings"),
    Permission(CONFIG_MAP.group, CONFIG_MAP.plural, MANAGE, "ConfigMaps a manifest brings"),
    Permission(POD.group, POD.plural, ("get", "list", "patch"), "pods and the head's serve label"),
    Permission(POD.group, f"{POD.plural}/log", ("get",), "pod logs"),
    Permission(POD.group, f"{POD.plural}/proxy", ("get",), "the head's Serve proxy health"),
    Permission(
        SERVICE.group,
        f"{SERVICE.plural}/proxy",
        ("get", "create", "update", "patch", "delete"),
        "Ray's dashboard through the API server",
    ),
    Permission(GATEWAY.group, GATEWAY.plural, MANAGE, "incremental upgrades"),
    Permission(HTTP_ROUTE.group, HTTP_ROUTE.plural, MANAGE, "incremental upgrades"),
    Permission(
        "apiextensions.k8s.io",
        "customresourcedefinitions",
        ("get",),
        "the check that KubeRay's RayCluster CRD is installed",
    ),
)
