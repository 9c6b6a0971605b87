"""The ClusterProvider on Kubernetes: a RayCluster per cluster, and KubeRay's operator runs it.

``ensure`` applies the RayCluster its request describes (:mod:`rayservice.kubernetes.raycluster`,
server-side apply: the fields rayservice sets are put back if edited, worker counts and
``workersToDelete`` follow the request). A cluster whose worker counts Ray's autoscaler decides
(``enableInTreeAutoscaling``) is created once and then left to it: KubeRay's autoscaler patches
those fields itself, and two writers would fight. Pods are KubeRay's: this provider only reads
them (phase, readiness, restarts, how the Ray container last ended) and asks the head's Serve
proxy through the API server whether it answers ``/-/healthz``; a worker's readiness probe asks
its own proxy. Ray's dashboard is reached through the API server's service proxy, so the
controller needs no route into the cluster.

The ClusterProvider protocol names clusters without their namespace; the provider keeps where
each is, found again by listing its RayClusters (labelled ``app.kubernetes.io/managed-by:
rayservice``) after a restart.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from rayservice.kubeapi.base import KubernetesApi
from rayservice.kubernetes.kinds import POD, RAY_CLUSTER
from rayservice.kubernetes.labels import MANAGER, Annotation, Label, NodeType
from rayservice.kubernetes.raycluster import ray_cluster
from rayservice.spec.cluster_request import ClusterRequest
from rayservice.spec.errors import TemporaryError
from rayservice.spec.observed import NodePhase, NodeRole, ObservedCluster, ObservedNode
from rayservice.spec.vocabulary import HEAD_GROUP, AnnotationKey

AUTOSCALER_CONTAINER = "autoscaler"  # the name of KubeRay's autoscaler sidecar in the head pod
HEALTHY_PROXY = "success"  # what a Serve proxy answers to /-/healthz while it serves
_PHASES = {"Pending": NodePhase.PENDING, "Running": NodePhase.RUNNING}
_DASHBOARD_PORT = "dashboard"  # the port name of KubeRay's <cluster>-head-svc for the dashboard


def _seconds(timestamp: object) -> float:
    """Unix seconds of an RFC 3339 timestamp (0 when there is none)."""
    if not isinstance(timestamp, str) or not timestamp:
        return 0.0
    return datetime.fromisoformat(timestamp).timestamp()


def _ready(pod: dict[str, Any]) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def _ray_container_status(pod: dict[str, Any]) -> dict[str, Any]:
    """The status of the pod's Ray container (its first), or {} before it has one."""
    containers = (pod.get("spec") or {}).get("containers") or [{}]
    name = containers[0].get("name")
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    return next((s for s in statuses if s.get("name") == name), {})


def _phase(pod: dict[str, Any]) -> NodePhase:
    """Failed for a pod that is going (being deleted) or gone (failed, succeeded, unknown)."""
    if pod["metadata"].get("deletionTimestamp"):
        return NodePhase.FAILED
    return _PHASES.get((pod.get("status") or {}).get("phase", "Pending"), NodePhase.FAILED)


class KubernetesProvider:
    def __init__(self, api: KubernetesApi) -> None:
        self.api = api
        self._namespaces: dict[str, str] = {}  # cluster name -> its namespace

    # -- ClusterProvider ---------------------------------------------------------------------

    def ensure(self, request: ClusterRequest) -> None:
        self._namespaces[request.name] = request.namespace
        autoscaled = request.autoscaling is not None
        if autoscaled and self.api.get(RAY_CLUSTER, request.namespace, request.name) is not None:
            return  # KubeRay's autoscaler owns the worker counts of a running cluster
        self.api.apply(ray_cluster(request, self._leaving_by_group(request)))

    def observe(self, name: str) -> ObservedCluster | None:
        namespace = self._namespace_of(name)
        found = self.api.get(RAY_CLUSTER, namespace, name) if namespace else None
        if namespace is None or found is None:
            return None
        metadata = found["metadata"]
        annotations = metadata.get("annotations") or {}
        proxy_port = int(annotations.get(Annotation.SERVE_PROXY_PORT) or 0)
        pods = sorted(
            self.api.select(POD, namespace, {Label.CLUSTER: name}),
            key=lambda pod: pod["metadata"]["name"],
        )
        nodes = tuple(self._node(pod, namespace, proxy_port) for pod in pods)
        head_pod = next(
            (pod for pod, node in zip(pods, nodes, strict=True) if node.role is NodeRole.HEAD), None
        )
        spec = found.get("spec") or {}
        return ObservedCluster(
            name=name,
            owner=f"{namespace}/{(metadata.get('labels') or {}).get(Label.OWNER_NAME, name)}",
            spec_hash=annotations.get(Annotation.SPEC_HASH, ""),
            created_at=_seconds(metadata.get("creationTimestamp")),
            nodes=nodes,
            dashboard_url=self.api.service_url(namespace, f"{name}-head-svc", _DASHBOARD_PORT),
            head_ready=head_pod is not None and _ready(head_pod),
            auth_token="",
            fault_tolerant="gcsFaultToleranceOptions" in spec
            or annotations.get(AnnotationKey.FT_ENABLED, "").lower() == "true",
            autoscaler_running=_autoscaler_running(head_pod)
            if spec.get("enableInTreeAutoscaling")
            else None,
        )

    def delete(self, name: str) -> None:
        namespace = self._namespace_of(name)
        if namespace is not None:
            self.api.delete(RAY_CLUSTER, namespace, name)
        self._namespaces.pop(name, None)

    def clusters(self, owner: str | None = None) -> list[str]:
        labels: dict[str, str] = {Label.MANAGED_BY: MANAGER}
        namespace: str | None = None
        if owner is not None:
            namespace, _, owner_name = owner.partition("/")
            labels[Label.OWNER_NAME] = owner_name
        found = self.api.select(RAY_CLUSTER, namespace, labels)
        for cluster in found:
            self._namespaces[cluster["metadata"]["name"]] = cluster["metadata"]["namespace"]
        return sorted(cluster["metadata"]["name"] for cluster in found)

    def logs(self, name: str, node: str | None = None, tail: int = 200) -> str:
        namespace = self._namespace_of(name)
        if namespace is None:
            raise TemporaryError(f"cluster {name} does not exist")
        pods = self.api.select(POD, namespace, {Label.CLUSTER: name})
        chosen = next(
            (
                pod
                for pod in pods
                if pod["metadata"]["name"] == node
                or (
                    node is None and pod["metadata"]["labels"].get(Label.NODE_TYPE) == NodeType.HEAD
                )
            ),
            None,
        )
        if chosen is None:
            valid = ", ".join(sorted(pod["metadata"]["name"] for pod in pods))
            raise TemporaryError(f"cluster {name} has no node {node!r} (nodes: {valid})")
        container = chosen["spec"]["containers"][0]["name"]
        return self.api.pod_logs(namespace, chosen["metadata"]["name"], container, tail)

    # -- reading ------------------------------------------------------------------------------

    def _namespace_of(self, name: str) -> str | None:
        if name not in self._namespaces:
            self.clusters()  # after a restart: where are our clusters?
        return self._namespaces.get(name)

    def _leaving_by_group(self, request: ClusterRequest) -> dict[str, list[str]]:
        """The request's workers to delete, by the group their pods are of (KubeRay takes them
        per group)."""
        if not request.workers_to_delete:
            return {}
        leaving: dict[str, list[str]] = {}
        for pod in self.api.select(POD, request.namespace, {Label.CLUSTER: request.name}):
            name = pod["metadata"]["name"]
            if name in request.workers_to_delete:
                group = pod["metadata"]["labels"].get(Label.GROUP, "")
                leaving.setdefault(group, []).append(name)
        return leaving

    def _node(self, pod: dict[str, Any], namespace: str, proxy_port: int) -> ObservedNode:
        metadata = pod["metadata"]
        labels = metadata.get("labels") or {}
        head = labels.get(Label.NODE_TYPE) == NodeType.HEAD
        phase = _phase(pod)
        container = _ray_container_status(pod)
        ended = (container.get("lastState") or {}).get("terminated") or {}
        answer = ""
        if head and phase is NodePhase.RUNNING and proxy_port:
            answer = self.api.proxy_get(namespace, metadata["name"], proxy_port, "/-/healthz") or ""
        return ObservedNode(
            name=metadata["name"],
            role=NodeRole.HEAD if head else NodeRole.WORKER,
            group=labels.get(Label.GROUP, HEAD_GROUP if head else ""),
            phase=phase,
            proxy_port=proxy_port,
            # a worker's readiness probe asks its proxy; the head's is asked here
            proxy_ready=answer == HEALTHY_PROXY if head else _ready(pod) and bool(proxy_port),
            restarts=int(container.get("restartCount") or 0),
            started_at=_seconds((pod.get("status") or {}).get("startTime")),
            last_words=str(ended.get("message") or ended.get("reason") or ""),
            last_exit_code=ended.get("exitCode"),
            proxy_answer=answer,
        )


def _autoscaler_running(head_pod: dict[str, Any] | None) -> bool:
    """Whether KubeRay's autoscaler container beside the head runs."""
    statuses = ((head_pod or {}).get("status") or {}).get("containerStatuses") or []
    return any(
        s.get("name") == "autoscaler" and "running" in (s.get("state") or {}) for s in statuses
    )
