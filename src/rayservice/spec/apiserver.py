"""The request and response bodies of KubeRay's API server (v1), and their meaning as manifests.

Tools written for KubeRay's API server (its Python client, dashboards, curl recipes) speak a
REST dialect of their own: gRPC messages rendered by grpc-gateway, with compute templates
instead of pod templates and clusters described by group specs. This module models those bodies
so that such tools can drive this control plane unchanged, and converts them into the
``ray.io/v1`` manifests the rest of the system already understands; the loader then checks
them like any other manifest.

The wire format follows protojson as the API server configures it: lowerCamelCase names on
output (``by_alias=True, exclude_none=True``; see :func:`to_wire`), both lowerCamelCase and the
proto's own field names on input, unknown fields discarded, enums written as numbers and read
as numbers or names, 64-bit integers written as strings. Checks follow the API server's (path
namespace equals body namespace, required fields, replica bounds), but every problem is
reported at once with its field path instead of only the first.

Pure: no IO; only pydantic and other ``rayservice.spec`` modules.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime
from enum import IntEnum
from typing import Annotated, Any, TypeVar

import pydantic
from pydantic import (
    AliasChoices,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
)
from pydantic.alias_generators import to_camel

from rayservice.spec.errors import InvalidSpec, SpecProblem
from rayservice.spec.events import ObjectKind
from rayservice.spec.loader import _DNS_1035_LABEL, MAX_NAME_LENGTH
from rayservice.spec.manifest import API_VERSION
from rayservice.spec.paths import field_path
from rayservice.spec.serve_config import validation_problems

REQUEST_BODY = "<request body>"
"""The source named by every problem found in a request body."""

USER_LABEL = "ray.io/user"
COMPUTE_TEMPLATE_ANNOTATION = "ray.io/compute-template"
IMAGE_ANNOTATION = "ray.io/compute-image"
ENABLE_SERVE_SERVICE_ANNOTATION = "ray.io/enable-serve-service"
DEFAULT_IMAGE_REPOSITORY = "rayproject/ray"
DEFAULT_MEMORY_UNIT = "Gi"
DEFAULT_GPU_RESOURCE = "nvidia.com/gpu"
HEAD_CONTAINER = "ray-head"
WORKER_CONTAINER = "ray-worker"
_IMAGE_PULL_POLICIES = ("Always", "IfNotPresent")

_UINT32_MAX = 2**32 - 1
_INT32_MIN, _INT32_MAX = -(2**31), 2**31 - 1

Uint32 = Annotated[int, Field(ge=0, le=_UINT32_MAX)]
Int32 = Annotated[int, Field(ge=_INT32_MIN, le=_INT32_MAX)]
Uint64 = Annotated[int, Field(ge=0), PlainSerializer(str, return_type=str, when_used="json")]
"""protojson writes 64-bit integers as JSON strings (and reads strings or numbers)."""


class GrpcCode(IntEnum):
    """The gRPC status codes the API answers with, in the error body's ``code``."""

    INVALID_ARGUMENT = 3
    NOT_FOUND = 5
    ALREADY_EXISTS = 6
    FAILED_PRECONDITION = 9
    INTERNAL = 13
    UNAVAILABLE = 14
    UNAUTHENTICATED = 16


EnumT = TypeVar("EnumT", bound=IntEnum)


def _enum_by_name_or_number(enum: type[EnumT]) -> BeforeValidator:
    """protojson reads an enum from its name (``"PRODUCTION"``) or its number (``3``)."""

    def convert(value: object) -> object:
        if isinstance(value, str) and value in enum.__members__:
            return enum[value]
        return value

    return BeforeValidator(convert)


class ApiBody(BaseModel):
    """A protobuf message as JSON: camelCase out, camelCase or proto names in, unknown fields
    dropped (the API server discards them too)."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")


BodyT = TypeVar("BodyT", bound=ApiBody)


def to_wire(body: ApiBody) -> dict[str, Any]:
    """The JSON object of a body as the API server writes it."""
    return body.model_dump(mode="json", by_alias=True, exclude_none=True)


def parse_body(model: type[BodyT], document: object, prefix: str = "") -> BodyT:
    """Read a decoded JSON body; shape problems become :class:`InvalidSpec` problems located
    in the document as the client wrote it."""
    try:
        return model.model_validate(document)
    except pydantic.ValidationError as error:
        problems = validation_problems(error.errors(), document, REQUEST_BODY, prefix)
        raise InvalidSpec(problems) from error


class ErrorBody(ApiBody):
    """The body of every error answer (grpc-gateway's rendering of a gRPC status)."""

    code: GrpcCode
    message: str


# ---------------------------------------------------------------------------------------------
# Compute templates (config.proto)


class PodToleration(ApiBody):
    key: str = ""
    operator: str = ""  # "Exists", anything else means "Equal"
    value: str | None = None
    effect: str = ""  # "NoExecute", "NoSchedule", anything else means "PreferNoSchedule"


class ComputeTemplate(ApiBody):
    name: str = ""
    namespace: str = ""
    cpu: Uint32 = 0
    memory: Uint32 = 0  # in memory_unit, GiB when it is not given
    gpu: Uint32 | None = None
    gpu_accelerator: str | None = None  # the container resource name, nvidia.com/gpu by default
    tolerations: list[PodToleration] | None = None
    extended_resources: dict[str, Uint32] | None = None
    memory_unit: str | None = None


class ListComputeTemplatesResponse(ApiBody):
    compute_templates: list[ComputeTemplate] = Field(default_factory=list)


# ---------------------------------------------------------------------------------------------
# Clusters (cluster.proto)


class EnvValueSource(IntEnum):
    CONFIGMAP = 0
    SECRET = 1
    RESOURCEFIELD = 2
    FIELD = 3


class EnvValueFrom(ApiBody):
    source: Annotated[EnvValueSource, _enum_by_name_or_number(EnvValueSource)] = (
        EnvValueSource.CONFIGMAP
    )
    name: str | None = None
    key: str | None = None


class EnvironmentVariables(ApiBody):
    values: dict[str, str] | None = None
    values_from: dict[str, EnvValueFrom] | None = None


class VolumeType(IntEnum):
    PERSISTENT_VOLUME_CLAIM = 0
    HOST_PATH = 1
    EPHEMERAL = 2
    CONFIGMAP = 3
    SECRET = 4
    EMPTY_DIR = 5


class HostPathType(IntEnum):
    DIRECTORY = 0
    FILE = 1


class MountPropagationMode(IntEnum):
    NONE = 0
    HOSTTOCONTAINER = 1
    BIDIRECTIONAL = 2


class AccessMode(IntEnum):
    RWO = 0
    ROX = 1
    RWX = 2


class Volume(ApiBody):
    mount_path: str | None = None
    volume_type: Annotated[VolumeType, _enum_by_name_or_number(VolumeType)] = (
        VolumeType.PERSISTENT_VOLUME_CLAIM
    )
    name: str | None = None
    source: str | None = None
    read_only: bool | None = None
    host_path_type: Annotated[HostPathType, _enum_by_name_or_number(HostPathType)] | None = None
    mount_propagation_mode: (
        Annotated[MountPropagationMode, _enum_by_name_or_number(MountPropagationMode)] | None
    ) = None
    storage_class_name: str | None = None
    access_mode: Annotated[AccessMode, _enum_by_name_or_number(AccessMode)] | None = None
    storage: str | None = None  # ephemeral: GB; empty dir: size limit
    items: dict[str, str] | None = None


class Capabilities(ApiBody):
    add: list[str] | None = None
    drop: list[str] | None = None


class SecurityContext(ApiBody):
    capabilities: Capabilities | None = None
    privileged: bool | None = None


class AutoscalerOptions(ApiBody):
    idle_timeout_seconds: Int32 | None = None
    upscaling_mode: str | None = None
    image: str | None = None
    image_pull_policy: str | None = None
    cpu: str | None = None
    memory: str | None = None
    envs: EnvironmentVariables | None = None
    volumes: list[Volume] | None = None


class _GroupSpec(ApiBody):
    """What the head group and the worker groups have in common."""

    compute_template: str = ""
    image: str | None = None
    ray_start_params: dict[str, str] = Field(default_factory=dict)
    volumes: list[Volume] | None = None
    service_account: str | None = None
    image_pull_secret: str | None = None
    environment: EnvironmentVariables | None = None
    annotations: dict[str, str] | None = None
    labels: dict[str, str] | None = None
    image_pull_policy: str | None = None
    security_context: SecurityContext | None = None


class HeadGroupSpec(_GroupSpec):
    service_type: str | None = None
    enable_ingress: bool | None = None


class WorkerGroupSpec(_GroupSpec):
    group_name: str = ""
    replicas: Int32 = 0
    min_replicas: Int32 = 0
    max_replicas: Int32 = 0


class ClusterSpec(ApiBody):
    head_group_spec: HeadGroupSpec | None = None
    worker_group_spec: list[WorkerGroupSpec] = Field(default_factory=list)
    enable_in_tree_autoscaling: bool | None = None
    autoscaler_options: AutoscalerOptions | None = None
    head_service_annotations: dict[str, str] | None = None


class Environment(IntEnum):
    DEV = 0
    TESTING = 1
    STAGING = 2
    PRODUCTION = 3


class ClusterEvent(ApiBody):
    id: str | None = None
    name: str | None = None
    created_at: datetime | None = None
    first_timestamp: datetime | None = None
    last_timestamp: datetime | None = None
    reason: str | None = None
    message: str | None = None
    type: str | None = None
    count: Int32 | None = None


class Cluster(ApiBody):
    name: str = ""
    namespace: str = ""
    user: str = ""
    version: str | None = None
    environment: Annotated[Environment, _enum_by_name_or_number(Environment)] | None = None
    cluster_spec: ClusterSpec | None = None
    annotations: dict[str, str] | None = None
    envs: EnvironmentVariables | None = None
    created_at: datetime | None = None
    deleted_at: datetime | None = None
    cluster_state: str | None = None
    events: list[ClusterEvent] | None = None
    service_endpoint: dict[str, str] | None = None  # service port name -> port number


class ListClustersResponse(ApiBody):
    """The answer of both cluster lists; ``continue`` is the next page's token."""

    clusters: list[Cluster] = Field(default_factory=list)
    continue_: str | None = Field(default=None, alias="continue")


# ---------------------------------------------------------------------------------------------
# RayServices (serve.proto)


class ServeDeploymentStatus(ApiBody):
    deployment_name: str | None = None
    status: str | None = None
    message: str | None = None


class ServeApplicationStatus(ApiBody):
    name: str | None = None
    status: str | None = None
    message: str | None = None
    serve_deployment_status: list[ServeDeploymentStatus] | None = None


class RayServiceEvent(ClusterEvent):
    pass


class RayServiceStatus(ApiBody):
    application_status: str | None = None
    application_message: str | None = None
    serve_deployment_status: list[ServeDeploymentStatus] | None = None
    ray_service_events: list[RayServiceEvent] | None = None
    ray_cluster_name: str | None = None
    ray_cluster_state: str | None = None
    service_endpoint: dict[str, str] | None = None
    serve_application_status: list[ServeApplicationStatus] | None = None


class RayService(ApiBody):
    name: str = ""
    namespace: str = ""
    user: str = ""
    version: str | None = None
    # the proto field is serve_config_V2; its JSON name is serveConfigV2
    serve_config_v2: str | None = Field(
        default=None,
        alias="serveConfigV2",
        validation_alias=AliasChoices("serveConfigV2", "serve_config_V2", "serve_config_v2"),
    )
    service_unhealthy_second_threshold: Int32 | None = None  # deprecated in the proto
    deployment_unhealthy_second_threshold: Int32 | None = None  # deprecated in the proto
    cluster_spec: ClusterSpec | None = None
    ray_service_status: RayServiceStatus | None = None
    created_at: datetime | None = None
    delete_at: datetime | None = None


class ListRayServicesResponse(ApiBody):
    services: list[RayService] = Field(default_factory=list)
    total_size: Int32 | None = None
    next_page_token: str | None = None


class WorkerGroupUpdateSpec(ApiBody):
    group_name: str = ""
    replicas: Int32 = 0
    min_replicas: Int32 = 0
    max_replicas: Int32 = 0


# ---------------------------------------------------------------------------------------------
# Serve applications (serve_submission.proto). Ray's own answer carries arbitrary JSON where
# the proto has string maps (user_config, runtime_env, args ...): those are kept as JSON.


class SubmissionYaml(ApiBody):
    configyaml: str = ""


class ControllerInfo(ApiBody):
    node_id: str | None = None
    node_ip: str | None = None
    actor_id: str | None = None
    actor_name: str | None = None
    worker_id: str | None = None
    log_file_path: str | None = None


class HttpOptions(ApiBody):
    host: str | None = None
    port: Int32 | None = None
    root_path: str | None = None
    request_timeout_s: float | None = None
    keep_alive_timeout_s: Int32 | None = None


class GrpcOptions(ApiBody):
    port: Int32 | None = None
    grpc_servicer_functions: list[str] | None = None


class Proxy(ApiBody):
    node_id: str | None = None
    node_ip: str | None = None
    actor_id: str | None = None
    actor_name: str | None = None
    worker_id: str | None = None
    status: str | None = None
    log_file_path: str | None = None


class Replica(ApiBody):
    node_id: str | None = None
    node_ip: str | None = None
    actor_id: str | None = None
    actor_name: str | None = None
    worker_id: str | None = None
    state: str | None = None
    log_file_path: str | None = None
    replica_id: str | None = None
    pid: Int32 | None = None
    start_time_s: float | None = None


class PlacementGroupBundle(ApiBody):
    bundle: dict[str, float] | None = None


class RayActorOptionSpec(ApiBody):
    runtime_env: dict[str, Any] | None = None
    num_cpus: float | None = None
    num_gpus: float | None = None
    memory: Uint64 | None = None
    object_store_memory: Uint64 | None = None
    resources: dict[str, Any] | None = None
    accelerator_type: str | None = None


class DeploymentSchema(ApiBody):
    name: str | None = None
    placement_group_strategy: str | None = None
    placement_group_bundles: list[PlacementGroupBundle] | None = None
    num_replicas: Int32 | None = None
    max_replicas_per_node: Int32 | None = None
    max_concurrent_queries: Int32 | None = None
    user_config: Any = None
    autoscaling_config: dict[str, Any] | None = None
    graceful_shutdown_wait_loop_s: float | None = None
    graceful_shutdown_timeout_s: float | None = None
    health_check_period_s: float | None = None
    health_check_timeout_s: float | None = None
    ray_actor_options: RayActorOptionSpec | None = None


class DeploymentApplicationDetails(ApiBody):
    name: str | None = None
    status: str | None = None
    message: str | None = None
    deployment_config: DeploymentSchema | None = None
    replicas: list[Replica] | None = None


class ServeDeploymentDetails(ApiBody):
    """An application's config as deployed (Ray's ``deployed_app_config``)."""

    name: str | None = None
    host: str | None = None
    port: Int32 | None = None
    route_prefix: str | None = None
    args: dict[str, Any] | None = None
    import_path: str | None = None
    runtime_env: dict[str, Any] | None = None
    deployments: list[DeploymentSchema] | None = None


class ServeApplicationDetails(ApiBody):
    name: str | None = None
    status: str | None = None
    message: str | None = None
    route_prefix: str | None = None
    docs_path: str | None = None
    last_deployed_time_s: float | None = None
    deployments: dict[str, DeploymentApplicationDetails] | None = None
    deployed_app_config: ServeDeploymentDetails | None = None


class ServeApplicationsReply(ApiBody):
    """Cluster-level Serve info and every application's details (the GET answer)."""

    deploy_mode: str | None = None
    proxy_location: str | None = None
    controller_info: ControllerInfo | None = None
    http_options: HttpOptions | None = None
    grpc_options: GrpcOptions | None = None
    applications: dict[str, ServeApplicationDetails] | None = None
    proxies: dict[str, Proxy] | None = None


# ---------------------------------------------------------------------------------------------
# Job submission (job_submission.proto)


class RayJobSubmission(ApiBody):
    entrypoint: str = ""
    submission_id: str | None = None
    metadata: dict[str, str] | None = None
    runtime_env: str | None = None  # a YAML text
    entrypoint_num_cpus: float | None = None
    entrypoint_num_gpus: float | None = None
    entrypoint_resources: dict[str, str] | None = None


class SubmitRayJobReply(ApiBody):
    submission_id: str


class JobSubmissionInfo(ApiBody):
    entrypoint: str | None = None
    job_id: str | None = None
    submission_id: str | None = None
    status: str | None = None
    message: str | None = None
    error_type: str | None = None
    start_time: Uint64 | None = None  # milliseconds since the epoch
    end_time: Uint64 | None = None
    metadata: dict[str, str] | None = None
    runtime_env: dict[str, str] | None = None


class ListJobSubmissionInfo(ApiBody):
    submissions: list[JobSubmissionInfo] = Field(default_factory=list)


class GetJobLogReply(ApiBody):
    log: str = ""


# ---------------------------------------------------------------------------------------------
# Validation


def _problem(field: str, message: str, valid: str = "") -> SpecProblem:
    return SpecProblem(REQUEST_BODY, field, message, valid)


def _identity_problems(
    name: str, namespace: str, path_namespace: str, kind: ObjectKind
) -> Iterator[SpecProblem]:
    if namespace != path_namespace:
        message = f"{namespace!r} differs from the namespace in the path, {path_namespace!r}"
        yield _problem("namespace", message, repr(path_namespace))
    max_length = MAX_NAME_LENGTH[kind]
    hint = (
        "lowercase letters, digits and '-', starting with a letter and ending with a letter or "
        f"digit, at most {max_length} characters"
    )
    if not name:
        yield _problem("name", "must not be empty", hint)
    elif not _DNS_1035_LABEL.fullmatch(name) or len(name) > max_length:
        yield _problem("name", f"{name!r} is not a DNS-1035 label of at most {max_length}", hint)


def _user_problems(user: str) -> Iterator[SpecProblem]:
    if not user:
        yield _problem("user", "must not be empty", "the name of the user who owns the object")


def compute_template_problems(template: ComputeTemplate, path_namespace: str) -> list[SpecProblem]:
    """What the API server refuses in a compute template created in ``path_namespace``."""
    problems = list(
        _identity_problems(
            template.name, template.namespace, path_namespace, ObjectKind.RAY_CLUSTER
        )
    )
    if template.cpu == 0:
        problems.append(_problem("cpu", "must not be zero", "a whole number of CPUs, at least 1"))
    if template.memory == 0:
        problems.append(_problem("memory", "must not be zero", "GiB of memory, at least 1"))
    return problems


def _pull_policy_problems(policy: str | None, path: str) -> Iterator[SpecProblem]:
    if policy and policy not in _IMAGE_PULL_POLICIES:
        yield _problem(path, f"{policy!r} is not supported", " or ".join(_IMAGE_PULL_POLICIES))


def cluster_spec_problems(
    spec: ClusterSpec | None, prefix: str = "clusterSpec"
) -> list[SpecProblem]:
    """What the API server refuses in a cluster spec (a cluster's or a RayService's)."""
    if spec is None:
        return [_problem(prefix, "is required", "a cluster spec with at least a headGroupSpec")]
    problems: list[SpecProblem] = []
    head_path = field_path(prefix, "headGroupSpec")
    head = spec.head_group_spec
    if head is None:
        hint = "the head group: computeTemplate and rayStartParams"
        return [_problem(head_path, "is required", hint)]
    if not head.compute_template:
        path = field_path(head_path, "computeTemplate")
        problems.append(_problem(path, "must not be empty", "the name of a compute template"))
    if not head.ray_start_params:
        path = field_path(head_path, "rayStartParams")
        hint = 'at least one ray start option, e.g. {"dashboard-host": "0.0.0.0"}'
        problems.append(_problem(path, "must not be empty", hint))
    problems += _pull_policy_problems(head.image_pull_policy, f"{head_path}.imagePullPolicy")
    for index, group in enumerate(spec.worker_group_spec):
        problems += _worker_group_problems(group, field_path(prefix, "workerGroupSpec", index))
    return problems


def _worker_group_problems(group: WorkerGroupSpec, path: str) -> Iterator[SpecProblem]:
    if not group.group_name:
        hint = "a name unique within the cluster"
        yield _problem(field_path(path, "groupName"), "must not be empty", hint)
    if not group.compute_template:
        hint = "the name of a compute template"
        yield _problem(field_path(path, "computeTemplate"), "must not be empty", hint)
    if group.max_replicas == 0:
        hint = "a positive number of workers"
        yield _problem(field_path(path, "maxReplicas"), "must not be zero", hint)
    elif group.min_replicas > group.max_replicas:
        message = f"{group.min_replicas} is greater than maxReplicas {group.max_replicas}"
        yield _problem(field_path(path, "minReplicas"), message, f"at most {group.max_replicas}")
    yield from _pull_policy_problems(group.image_pull_policy, field_path(path, "imagePullPolicy"))


def cluster_problems(cluster: Cluster, path_namespace: str) -> list[SpecProblem]:
    """What the API server refuses in a cluster created in ``path_namespace``."""
    problems = list(
        _identity_problems(cluster.name, cluster.namespace, path_namespace, ObjectKind.RAY_CLUSTER)
    )
    problems += _user_problems(cluster.user)
    return problems + cluster_spec_problems(cluster.cluster_spec)


def service_problems(
    service: RayService, path_namespace: str, path_name: str | None = None
) -> list[SpecProblem]:
    """What the API server refuses in a RayService created (or, with ``path_name``, updated)
    in ``path_namespace``."""
    problems = list(
        _identity_problems(service.name, service.namespace, path_namespace, ObjectKind.RAY_SERVICE)
    )
    if path_name is not None and service.name and service.name != path_name:
        message = f"{service.name!r} differs from the name in the path, {path_name!r}"
        problems.append(_problem("name", message, repr(path_name)))
    problems += _user_problems(service.user)
    if not service.serve_config_v2:
        hint = "a YAML string in Ray Serve's config format, with applications"
        problems.append(_problem("serveConfigV2", "is required", hint))
    return problems + cluster_spec_problems(service.cluster_spec)


def job_submission_problems(job: RayJobSubmission) -> list[SpecProblem]:
    """What a job submission must have."""
    if job.entrypoint:
        return []
    return [_problem("entrypoint", "must not be empty", "the shell command that runs the job")]


def submission_yaml_problems(body: SubmissionYaml) -> list[SpecProblem]:
    """What a Serve applications submission must have."""
    if body.configyaml.strip():
        return []
    hint = "a YAML string in Ray Serve's config format, with applications"
    return [_problem("configyaml", "must not be empty", hint)]


def check(problems: list[SpecProblem]) -> None:
    """Raise :class:`InvalidSpec` when there is any problem."""
    if problems:
        raise InvalidSpec(problems)


def validate_compute_template(template: ComputeTemplate, path_namespace: str) -> None:
    check(compute_template_problems(template, path_namespace))


def validate_cluster(cluster: Cluster, path_namespace: str) -> None:
    check(cluster_problems(cluster, path_namespace))


def validate_service(
    service: RayService, path_namespace: str, path_name: str | None = None
) -> None:
    check(service_problems(service, path_namespace, path_name))


# ---------------------------------------------------------------------------------------------
# Conversion to manifests


def cluster_manifest(cluster: Cluster, templates: Mapping[str, ComputeTemplate]) -> dict[str, Any]:
    """The ``RayCluster`` manifest a cluster body stands for; ``templates`` are the compute
    templates of the cluster's namespace, by name. Raises :class:`InvalidSpec` when a group
    names a template that does not exist (and for everything :func:`validate_cluster` finds)."""
    validate_cluster(cluster, cluster.namespace)
    assert cluster.cluster_spec is not None  # validated
    spec = _cluster_spec(cluster.cluster_spec, cluster.version, cluster.envs, templates)
    return {
        "apiVersion": API_VERSION,
        "kind": ObjectKind.RAY_CLUSTER.value,
        "metadata": {
            "name": cluster.name,
            "namespace": cluster.namespace,
            "labels": {USER_LABEL: cluster.user},
            "annotations": dict(cluster.annotations or {}),
        },
        "spec": spec,
    }


def service_manifest(
    service: RayService, templates: Mapping[str, ComputeTemplate]
) -> dict[str, Any]:
    """The ``RayService`` manifest a RayService body stands for (see :func:`cluster_manifest`)."""
    validate_service(service, service.namespace)
    assert service.cluster_spec is not None and service.serve_config_v2 is not None  # validated
    cluster_spec = _cluster_spec(service.cluster_spec, service.version, None, templates)
    return {
        "apiVersion": API_VERSION,
        "kind": ObjectKind.RAY_SERVICE.value,
        "metadata": {
            "name": service.name,
            "namespace": service.namespace,
            "labels": {USER_LABEL: service.user},
        },
        "spec": {"serveConfigV2": service.serve_config_v2, "rayClusterConfig": cluster_spec},
    }


def _cluster_spec(
    spec: ClusterSpec,
    version: str | None,
    envs: EnvironmentVariables | None,
    templates: Mapping[str, ComputeTemplate],
) -> dict[str, Any]:
    """A ``RayClusterSpec``; raises :class:`InvalidSpec` naming every missing template."""
    head = spec.head_group_spec
    assert head is not None  # validated
    check(list(_missing_template_problems(spec, templates)))
    head_template = _pod_template(
        head, templates[head.compute_template], version, envs, HEAD_CONTAINER
    )
    head_spec: dict[str, Any] = {
        "rayStartParams": dict(head.ray_start_params),
        "template": head_template,
    }
    if head.service_type:
        head_spec["serviceType"] = head.service_type
    if head.enable_ingress:
        head_spec["enableIngress"] = True
    result: dict[str, Any] = {"headGroupSpec": head_spec, "workerGroupSpecs": []}
    if version:
        result["rayVersion"] = version
    for group in spec.worker_group_spec:
        template = templates[group.compute_template]
        result["workerGroupSpecs"].append(
            {
                "groupName": group.group_name,
                "replicas": group.replicas,
                # a zero bound means "as many as replicas", as the API server reads it
                "minReplicas": group.min_replicas or group.replicas,
                "maxReplicas": group.max_replicas or group.replicas,
                "rayStartParams": dict(group.ray_start_params),
                "template": _pod_template(group, template, version, envs, WORKER_CONTAINER),
            }
        )
    if spec.head_service_annotations:
        result["headServiceAnnotations"] = dict(spec.head_service_annotations)
    if spec.enable_in_tree_autoscaling:
        result["enableInTreeAutoscaling"] = True
        if spec.autoscaler_options is not None:
            result["autoscalerOptions"] = _autoscaler_options(spec.autoscaler_options)
    return result


def _missing_template_problems(
    spec: ClusterSpec, templates: Mapping[str, ComputeTemplate]
) -> Iterator[SpecProblem]:
    groups: list[tuple[str, _GroupSpec]] = [
        (field_path("clusterSpec", "workerGroupSpec", index), group)
        for index, group in enumerate(spec.worker_group_spec)
    ]
    if spec.head_group_spec is not None:
        groups.insert(0, ("clusterSpec.headGroupSpec", spec.head_group_spec))
    known = ", ".join(sorted(templates)) or "none exist: create a compute template first"
    for path, group in groups:
        if group.compute_template and group.compute_template not in templates:
            message = f"compute template {group.compute_template!r} does not exist"
            yield _problem(field_path(path, "computeTemplate"), message, known)


def _pod_template(
    group: _GroupSpec,
    compute: ComputeTemplate,
    version: str | None,
    envs: EnvironmentVariables | None,
    container_name: str,
) -> dict[str, Any]:
    """A group's pod template: one container sized by the compute template."""
    container: dict[str, Any] = {
        "name": container_name,
        "image": group.image or f"{DEFAULT_IMAGE_REPOSITORY}:{version or 'latest'}",
        "resources": {"limits": _amounts(compute), "requests": _amounts(compute)},
    }
    if group.image_pull_policy:
        container["imagePullPolicy"] = group.image_pull_policy
    env = _env(envs) + _env(group.environment)
    if env:
        container["env"] = env
    mounts = [_volume_mount(volume) for volume in group.volumes or []]
    if mounts:
        container["volumeMounts"] = mounts
    if group.security_context is not None:
        container["securityContext"] = group.security_context.model_dump(exclude_none=True)
    pod_spec: dict[str, Any] = {"containers": [container]}
    if compute.tolerations:
        pod_spec["tolerations"] = [_toleration(t) for t in compute.tolerations]
    volumes = [_volume(volume) for volume in group.volumes or []]
    if volumes:
        pod_spec["volumes"] = volumes
    if group.service_account:
        pod_spec["serviceAccountName"] = group.service_account
    if group.image_pull_secret:
        pod_spec["imagePullSecrets"] = [{"name": group.image_pull_secret}]
    # the template's name stays with the group, so a manifest can be read back as a cluster body
    annotations = {COMPUTE_TEMPLATE_ANNOTATION: compute.name}
    if group.image:
        annotations[IMAGE_ANNOTATION] = group.image
    annotations.update(group.annotations or {})
    metadata: dict[str, Any] = {"annotations": annotations}
    if group.labels:
        metadata["labels"] = dict(group.labels)
    return {"metadata": metadata, "spec": pod_spec}


def _amounts(compute: ComputeTemplate) -> dict[str, str]:
    """Container resources of a compute template, as Kubernetes quantities."""
    amounts = {
        "cpu": str(compute.cpu),
        "memory": f"{compute.memory}{compute.memory_unit or DEFAULT_MEMORY_UNIT}",
    }
    if compute.gpu:
        amounts[compute.gpu_accelerator or DEFAULT_GPU_RESOURCE] = str(compute.gpu)
    for name, amount in (compute.extended_resources or {}).items():
        if amount:
            amounts[name] = str(amount)
    return amounts


def _env(envs: EnvironmentVariables | None) -> list[dict[str, Any]]:
    if envs is None:
        return []
    plain = [{"name": k, "value": v} for k, v in (envs.values or {}).items()]
    return plain + [
        {"name": k, "valueFrom": _env_source(v)} for k, v in (envs.values_from or {}).items()
    ]


def _env_source(source: EnvValueFrom) -> dict[str, Any]:
    if source.source is EnvValueSource.CONFIGMAP:
        return {"configMapKeyRef": {"name": source.name, "key": source.key}}
    if source.source is EnvValueSource.SECRET:
        return {"secretKeyRef": {"name": source.name, "key": source.key}}
    if source.source is EnvValueSource.RESOURCEFIELD:
        return {"resourceFieldRef": {"containerName": source.name, "resource": source.key}}
    return {"fieldRef": {"fieldPath": source.key}}


def _toleration(toleration: PodToleration) -> dict[str, Any]:
    effect = (
        toleration.effect
        if toleration.effect in ("NoExecute", "NoSchedule")
        else "PreferNoSchedule"
    )
    result: dict[str, Any] = {
        "key": toleration.key,
        "operator": "Exists" if toleration.operator == "Exists" else "Equal",
        "effect": effect,
    }
    if toleration.value:
        result["value"] = toleration.value
    return result


def _volume_mount(volume: Volume) -> dict[str, Any]:
    mount: dict[str, Any] = {"name": volume.name, "mountPath": volume.mount_path}
    if volume.read_only:
        mount["readOnly"] = True
    if volume.mount_propagation_mode is MountPropagationMode.HOSTTOCONTAINER:
        mount["mountPropagation"] = "HostToContainer"
    elif volume.mount_propagation_mode is MountPropagationMode.BIDIRECTIONAL:
        mount["mountPropagation"] = "Bidirectional"
    return mount


def _volume(volume: Volume) -> dict[str, Any]:
    """The pod volume a volume body asks for (the local backend mounts none of them)."""
    items = [{"key": k, "path": v} for k, v in (volume.items or {}).items()]
    source: dict[str, Any]
    match volume.volume_type:
        case VolumeType.CONFIGMAP:
            source = {"configMap": {"name": volume.source, **({"items": items} if items else {})}}
        case VolumeType.SECRET:
            source = {
                "secret": {"secretName": volume.source, **({"items": items} if items else {})}
            }
        case VolumeType.EMPTY_DIR:
            source = {"emptyDir": {"sizeLimit": volume.storage} if volume.storage else {}}
        case VolumeType.HOST_PATH:
            kind = "File" if volume.host_path_type is HostPathType.FILE else "Directory"
            source = {"hostPath": {"path": volume.source, "type": kind}}
        case VolumeType.EPHEMERAL:
            claim: dict[str, Any] = {
                "accessModes": [_ACCESS_MODES[volume.access_mode or AccessMode.RWO]],
                "resources": {"requests": {"storage": volume.storage}},
            }
            if volume.storage_class_name:
                claim["storageClassName"] = volume.storage_class_name
            source = {"ephemeral": {"volumeClaimTemplate": {"spec": claim}}}
        case _:
            claim_ref: dict[str, Any] = {"claimName": volume.source}
            if volume.read_only:
                claim_ref["readOnly"] = True
            source = {"persistentVolumeClaim": claim_ref}
    return {"name": volume.name, **source}


_ACCESS_MODES = {
    AccessMode.RWO: "ReadWriteOnce",
    AccessMode.ROX: "ReadOnlyMany",
    AccessMode.RWX: "ReadWriteMany",
}


def _autoscaler_options(options: AutoscalerOptions) -> dict[str, Any]:
    result: dict[str, Any] = {}
    if options.idle_timeout_seconds is not None:
        result["idleTimeoutSeconds"] = options.idle_timeout_seconds
    if options.upscaling_mode:
        result["upscalingMode"] = options.upscaling_mode
    if options.image:
        result["image"] = options.image
    if options.image_pull_policy:
        result["imagePullPolicy"] = options.image_pull_policy
    amounts = {
        name: value for name, value in (("cpu", options.cpu), ("memory", options.memory)) if value
    }
    if amounts:
        result["resources"] = {"limits": amounts, "requests": dict(amounts)}
    env = _env(options.envs)
    if env:
        result["env"] = env
    return result
