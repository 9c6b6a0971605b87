"""Whether a Kubernetes cluster can run rayservice's clusters, asked once at start.

An API server that cannot be reached, KubeRay's RayCluster CRD not installed, or a permission
the controller's identity lacks would otherwise surface as failures deep in reconciles; here
each is one sentence saying what to install or grant.
"""

from __future__ import annotations

from rayservice.kubeapi.base import KubernetesApi
from rayservice.kubernetes.kinds import RAY_CLUSTER_CRD

INSTALL_KUBERAY = (
    "install KubeRay's operator, e.g. `helm repo add kuberay https://ray-project.github.io/"
    "kuberay-helm/ && helm install kuberay-operator kuberay/kuberay-operator`"
)
GRANT = (
    "grant them with deploy/rbac.yaml (`kubectl apply -f deploy/rbac.yaml`, then bind the"
    " ClusterRole rayservice-controller to the kubeconfig's user)"
)


def cluster_problems(api: KubernetesApi, namespace: str) -> list[str]:
    """What keeps the cluster of ``api`` from running rayservice's clusters in ``namespace``
    (none: it can); raises KubernetesUnavailable when its API server cannot be reached."""
    problems = []
    if not api.crd_installed(RAY_CLUSTER_CRD):
        problems.append(
            f"KubeRay's RayCluster CRD ({RAY_CLUSTER_CRD}) is not installed: {INSTALL_KUBERAY}"
        )
    missing = api.missing_permissions(namespace)
    if missing:
        problems.append(
            f"the kubeconfig's identity may not, in namespace {namespace}: {'; '.join(missing)};"
            f" {GRANT}"
        )
    return problems
