"""The ``ray.io/v1`` RayCluster custom resource of one cluster, for KubeRay's operator to run.

A RayService's cluster is its ``rayClusterConfig`` with the pod templates as the user wrote them,
and what makes it ours rather than a KubeRay RayService's:

- labels naming its owner (never KubeRay's ``ray.io/originated-from-*``, by which KubeRay's
  RayService controller finds clusters to clean up) and an annotation with its spec hash;
- the ``ray.io/serve`` label on the pod templates: "true" on workers, whose readiness probe then
  decides whether they get traffic (a Ray container without a probe of its own gets one that asks
  the raylet and the node's Serve proxy), and "false" on the head until the controller sees its
  proxy answer ``/-/healthz`` (KubeRay gives a RayService's clusters the same, not other ones);
- worker counts and ``workersToDelete`` as the controller decides them now;
- no name for the per-cluster head Service (KubeRay names it after the RayCluster, so that the
  two clusters of an upgrade do not fight over one name);
- where the GCS state lives in Redis: a namespace per cluster, as on the local backend.

A standalone RayCluster is the user's object as given, with our labels added.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rayservice.kubernetes.labels import MANAGER, Annotation, Label, Serving
from rayservice.spec import fault_tolerance
from rayservice.spec.manifest import (
    API_VERSION,
    KubernetesObject,
    Manifest,
    RayClusterSpec,
    RayService,
    replicas_of,
)
from rayservice.spec.vocabulary import AnnotationKey, GcsBackend

DEFAULT_PROXY_PORT = 8000  # where a node's Serve proxy listens unless http_options says
DEFAULT_AGENT_PORT = 52365  # the dashboard agent, which answers for the raylet's health
_AGENT_PORT_PARAM = "dashboard-agent-listen-port"
_PROBE_TIMEOUT_SECONDS = 2


def owner_labels(owner: Manifest) -> dict[str, str]:
    """The labels of every object made for ``owner``."""
    return {
        Label.MANAGED_BY: MANAGER,
        Label.OWNER_KIND: owner.kind,
        Label.OWNER_NAME: owner.metadata.name,
    }


def proxy_port(service: RayService) -> int:
    """Where each node's Serve proxy listens: the Serve config's ``http_options.port``, else
    Serve's default. On Kubernetes every pod has its own address, so all share it."""
    options = service.spec.serve_config().get("http_options")
    port = options.get("port") if isinstance(options, dict) else None
    return port if isinstance(port, int) and not isinstance(port, bool) else DEFAULT_PROXY_PORT


def ray_cluster(
    owner: Manifest,
    name: str,
    spec_hash: str,
    replicas: Mapping[str, int] | None = None,
    workers_to_delete: Mapping[str, Sequence[str]] | None = None,
) -> KubernetesObject:
    """The RayCluster ``name`` of ``owner``. ``replicas`` and ``workers_to_delete`` (by worker
    group) are the controller's decision; a group not in ``replicas`` gets the count its spec
    asks for."""
    if isinstance(owner, RayService):
        spec_model, annotations = owner.spec.rayClusterConfig, {}
        labels = owner_labels(owner)
    else:
        spec_model = owner.spec
        labels = {**owner.metadata.labels, **owner_labels(owner)}
        annotations = dict(owner.metadata.annotations)
    spec = _as_given(spec_model)
    _set_worker_counts(spec, spec_model, replicas or {}, workers_to_delete or {})
    annotations.update(_storage_annotations(spec, spec_model, owner, name))
    if isinstance(owner, RayService):
        _prepare_for_serving(spec, proxy_port(owner))
    annotations[Annotation.SPEC_HASH] = spec_hash
    return {
        "apiVersion": API_VERSION,
        "kind": "RayCluster",
        "metadata": {
            "name": name,
            "namespace": owner.metadata.namespace,
            "labels": labels,
            "annotations": annotations,
        },
        "spec": spec,
    }


def _as_given(spec: RayClusterSpec) -> dict[str, Any]:
    """The cluster spec with the fields the manifest sets, in KubeRay's form (a Redis credential
    given as plain text, a local convenience, becomes ``{value: ...}``)."""
    dumped: dict[str, Any] = spec.model_dump(mode="json", exclude_unset=True)
    options = dumped.get("gcsFaultToleranceOptions") or {}
    for field in ("redisPassword", "redisUsername"):
        if isinstance(options.get(field), str):
            options[field] = {"value": options[field]}
    return dumped


def _set_worker_counts(
    spec: dict[str, Any],
    model: RayClusterSpec,
    replicas: Mapping[str, int],
    to_delete: Mapping[str, Sequence[str]],
) -> None:
    for group, given in zip(
        spec.get("workerGroupSpecs") or [], model.workerGroupSpecs, strict=True
    ):
        # the bounds' defaults written out: KubeRay's CRD requires both
        group["minReplicas"], group["maxReplicas"] = given.minReplicas, given.maxReplicas
        group["replicas"] = replicas.get(given.groupName, replicas_of(given))
        leaving = list(to_delete.get(given.groupName, given.scaleStrategy.workersToDelete))
        if leaving:
            group["scaleStrategy"] = {"workersToDelete": leaving}
        else:
            group.pop("scaleStrategy", None)


def _storage_annotations(
    spec: dict[str, Any], model: RayClusterSpec, owner: Manifest, name: str
) -> dict[str, str]:
    """Give a fault-tolerant cluster its own place in Redis, as the local backend does: in the
    options when the manifest uses them, else in KubeRay's annotations."""
    if not fault_tolerance.is_enabled(model, owner.metadata.annotations):
        return {}
    namespace = fault_tolerance.storage_namespace(model, owner.metadata.annotations, name)
    options = spec.get("gcsFaultToleranceOptions")
    if isinstance(options, dict):
        if options.get("backend", GcsBackend.REDIS) == GcsBackend.REDIS:
            options["externalStorageNamespace"] = namespace
        return {}
    return {
        AnnotationKey.FT_ENABLED: "true",
        AnnotationKey.EXTERNAL_STORAGE_NAMESPACE: namespace,
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
