"""The ``ray.io/v1`` RayCluster custom resource of one cluster, for KubeRay's operator to run.

A RayService's cluster is its ``rayClusterConfig`` with the pod templates as the user wrote them,
and what makes it ours rather than a KubeRay RayService's:

- labels naming its owner (never KubeRay's ``ray.io/originated-from-*``, by which KubeRay's
  RayService controller finds clusters to clean up) and an annotation with its spec hash;
- the ``ray.io/serve`` label on the pod templates: "true" on workers, whose readiness probe then
  decides whether they get traffic (a Ray container without a probe of its own gets one that asks
  the raylet and the node's Serve proxy), and "false" on the head until the controller sees its
  proxy answer ``/-/healthz`` (KubeRay gives a RayService's clusters the same, not other ones);
- worker counts and ``workersToDelete`` as the controller decides them now (a ClusterRequest),
  or, once Ray's autoscaler decides them, as it last wrote them (:func:`keeping_worker_counts`);
- no name for the per-cluster head Service (KubeRay names it after the RayCluster, so that the
  two clusters of an upgrade do not fight over one name);
- where the GCS state lives in Redis: a namespace per cluster, as on the local backend.

A standalone RayCluster is the user's object as given (its labels and annotations too), with
our labels added.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

from rayservice.kubernetes.labels import MANAGER, Annotation, Label, Serving
from rayservice.spec.cluster_request import ClusterRequest
from rayservice.spec.events import ObjectKind
from rayservice.spec.manifest import API_VERSION, INT32_MAX, KubernetesObject, Manifest
from rayservice.spec.vocabulary import AnnotationKey, GcsBackend

DEFAULT_AGENT_PORT = 52365  # the dashboard agent, which answers for the raylet's health
_AGENT_PORT_PARAM = "dashboard-agent-listen-port"
_PROBE_TIMEOUT_SECONDS = 2


def owner_labels(kind: ObjectKind, name: str) -> dict[str, str]:
    """The labels of every object made for the ``kind`` object ``name``."""
    return {Label.MANAGED_BY: MANAGER, Label.OWNER_KIND: kind, Label.OWNER_NAME: name}


def labels_of(owner: Manifest) -> dict[str, str]:
    return owner_labels(ObjectKind(owner.kind), owner.metadata.name)


def ray_cluster(
    request: ClusterRequest, leaving: Mapping[str, Sequence[str]] | None = None
) -> KubernetesObject:
    """The RayCluster of ``request``: its cluster spec with the worker counts it decides and
    ``leaving``, the workers to delete by group."""
    spec = _with_worker_counts(request, leaving or {})
    labels = owner_labels(request.owner_kind, request.owner_name)
    annotations: dict[str, str] = {}
    if request.owner_kind is ObjectKind.RAY_CLUSTER:
        labels = {**request.owner_labels, **labels}
        annotations = dict(request.owner_annotations)
    annotations.update(_storage(request, spec))
    if request.serve_proxy_port is not None:
        _prepare_for_serving(spec, request.serve_proxy_port)
        annotations[Annotation.SERVE_PROXY_PORT] = str(request.serve_proxy_port)
        annotations[Annotation.HEAD_SERVES] = "true" if request.head_serves else "false"
    annotations[Annotation.SPEC_HASH] = request.spec_hash
    return {
        "apiVersion": API_VERSION,
        "kind": "RayCluster",
        "metadata": {
            "name": request.name,
            "namespace": request.namespace,
            "labels": labels,
            "annotations": annotations,
        },
        "spec": spec,
    }


def keeping_worker_counts(built: KubernetesObject, running: KubernetesObject) -> KubernetesObject:
    """``built`` with the worker counts and ``workersToDelete`` of the ``running`` RayCluster
    (groups it has; a new group keeps the built ones), and its resourceVersion: whoever wrote
    the counts (KubeRay's autoscaler) keeps them, and an apply that crosses their next write
    is refused (409) rather than undoing it."""
    kept = copy.deepcopy(built)
    running_groups = {
        group.get("groupName"): group for group in running["spec"].get("workerGroupSpecs") or []
    }
    for group in kept["spec"].get("workerGroupSpecs") or []:
        current = running_groups.get(group["groupName"])
        if current is None:
            continue
        group["replicas"] = current.get("replicas", group.get("replicas", 0))
        strategy = current.get("scaleStrategy")
        if strategy:
            group["scaleStrategy"] = copy.deepcopy(strategy)
        else:
            group.pop("scaleStrategy", None)
    kept["metadata"]["resourceVersion"] = running["metadata"]["resourceVersion"]
    return kept


def _with_worker_counts(
    request: ClusterRequest, leaving: Mapping[str, Sequence[str]]
) -> dict[str, Any]:
    """The request's cluster spec (a copy) in KubeRay's form (a Redis credential given as plain
    text, a local convenience, becomes ``{value: ...}``), its worker groups with the counts
    the request decides and the bounds' defaults written out (KubeRay's CRD requires both)."""
    spec: dict[str, Any] = copy.deepcopy(request.cluster_spec)
    options = spec.get("gcsFaultToleranceOptions") or {}
    for field in ("redisPassword", "redisUsername"):
        if isinstance(options.get(field), str):
            options[field] = {"value": options[field]}
    counts = {group.group: group.replicas for group in request.workers}
    for group in spec.get("workerGroupSpecs") or []:
        name = group["groupName"]
        group.setdefault("minReplicas", 0)
        group.setdefault("maxReplicas", INT32_MAX)
        if name in counts:  # a suspended group is left as it is
            group["replicas"] = counts[name]
        named = list(leaving.get(name, ()))
        if named:
            group["scaleStrategy"] = {"workersToDelete": named}
        else:
            group.pop("scaleStrategy", None)
    return spec


def _storage(request: ClusterRequest, spec: dict[str, Any]) -> dict[str, str]:
    """Give a fault-tolerant cluster its own place in Redis, as the local backend does: in the
    options when the spec uses them, else in KubeRay's annotations."""
    tolerance = request.fault_tolerance
    if tolerance is None:
        return {}
    options = spec.get("gcsFaultToleranceOptions")
    if isinstance(options, dict):
        if options.get("backend", GcsBackend.REDIS) == GcsBackend.REDIS:
            options["externalStorageNamespace"] = tolerance.storage_namespace
        return {}
    return {
        AnnotationKey.FT_ENABLED: "true",
        AnnotationKey.EXTERNAL_STORAGE_NAMESPACE: tolerance.storage_namespace,
    }


def _prepare_for_serving(spec: dict[str, Any], port: int) -> None:
    head = spec["headGroupSpec"]
    _template_labels(head)[Label.SERVE] = Serving.NO
    service = head.get("headService")
    if isinstance(service, dict) and isinstance(service.get("metadata"), dict):
        service["metadata"].pop("name", None)
    for group in spec.get("workerGroupSpecs") or []:
        _template_labels(group)[Label.SERVE] = Serving.YES
        containers = group.get("template", {}).get("spec", {}).get("containers") or []
        if containers and "readinessProbe" not in containers[0]:
            agent = group.get("rayStartParams", {}).get(_AGENT_PORT_PARAM, DEFAULT_AGENT_PORT)
            containers[0]["readinessProbe"] = serve_readiness_probe(int(agent), port)


def _template_labels(group: dict[str, Any]) -> dict[str, str]:
    """The labels of the group's pod template (made, first in the template, when missing)."""
    template = group.get("template") or {}
    metadata = template.get("metadata") or {}
    labels: dict[str, str] = metadata.get("labels") or {}
    rest = {key: value for key, value in template.items() if key != "metadata"}
    group["template"] = {"metadata": {**metadata, "labels": labels}, **rest}
    return labels


def serve_readiness_probe(agent_port: int, proxy_port: int) -> KubernetesObject:
    """Ready while the node's raylet is healthy and its Serve proxy answers ``/-/healthz``: a
    worker without a proxy (none placed there yet, or one draining) gets no traffic."""
    checks = [
        f"http://localhost:{agent_port}/api/local_raylet_healthz",
        f"http://localhost:{proxy_port}/-/healthz",
    ]
    command = " && ".join(
        f"wget --timeout={_PROBE_TIMEOUT_SECONDS} -q -O - {url} | grep -q success" for url in checks
    )
    return {
        "exec": {"command": ["bash", "-c", command]},
        "initialDelaySeconds": 10,
        "periodSeconds": 5,
        "timeoutSeconds": 2 * _PROBE_TIMEOUT_SECONDS + 1,
        "successThreshold": 1,
        "failureThreshold": 1,
    }
