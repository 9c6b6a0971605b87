"""Typed models of the KubeRay ``RayService`` and ``RayCluster`` objects (apiVersion ray.io/v1).

Users bring manifests written for KubeRay, so the models keep KubeRay's camelCase field names
and know every field KubeRay v1.7 accepts, including the many that mean nothing on one machine
(declared with a ``None`` default, so that a KubeRay sample loads without edits and
:mod:`rayservice.spec.ignored` can say which of them had no effect). A field KubeRay does not
know is refused, like ``kubectl apply`` with strict field validation does: a typo must not be
stored silently, and less still change the cluster hash. The Kubernetes objects embedded in a
spec (pod templates, Services, environment variables, network rules) stay plain mappings here;
:mod:`rayservice.spec.kubernetes_schema` checks them against Kubernetes' own schema.

Unknown fields are refused only when a manifest is admitted (:mod:`rayservice.spec.loader`
validates with :data:`ADMISSION`); a document read back from the store or from a record drops
fields a previous release let in, so that what was stored before stays readable.

The models only describe shapes and defaults; rules that need a precise, user-facing
explanation (names, replica bounds, ``ray start`` parameters, the Serve config) live in
:mod:`rayservice.spec.loader`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import lru_cache
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationInfo,
    model_validator,
)

from rayservice.spec.vocabulary import (
    AnnotationKey,
    ClusterUpgradeType,
    GcsBackend,
    ServicePort,
    UpgradeType,
)

API_VERSION = "ray.io/v1"
INT32_MAX = 2**31 - 1


def _scalar_as_text(value: object) -> object:
    """Spell a YAML scalar the way it would be written on a ``ray start`` command line."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if value is None:
        return ""
    return value  # strings pass; lists and mappings are left for the type check to reject


def _stringify_values(value: object) -> object:
    if isinstance(value, Mapping):
        return {key: _scalar_as_text(item) for key, item in value.items()}
    return value


RayStartParams = Annotated[dict[str, str], BeforeValidator(_stringify_values)]
"""``ray start`` options without the leading dashes; YAML numbers and booleans become text."""


ADMISSION: dict[str, bool] = {"admission": True}
"""The validation context of an admitted manifest: unknown fields are refused, not dropped."""

KubernetesObject = dict[str, Any]
"""A Kubernetes object or fragment (a pod template, a Service, an environment variable): checked
against Kubernetes' schema by :mod:`rayservice.spec.kubernetes_schema`, not modelled here."""


class _ManifestModel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _drop_unknown_unless_admitting(cls, data: Any, info: ValidationInfo) -> Any:
        """Outside admission, fields this release does not know are dropped: they were let in
        by a previous release, which stored unknown fields, and had no effect."""
        context = info.context
        if isinstance(data, dict) and not (isinstance(context, dict) and context.get("admission")):
            known = cls.model_fields
            if any(key not in known for key in data):
                return {key: value for key, value in data.items() if key in known}
        return data


class ObjectMeta(_ManifestModel):
    """Kubernetes' ObjectMeta: only name, namespace, labels and annotations mean something
    here; the rest (what ``kubectl get -o yaml`` prints, for one) is accepted and unused."""

    name: str
    namespace: str = "default"
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    uid: str | None = None
    generateName: str | None = None
    generation: int | None = None
    resourceVersion: str | None = None
    creationTimestamp: str | None = None
    deletionTimestamp: str | None = None
    deletionGracePeriodSeconds: int | None = None
    finalizers: list[str] | None = None
    ownerReferences: list[KubernetesObject] | None = None
    managedFields: list[KubernetesObject] | None = None
    selfLink: str | None = None


class ScaleStrategy(_ManifestModel):
    workersToDelete: list[str] = Field(default_factory=list)


class IngressTLS(_ManifestModel):
    hosts: list[str] | None = None
    secretName: str | None = None


class IngressOptions(_ManifestModel):
    host: str | None = None
    path: str | None = None
    pathType: str | None = None
    tls: list[IngressTLS] | None = None


class HeadGroupSpec(_ManifestModel):
    rayStartParams: RayStartParams = Field(default_factory=dict)
    template: KubernetesObject = Field(default_factory=dict)  # a Kubernetes pod template
    # one of ServiceType's values (checked by the loader: a stored object of an earlier
    # release, which took any string, still loads)
    serviceType: str | None = None
    enableIngress: bool | None = None
    headService: KubernetesObject | None = None  # a Kubernetes Service
    ingressOptions: IngressOptions | None = None
    labels: dict[str, str] | None = None
    resources: dict[str, str] | None = None


class WorkerGroupSpec(_ManifestModel):
    groupName: str
    replicas: int | None = None
    minReplicas: int = 0
    maxReplicas: int = INT32_MAX
    rayStartParams: RayStartParams = Field(default_factory=dict)
    template: KubernetesObject = Field(default_factory=dict)  # a Kubernetes pod template
    scaleStrategy: ScaleStrategy = Field(default_factory=ScaleStrategy)
    suspend: bool = False
    numOfHosts: int = 1
    idleTimeoutSeconds: int | None = None
    labels: dict[str, str] | None = None
    priority: int | None = None
    resources: dict[str, str] | None = None


NodeGroupSpec = HeadGroupSpec | WorkerGroupSpec


class RedisCredential(_ManifestModel):
    """A Redis user name or password: the text, or where Kubernetes finds it."""

    value: str | None = None
    valueFrom: KubernetesObject | None = None  # a Kubernetes EnvVarSource


def _credential_kind(value: Any) -> str:
    return "reference" if isinstance(value, Mapping | RedisCredential) else "text"


# A plain string is a local convenience: KubeRay only takes the {value, valueFrom} form.
RedisSecret = Annotated[
    Annotated[RedisCredential, Tag("reference")] | Annotated[str, Tag("text")],
    Discriminator(_credential_kind),
]


class GcsStorage(_ManifestModel):
    """The volume of an embedded RocksDB store on Kubernetes; a folder of the cluster here."""

    accessModes: list[str] | None = None
    claimName: str | None = None
    deletionPolicy: str | None = None
    size: str | None = None
    storageClassName: str | None = None
    subPath: str | None = None


class GcsFaultToleranceOptions(_ManifestModel):
    backend: GcsBackend = GcsBackend.REDIS
    redisAddress: str | None = None  # required with the redis backend
    redisPassword: RedisSecret | None = None
    redisUsername: RedisSecret | None = None
    externalStorageNamespace: str | None = None
    storage: GcsStorage | None = None


class RayClusterUpgradeStrategy(_ManifestModel):
    """What a standalone RayCluster does when its spec no longer fits its running nodes."""

    type: ClusterUpgradeType = ClusterUpgradeType.NONE


class AutoscalerOptions(_ManifestModel):
    """Ray's autoscaler: its settings (idle timeout, upscaling mode, version), and on Kubernetes
    its container's fields (here it is a process beside the head: those mean nothing)."""

    idleTimeoutSeconds: int | None = None
    upscalingMode: str | None = None
    version: str | None = None
    # fields of a Kubernetes container, checked as one
    image: str | None = None
    imagePullPolicy: str | None = None
    command: list[str] | None = None
    args: list[str] | None = None
    resources: KubernetesObject | None = None
    env: list[KubernetesObject] | None = None
    envFrom: list[KubernetesObject] | None = None
    securityContext: KubernetesObject | None = None
    volumeMounts: list[KubernetesObject] | None = None


class AuthOptions(_ManifestModel):
    mode: str | None = None
    enableK8sTokenAuth: bool | None = None
    secretName: str | None = None


class CollectorOptions(_ManifestModel):
    # fields of a Kubernetes container, checked as one
    image: str | None = None
    imagePullPolicy: str | None = None
    env: list[KubernetesObject] | None = None
    resources: KubernetesObject | None = None


class HistoryServerOptions(_ManifestModel):
    collectorOptions: CollectorOptions | None = None


class NetworkRules(_ManifestModel):
    """Kubernetes NetworkPolicy rules, checked as such."""

    ingressRules: list[KubernetesObject] | None = None
    egressRules: list[KubernetesObject] | None = None


class WorkerGroupNetworkRules(NetworkRules):
    groupName: str


class NetworkPolicyOptions(_ManifestModel):
    mode: str | None = None
    head: NetworkRules | None = None
    worker: NetworkRules | None = None
    workerGroups: list[WorkerGroupNetworkRules] | None = None


class TLSOptions(_ManifestModel):
    enabled: bool | None = None


class RayClusterSpec(_ManifestModel):
    rayVersion: str | None = None
    enableInTreeAutoscaling: bool = False
    gcsFaultToleranceOptions: GcsFaultToleranceOptions | None = None
    headGroupSpec: HeadGroupSpec
    workerGroupSpecs: list[WorkerGroupSpec] = Field(default_factory=list)
    suspend: bool = False
    autoscalerOptions: AutoscalerOptions | None = None
    upgradeStrategy: RayClusterUpgradeStrategy | None = None  # standalone RayClusters only
    # accepted, with no effect on the local backend
    authOptions: AuthOptions | None = None
    headServiceAnnotations: dict[str, str] | None = None
    historyServerOptions: HistoryServerOptions | None = None
    managedBy: str | None = None
    networkPolicy: NetworkPolicyOptions | None = None
    tlsOptions: TLSOptions | None = None


class ClusterUpgradeOptions(_ManifestModel):
    maxSurgePercent: int = 100
    stepSizePercent: int | None = None
    intervalSeconds: int | None = None
    gatewayClassName: str | None = None


class UpgradeStrategy(_ManifestModel):
    type: UpgradeType = UpgradeType.NEW_CLUSTER
    clusterUpgradeOptions: ClusterUpgradeOptions | None = None


class RayServiceSpec(_ManifestModel):
    serveConfigV2: str
    rayClusterConfig: RayClusterSpec
    upgradeStrategy: UpgradeStrategy = Field(default_factory=UpgradeStrategy)
    rayClusterDeletionDelaySeconds: int = 60
    excludeHeadPodFromServeSvc: bool = False
    serveService: KubernetesObject | None = None  # a Kubernetes Service
    # Not in KubeRay: how long a pending cluster may take to become ready before it is given up.
    pendingClusterTimeoutSeconds: int = 600
    # accepted, with no effect on the local backend
    managedBy: str | None = None
    suspend: bool | None = None
    deploymentUnhealthySecondThreshold: int | None = None
    serviceUnhealthySecondThreshold: int | None = None

    def serve_config(self) -> dict[str, Any]:
        """``serveConfigV2`` parsed (an admitted spec always parses to a mapping); a fresh
        copy each call, so callers may change it."""
        parsed: dict[str, Any] = json.loads(_serve_config_json(self.serveConfigV2))
        return parsed


class _KubeRayObject(_ManifestModel):
    apiVersion: Literal["ray.io/v1"]
    metadata: ObjectMeta
    # what `kubectl get -o yaml` prints is accepted back; the status is the controller's own
    status: Any = Field(default=None, exclude=True)

    @property
    def key(self) -> str:
        """``<namespace>/<name>``: unique among objects of one kind."""
        return f"{self.metadata.namespace}/{self.metadata.name}"


class RayService(_KubeRayObject):
    kind: Literal["RayService"]
    spec: RayServiceSpec

    @property
    def serve_service_name(self) -> str:
        """KubeRay's rule: ``spec.serveService.metadata.name`` when given, else
        ``<name>-serve-svc``."""
        return str(_serve_service_metadata(self).get("name") or f"{self.metadata.name}-serve-svc")

    @property
    def serve_service_metadata(self) -> dict[str, dict[str, str]]:
        """The ``labels`` and ``annotations`` ``spec.serveService`` gives its Service, kept as
        given (the ones rayservice sets win where they meet, as KubeRay's do)."""
        metadata = _serve_service_metadata(self)
        return {
            part: {str(key): str(value) for key, value in (metadata.get(part) or {}).items()}
            for part in ("labels", "annotations")
        }

    @property
    def head_service_name(self) -> str:
        return f"{self.metadata.name}-head-svc"

    @property
    def service_names(self) -> list[tuple[str, str]]:
        """Its Services' names, each with the field that gives it."""
        given = "name" in _serve_service_metadata(self)
        serve_field = "spec.serveService.metadata.name" if given else "metadata.name"
        return [(self.serve_service_name, serve_field), (self.head_service_name, "metadata.name")]


def _serve_service_metadata(service: RayService) -> dict[str, Any]:
    metadata = (service.spec.serveService or {}).get("metadata")
    return metadata if isinstance(metadata, dict) else {}


class RayCluster(_KubeRayObject):
    kind: Literal["RayCluster"]
    spec: RayClusterSpec

    @property
    def serve_service_enabled(self) -> bool:
        """The annotation ``ray.io/enable-serve-service: "true"`` asks for ``<name>-serve-svc``."""
        value = self.metadata.annotations.get(AnnotationKey.ENABLE_SERVE_SERVICE, "")
        return value.lower() == "true"

    @property
    def upgrade_type(self) -> ClusterUpgradeType:
        strategy = self.spec.upgradeStrategy
        return ClusterUpgradeType.NONE if strategy is None else strategy.type

    @property
    def serve_service_name(self) -> str:
        return f"{self.metadata.name}-serve-svc"

    @property
    def head_service_name(self) -> str:
        """KubeRay's rule for a RayCluster: ``headGroupSpec.headService.metadata.name`` when
        given, else ``<name>-head-svc`` (a RayService's head Service always has the latter)."""
        return str(_head_service_metadata(self).get("name") or f"{self.metadata.name}-head-svc")

    @property
    def service_names(self) -> list[tuple[str, str]]:
        """Its Services' names (the serve one only when asked for), each with the field that
        gives it."""
        given = "name" in _head_service_metadata(self)
        head_field = "spec.headGroupSpec.headService.metadata.name" if given else "metadata.name"
        serve = [(self.serve_service_name, "metadata.name")] if self.serve_service_enabled else []
        return [*serve, (self.head_service_name, head_field)]


def _head_service_metadata(cluster: RayCluster) -> dict[str, Any]:
    metadata = (cluster.spec.headGroupSpec.headService or {}).get("metadata")
    return metadata if isinstance(metadata, dict) else {}


Manifest = RayService | RayCluster
"""Any object a manifest file may hold."""


_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when PyYAML has it


@lru_cache(maxsize=1024)
def _serve_config_json(text: str) -> str:
    """A Serve config's YAML as JSON text. The controller reads every service's config on
    every pass; parsing YAML is most of a pass's cost, decoding JSON a small part of it."""
    parsed = yaml.load(text, Loader=_YAML_LOADER)
    return json.dumps(parsed if isinstance(parsed, dict) else {}, default=str)


def replicas_of(group: WorkerGroupSpec) -> int:
    """Workers the group should have: ``replicas`` (else ``minReplicas``) kept within bounds."""
    wanted = group.minReplicas if group.replicas is None else group.replicas
    return max(group.minReplicas, min(wanted, group.maxReplicas))


def node_groups(spec: RayClusterSpec) -> list[tuple[str, NodeGroupSpec]]:
    """The head group then every worker group, each with its path inside the cluster spec."""
    workers = [
        (f"workerGroupSpecs[{index}]", group) for index, group in enumerate(spec.workerGroupSpecs)
    ]
    return [("headGroupSpec", spec.headGroupSpec), *workers]


def head_container_ports(spec: RayClusterSpec) -> list[tuple[str, int]]:
    """The ports of the head's Ray container (the first) as (name, containerPort), one per
    entry of its ``ports`` in order ("" for no name; admission makes every port an integer)."""
    pod = spec.headGroupSpec.template.get("spec")
    containers = pod.get("containers") if isinstance(pod, dict) else None
    head = containers[0] if isinstance(containers, list) and containers else None
    ports = head.get("ports") if isinstance(head, dict) else None
    return [
        (str(p.get("name") or ""), int(p.get("containerPort") or 0))
        for p in (ports if isinstance(ports, list) else [])
        if isinstance(p, dict)
    ]


def serve_port_entry(spec: RayClusterSpec) -> int | None:
    """The index of the head container's port named ``serve`` (else the first named
    ``serve-*``), KubeRay's way to say where Serve listens; None when it names none."""
    names = [name for name, _ in head_container_ports(spec)]
    exact = [i for i, name in enumerate(names) if name == ServicePort.SERVE]
    prefixed = [i for i, name in enumerate(names) if name.startswith(f"{ServicePort.SERVE}-")]
    found = exact or prefixed
    return found[0] if found else None


def dashboard_port_entry(spec: RayClusterSpec) -> int | None:
    """The index of the head container's port named ``dashboard``; None when it names none."""
    names = [name for name, _ in head_container_ports(spec)]
    return names.index(ServicePort.DASHBOARD) if ServicePort.DASHBOARD in names else None


def preferred_serve_port(spec: RayClusterSpec) -> int | None:
    """The port of :func:`serve_port_entry`: a preference for the serve Service's port here
    (used when free), never a requirement."""
    entry = serve_port_entry(spec)
    return head_container_ports(spec)[entry][1] if entry is not None else None


def preferred_dashboard_port(spec: RayClusterSpec) -> int | None:
    """The port of :func:`dashboard_port_entry`: a preference for the head Service's port."""
    entry = dashboard_port_entry(spec)
    return head_container_ports(spec)[entry][1] if entry is not None else None


def requested_serve_port(service: RayService) -> tuple[int, int] | None:
    """The port the user asked for in ``spec.serveService.spec.ports`` (the entry named serve,
    else the first), with the index of its entry; None when no port is asked for."""
    ports = ((service.spec.serveService or {}).get("spec") or {}).get("ports") or []
    index = next((i for i, p in enumerate(ports) if p.get("name") == "serve"), 0)
    chosen = ports[index] if ports else None
    return (index, int(chosen["port"])) if chosen and "port" in chosen else None
