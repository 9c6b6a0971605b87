"""The ClusterProvider on Kubernetes: a RayCluster per cluster, and KubeRay's operator runs it.

``ensure`` applies the RayCluster its request describes (:mod:`rayservice.kubernetes.raycluster`,
server-side apply: worker counts and ``workersToDelete`` follow the request, and an edit of a
field rayservice sets lasts until the next ensure). Where Ray's autoscaler decides the worker
counts (``enableInTreeAutoscaling``), KubeRay's autoscaler patches those fields itself: a later
ensure (a worker group added, new bounds) keeps the counts it last wrote and names the version
it read, so that an apply crossing the autoscaler's next write is refused (read and tried once
more, then left to the next pass) rather than undoing it; ``observe`` reports what it asked
(``autoscaler_request``), so the controller wants the same.

Pods are KubeRay's; this provider reads them (phase, readiness, restarts, how the Ray container
last ended; a pod being deleted is gone already) and keeps one label of theirs: the head pod's
``ray.io/serve``, "true" while its Serve proxy answers ``/-/healthz`` (asked through the API
server) unless ``excludeHeadPodFromServeSvc``, which puts the head in or out of the serve
Services as KubeRay's RayService controller does for its own clusters. A worker's readiness probe
asks its own proxy. Ray's dashboard is reached through the API server's proxy of KubeRay's head
Service of the cluster (found by its labels: KubeRay shortens long names), so the controller
needs no route into the cluster; with Ray's token authentication the token comes from the Secret
KubeRay gives the pods.

Every RayCluster carries its controller's name (``rayservice.io/controller``): controllers of
several users may share a Kubernetes cluster, and each lists, and so removes, only its own. The
ClusterProvider protocol names clusters without their namespace; the provider keeps where each
is, found again by listing its RayClusters after a restart.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from rayservice.kubeapi.base import KubernetesApi, KubernetesConflict
from rayservice.kubernetes.kinds import POD, RAY_CLUSTER, SECRET, SERVICE
from rayservice.kubernetes.labels import MANAGER, Annotation, Label, NodeType, Serving
from rayservice.kubernetes.pods import annotations_on, is_ready, labels_on
from rayservice.kubernetes.raycluster import keeping_worker_counts, ray_cluster
from rayservice.spec.autoscaling import MAX_WORKERS_ASKED
from rayservice.spec.cluster_request import ClusterRequest
from rayservice.spec.errors import TemporaryError
from rayservice.spec.observed import NodePhase, NodeRole, ObservedCluster, ObservedNode
from rayservice.spec.service_exposure import FIRST_DASHBOARD_PORT
from rayservice.spec.vocabulary import ALL_INTERFACES, HEAD_GROUP, AnnotationKey, ServicePort

AUTOSCALER_CONTAINER = "autoscaler"  # the name of KubeRay's autoscaler sidecar in the head pod
HEALTHY_PROXY = "success"  # what a Serve proxy answers to /-/healthz while it serves
HEALTH_PATH = "/-/healthz"
TOKEN_MODE = "token"  # authOptions.mode of a cluster with Ray's token authentication
TOKEN_KEY = "auth_token"  # the key of the token in KubeRay's Secret
_KUBERAY_NAME_ROOM = 50
_READS_OF_AN_AUTOSCALED_CLUSTER = 2  # a write of the autoscaler in between: read once more
_PHASES = {"Pending": NodePhase.PENDING, "Running": NodePhase.RUNNING}


@dataclass(frozen=True)
class _Serving:
    port: int  # where the nodes' Serve proxies listen (0: a standalone RayCluster's, not ours)
    head: bool  # whether the head may serve (excludeHeadPodFromServeSvc: no)


class KubernetesProvider:
    def __init__(self, api: KubernetesApi, controller: str) -> None:
        self.api = api
        self.controller = controller  # the value of rayservice.io/controller on its clusters
        self._namespaces: dict[str, str] = {}  # cluster name -> its namespace

    # -- ClusterProvider ---------------------------------------------------------------------

    def ensure(self, request: ClusterRequest) -> None:
        self._namespaces[request.name] = request.namespace
        built = ray_cluster(request, self._leaving_by_group(request))
        built["metadata"]["labels"][Label.CONTROLLER] = self.controller
        if request.autoscaling is None:
            self.api.apply(built)
            return
        for attempt in range(_READS_OF_AN_AUTOSCALED_CLUSTER):
            running = self.api.get(RAY_CLUSTER, request.namespace, request.name)
            try:  # KubeRay's autoscaler owns the worker counts of a running cluster
                self.api.apply(keeping_worker_counts(built, running) if running else built)
                return
            except KubernetesConflict:
                if attempt + 1 == _READS_OF_AN_AUTOSCALED_CLUSTER:
                    raise  # written again meanwhile: the next pass reads it again

    def observe(self, name: str) -> ObservedCluster | None:
        namespace = self._namespace_of(name)
        found = self.api.get(RAY_CLUSTER, namespace, name) if namespace else None
        if namespace is None or found is None:
            return None
        metadata = found["metadata"]
        annotations = annotations_on(found)
        serving = _Serving(
            port=_port(annotations.get(Annotation.SERVE_PROXY_PORT)),
            head=annotations.get(Annotation.HEAD_SERVES, "true") != "false",
        )
        pods = sorted(
            (
                pod
                for pod in self.api.select(POD, namespace, {Label.CLUSTER: name})
                if not pod["metadata"].get("deletionTimestamp")  # going: gone already
            ),
            key=lambda pod: str(pod["metadata"]["name"]),
        )
        nodes = tuple(self._node(pod, namespace, serving) for pod in pods)
        heads = [pod for pod in pods if labels_on(pod).get(Label.NODE_TYPE) == NodeType.HEAD]
        head_pod = heads[0] if heads else None
        spec = found.get("spec") or {}
        autoscaled = bool(spec.get("enableInTreeAutoscaling"))
        return ObservedCluster(
            name=name,
            owner=f"{namespace}/{labels_on(found).get(Label.OWNER_NAME, name)}",
            spec_hash=annotations.get(Annotation.SPEC_HASH, ""),
            created_at=_seconds(metadata.get("creationTimestamp")),
            nodes=nodes,
            dashboard_url=self._dashboard_url(namespace, name),
            head_ready=head_pod is not None and is_ready(head_pod),
            auth_token=self._auth_token(namespace, name, spec),
            fault_tolerant="gcsFaultToleranceOptions" in spec
            or annotations.get(AnnotationKey.FT_ENABLED, "").lower() == "true",
            autoscaler_running=_autoscaler_running(head_pod) if autoscaled else None,
            autoscaler_bounds=_bounds(spec) if autoscaled else (),
            autoscaler_request=_asked(spec) if autoscaled else None,
            proxy_host=ALL_INTERFACES,  # reached through Services and the API server's proxy
        )

    def delete(self, name: str) -> None:
        namespace = self._namespace_of(name)
        if namespace is not None:
            self.api.delete(RAY_CLUSTER, namespace, name)
        self._namespaces.pop(name, None)

    def clusters(self, owner: str | None = None) -> list[str]:
        labels: dict[str, str] = {Label.MANAGED_BY: MANAGER, Label.CONTROLLER: self.controller}
        namespace: str | None = None
        if owner is not None:
            namespace, slash, owner_name = owner.partition("/")
            if not slash:
                raise ValueError(f"an owner is <namespace>/<name>, not {owner!r}")
            labels[Label.OWNER_NAME] = owner_name
        found = self.api.select(RAY_CLUSTER, namespace, labels)
        for cluster in found:
            self._namespaces[cluster["metadata"]["name"]] = cluster["metadata"]["namespace"]
        return sorted(str(cluster["metadata"]["name"]) for cluster in found)

    def logs(self, name: str, node: str | None = None, tail: int = 200) -> str:
        namespace = self._namespace_of(name)
        if namespace is None:
            raise TemporaryError(f"cluster {name} does not exist")
        pods = self.api.select(POD, namespace, {Label.CLUSTER: name})
        chosen = next((pod for pod in pods if _is(pod, node)), None)
        if chosen is None:
            valid = ", ".join(sorted(pod["metadata"]["name"] for pod in pods))
            raise TemporaryError(f"cluster {name} has no node {node!r} (nodes: {valid})")
        container = chosen["spec"]["containers"][0]["name"]
        return self.api.pod_logs(namespace, chosen["metadata"]["name"], container, tail)

    # -- reading and labelling ----------------------------------------------------------------

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
                leaving.setdefault(labels_on(pod).get(Label.GROUP, ""), []).append(name)
        return leaving

    def _node(self, pod: dict[str, Any], namespace: str, serving: _Serving) -> ObservedNode:
        metadata = pod["metadata"]
        labels = labels_on(pod)
        head = labels.get(Label.NODE_TYPE) == NodeType.HEAD
        phase = _phase(pod)
        container = _ray_container_status(pod)
        ended = (container.get("lastState") or {}).get("terminated") or {}
        answer = ""
        if head and phase is NodePhase.RUNNING and serving.port:
            asked = self.api.proxy_get(namespace, metadata["name"], serving.port, HEALTH_PATH)
            answer = asked or ""
        if head and serving.port:
            self._keep_serve_label(pod, namespace, answer == HEALTHY_PROXY and serving.head)
        return ObservedNode(
            name=metadata["name"],
            role=NodeRole.HEAD if head else NodeRole.WORKER,
            group=labels.get(Label.GROUP, HEAD_GROUP if head else ""),
            phase=phase,
            proxy_port=serving.port,
            # the head's proxy is asked here; a worker's readiness probe asks its own
            proxy_ready=answer == HEALTHY_PROXY if head else is_ready(pod) and bool(serving.port),
            restarts=int(container.get("restartCount") or 0),
            started_at=_seconds((pod.get("status") or {}).get("startTime")),
            last_words=str(ended.get("message") or ended.get("reason") or ""),
            last_exit_code=ended.get("exitCode"),
            proxy_answer=answer,
        )

    def _keep_serve_label(self, pod: dict[str, Any], namespace: str, serves: bool) -> None:
        """Put the head in its cluster's serve Services while its proxy serves, and out while
        it does not."""
        wanted = Serving.YES if serves else Serving.NO
        if labels_on(pod).get(Label.SERVE) != wanted:
            self.api.set_labels(POD, namespace, pod["metadata"]["name"], {Label.SERVE: wanted})

    def _auth_token(self, namespace: str, cluster: str, spec: dict[str, Any]) -> str:
        """The token Ray's dashboard asks for when the cluster has Ray's token authentication
        (``authOptions.mode: token``): the ``auth_token`` of the Secret KubeRay gives its pods
        (``authOptions.secretName``, else one named after the cluster); '' without it."""
        options = spec.get("authOptions") or {}
        if options.get("mode") != TOKEN_MODE:
            return ""
        name = options.get("secretName") or kuberay_short_name(cluster)
        secret = self.api.get(SECRET, namespace, name)
        encoded = ((secret or {}).get("data") or {}).get(TOKEN_KEY)
        return base64.b64decode(encoded).decode() if isinstance(encoded, str) else ""

    def _dashboard_url(self, namespace: str, cluster: str) -> str:
        """The API server's proxy of the dashboard port of KubeRay's head Service of
        ``cluster`` ('' until KubeRay has made it)."""
        services = self.api.select(
            SERVICE, namespace, {Label.CLUSTER: cluster, Label.NODE_TYPE: NodeType.HEAD}
        )
        if not services:
            return ""
        service = services[0]
        ports = (service.get("spec") or {}).get("ports") or []
        named = [p for p in ports if p.get("name") == ServicePort.DASHBOARD]
        port = str(named[0]["port"] if named else FIRST_DASHBOARD_PORT)
        return self.api.service_url(namespace, service["metadata"]["name"], port)


def kuberay_short_name(name: str) -> str:
    """A name as KubeRay shortens it for what it derives from it (its last 50 characters,
    starting with a letter)."""
    short = name[-_KUBERAY_NAME_ROOM:]
    return short if short[:1].isalpha() else f"r{short[1:]}"


def _seconds(timestamp: object) -> float:
    """Unix seconds of an RFC 3339 timestamp (0 when there is none)."""
    if not isinstance(timestamp, str) or not timestamp:
        return 0.0
    return datetime.fromisoformat(timestamp).timestamp()


def _ray_container_status(pod: dict[str, Any]) -> dict[str, Any]:
    """The status of the pod's Ray container (its first), or {} before it has one."""
    containers = (pod.get("spec") or {}).get("containers") or [{}]
    name = containers[0].get("name")
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    return next((s for s in statuses if s.get("name") == name), {})


def _phase(pod: dict[str, Any]) -> NodePhase:
    """Failed for a pod that is gone (failed, succeeded, unknown)."""
    return _PHASES.get((pod.get("status") or {}).get("phase", "Pending"), NodePhase.FAILED)


def _is(pod: dict[str, Any], node: str | None) -> bool:
    """Whether ``pod`` is the node named ``node`` (None: the head)."""
    if node is not None:
        return bool(pod["metadata"]["name"] == node)
    return labels_on(pod).get(Label.NODE_TYPE) == NodeType.HEAD


def _port(text: str | None) -> int:
    """The port an annotation names (0 for none, or for text that is not a port)."""
    return int(text) if text is not None and text.isdigit() and 0 < int(text) < 65536 else 0


def _bounds(spec: dict[str, Any]) -> tuple[tuple[str, int, int], ...]:
    """Each worker group's (name, min, max), as KubeRay's autoscaler reads them."""
    return tuple(
        (str(g.get("groupName", "")), int(g.get("minReplicas", 0)), int(g.get("maxReplicas", 0)))
        for g in spec.get("workerGroupSpecs") or []
        if not g.get("suspend")
    )


def _asked(spec: dict[str, Any]) -> dict[str, Any]:
    """What KubeRay's autoscaler asks by the RayCluster it patches: each group's count (within
    the bounds a scale request has) and the workers to delete (a ScaleRequest's JSON)."""
    groups = [g for g in spec.get("workerGroupSpecs") or [] if not g.get("suspend")]
    return {
        "replicas": {
            str(g.get("groupName", "")): max(0, min(int(g.get("replicas", 0)), MAX_WORKERS_ASKED))
            for g in groups
        },
        "workersToDelete": [
            str(name)
            for g in groups
            for name in (g.get("scaleStrategy") or {}).get("workersToDelete") or []
        ],
    }


def _autoscaler_running(head_pod: dict[str, Any] | None) -> bool:
    """Whether KubeRay's autoscaler container beside the head runs."""
    statuses = ((head_pod or {}).get("status") or {}).get("containerStatuses") or []
    return any(
        s.get("name") == AUTOSCALER_CONTAINER and "running" in (s.get("state") or {})
        for s in statuses
    )
