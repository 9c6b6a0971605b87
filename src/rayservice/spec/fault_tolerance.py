"""GCS fault tolerance as a manifest asks for it: whether it is on, whose Redis keeps the state,
and KubeRay's rules for the fields that switch it on.

Fault tolerance is on with ``gcsFaultToleranceOptions`` or with the annotation
``ray.io/ft-enabled: "true"``. KubeRay reads the annotation on the cluster object's metadata;
seed manifests put it on the head's pod template; both are accepted here, a worker template is
not a place for it. The Redis address rule is decided once, in :func:`redis_is_managed`: no
address, or one that names a Kubernetes Service (a bare host such as ``redis``, or
``*.svc...``), means rayservice runs and supervises a Redis of its own on loopback; any other
address is used as given.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import urlsplit

from rayservice.spec.errors import SpecProblem
from rayservice.spec.manifest import RayClusterSpec
from rayservice.spec.paths import field_path
from rayservice.spec.vocabulary import AnnotationKey, GcsBackend

REDIS_ADDRESS_ENV = "RAY_REDIS_ADDRESS"
REDIS_PASSWORD_ENV = "REDIS_PASSWORD"
REDIS_USERNAME_ENV = "REDIS_USERNAME"
STORAGE_NAMESPACE_ENV = "RAY_external_storage_namespace"
GCS_STORAGE_ENVS = ("RAY_gcs_storage", "RAY_gcs_storage_path")
REDIS_PASSWORD_PARAM = "redis-password"
REDIS_USERNAME_PARAM = "redis-username"
REDIS_DEFAULT_PORT = 6379
_SERVICE_DOMAIN_LABEL = "svc"  # <service>.<namespace>.svc[.cluster.local]
_LOCAL_NAMES = frozenset({"localhost"})


def _env_items(template: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The env entries of a pod template's first (the Ray) container; none where the template
    is malformed (its own checks report that)."""
    spec = template.get("spec")
    containers = spec.get("containers") if isinstance(spec, Mapping) else None
    if not isinstance(containers, list) or not containers or not isinstance(containers[0], dict):
        return []
    env = containers[0].get("env")
    return [item for item in env if isinstance(item, Mapping)] if isinstance(env, list) else []


def container_env(template: Mapping[str, Any]) -> dict[str, str]:
    """The literal environment of a pod template's first (the Ray) container."""
    return {
        str(item["name"]): str(item["value"])
        for item in _env_items(template)
        if "name" in item and "value" in item
    }


def _env_names(template: Mapping[str, Any]) -> set[str]:
    return {str(item.get("name")) for item in _env_items(template)}


def may_name_redis(spec: RayClusterSpec) -> bool:
    """Whether the spec names a Redis, or may through what Kubernetes resolves: the options'
    address, or a ``RAY_REDIS_ADDRESS`` of the head's (a value or a ``valueFrom``), or an
    ``envFrom`` that may hold one."""
    if redis_address(spec) or REDIS_ADDRESS_ENV in _env_names(spec.headGroupSpec.template):
        return True
    pod = spec.headGroupSpec.template.get("spec")
    containers = pod.get("containers") if isinstance(pod, Mapping) else None
    head = containers[0] if isinstance(containers, list) and containers else None
    return spec.gcsFaultToleranceOptions is None and bool(
        isinstance(head, Mapping) and head.get("envFrom")
    )


def _template_annotations(template: Mapping[str, Any]) -> Mapping[str, Any]:
    metadata = template.get("metadata")
    annotations = metadata.get("annotations") if isinstance(metadata, Mapping) else None
    return annotations if isinstance(annotations, Mapping) else {}


def _annotation(spec: RayClusterSpec, annotations: Mapping[str, str]) -> str:
    """The ``ray.io/ft-enabled`` value on the object, else on the head template, else ''."""
    value = annotations.get(AnnotationKey.FT_ENABLED)
    if value is None:
        value = _template_annotations(spec.headGroupSpec.template).get(AnnotationKey.FT_ENABLED)
    return "" if value is None else str(value)


def is_enabled(spec: RayClusterSpec, annotations: Mapping[str, str]) -> bool:
    """KubeRay's test: the options are set, or the annotation says true (any case)."""
    return spec.gcsFaultToleranceOptions is not None or _annotation(spec, annotations).lower() == (
        "true"
    )


def redis_address(spec: RayClusterSpec) -> str:
    """The Redis address the manifest names ('' when none): the options', else the head's
    ``RAY_REDIS_ADDRESS``."""
    options = spec.gcsFaultToleranceOptions
    if options is not None:
        return options.redisAddress or ""
    return container_env(spec.headGroupSpec.template).get(REDIS_ADDRESS_ENV, "")


def redis_location(address: str) -> tuple[str, int]:
    """Host and port of ``host[:port]``, ``redis://[user:password@]host[:port][/db]`` and the
    like (port 6379 when none is given); ValueError for a port that is not one."""
    text = address.strip()
    if "://" not in text:
        text = f"redis://{text}"
    parts = urlsplit(text)
    port = REDIS_DEFAULT_PORT if parts.port is None else parts.port
    if port == 0:
        raise ValueError("port 0 is not a port to connect to")
    return (parts.hostname or "").lower(), port


def redacted(address: str) -> str:
    """The address without a user name or password, to show in events and ``describe``."""
    if "@" not in address:
        return address
    scheme, _, rest = address.rpartition("://")
    host = rest.rsplit("@", 1)[1]
    return f"{scheme}://{host}" if scheme else host


def redis_is_managed(address: str) -> bool:
    """Whether rayservice runs the Redis itself: no address, or a Kubernetes Service name,
    which only resolves inside a Kubernetes cluster."""
    try:
        host, _ = redis_location(address)
    except ValueError:
        return False
    if not host:
        return True
    if host in _LOCAL_NAMES or ":" in host:  # localhost, or an IPv6 address
        return False
    labels = host.split(".")
    return len(labels) == 1 or _SERVICE_DOMAIN_LABEL in labels[1:]


def storage_namespace(spec: RayClusterSpec, annotations: Mapping[str, str], cluster: str) -> str:
    """Where in Redis the cluster keeps its GCS state: its own name, after the namespace the
    manifest names (the options', else KubeRay's annotation, else the head's
    ``RAY_external_storage_namespace``) when it names one. The cluster's name is always part
    of it: the clusters of one service run side by side during an upgrade, and a new cluster
    must neither share nor wipe the state of the one still serving."""
    options = spec.gcsFaultToleranceOptions
    named = (
        (options.externalStorageNamespace if options is not None else None)
        or annotations.get(AnnotationKey.EXTERNAL_STORAGE_NAMESPACE)
        or container_env(spec.headGroupSpec.template).get(STORAGE_NAMESPACE_ENV)
    )
    return f"{named}-{cluster}" if named else cluster


def summary(spec: RayClusterSpec, annotations: Mapping[str, str]) -> str:
    """One line for ``describe``: whether the GCS state outlives the head, and where it lives."""
    if not is_enabled(spec, annotations):
        return "off: the cluster starts over when its head is lost"
    options = spec.gcsFaultToleranceOptions
    if options is not None and options.backend is GcsBackend.ROCKSDB:
        return "on: embedded RocksDB files of the head, kept with the cluster"
    address = redis_address(spec)
    if redis_is_managed(address):
        named = (
            f"the manifest names {redacted(address)!r}, a Kubernetes Service"
            if address
            else "none named"
        )
        return f"on: the Redis rayservice runs (loopback, $RAYSERVICE_HOME/redis; {named})"
    return f"on: the Redis at {redacted(address)}"


def problems(
    spec: RayClusterSpec, annotations: Mapping[str, str], source: str, prefix: str
) -> Iterator[SpecProblem]:
    """KubeRay's validation of the fault tolerance fields, with their paths."""
    for index, group in enumerate(spec.workerGroupSpecs):
        if AnnotationKey.FT_ENABLED in _template_annotations(group.template):
            path = field_path(
                prefix,
                "workerGroupSpecs",
                index,
                "template",
                "metadata",
                "annotations",
                AnnotationKey.FT_ENABLED,
            )
            yield SpecProblem(
                source,
                path,
                "fault tolerance is a property of the cluster, not of a worker group",
                "the annotation on the object's metadata or on headGroupSpec.template",
            )
    head = spec.headGroupSpec
    head_env = _env_names(head.template)
    head_path = f"{prefix}.headGroupSpec"
    env_path = f"{head_path}.template.spec.containers[0].env"
    options = spec.gcsFaultToleranceOptions
    if options is not None and _annotation(spec, annotations):
        yield SpecProblem(
            source,
            f"{prefix}.gcsFaultToleranceOptions",
            f"is set together with the annotation {AnnotationKey.FT_ENABLED}",
            "one of them; gcsFaultToleranceOptions is KubeRay's current way",
        )
    address = redis_address(spec)
    try:
        redis_location(address)
    except ValueError as error:
        yield SpecProblem(
            source,
            f"{prefix}.gcsFaultToleranceOptions.redisAddress" if options else env_path,
            f"{address!r} is not a Redis address: {error}",
            "host:port or redis://host:port",
        )
    if not is_enabled(spec, annotations) and REDIS_ADDRESS_ENV in head_env:
        yield SpecProblem(
            source,
            env_path,
            f"{REDIS_ADDRESS_ENV} is set but GCS fault tolerance is not enabled",
            "gcsFaultToleranceOptions with redisAddress, or no RAY_REDIS_ADDRESS",
        )
    if head.rayStartParams.get(REDIS_USERNAME_PARAM) or REDIS_USERNAME_ENV in head_env:
        yield SpecProblem(
            source,
            f"{head_path}.rayStartParams",
            "a Redis username is set in rayStartParams or the head's environment",
            "gcsFaultToleranceOptions.redisUsername",
        )
    if options is None:
        return
    options_path = f"{prefix}.gcsFaultToleranceOptions"
    if annotations.get(AnnotationKey.EXTERNAL_STORAGE_NAMESPACE):
        yield SpecProblem(
            source,
            f"metadata.annotations.{AnnotationKey.EXTERNAL_STORAGE_NAMESPACE}",
            "cannot be set when gcsFaultToleranceOptions is set",
            f"{options_path}.externalStorageNamespace",
        )
    moved = {
        REDIS_PASSWORD_ENV: "redisPassword",
        REDIS_ADDRESS_ENV: "redisAddress",
        STORAGE_NAMESPACE_ENV: "externalStorageNamespace",
    }
    if head.rayStartParams.get(REDIS_PASSWORD_PARAM):
        yield SpecProblem(
            source,
            field_path(head_path, "rayStartParams", REDIS_PASSWORD_PARAM),
            "cannot be set when gcsFaultToleranceOptions is set",
            f"{options_path}.redisPassword",
        )
    for name, option in moved.items():
        if name in head_env:
            yield SpecProblem(
                source,
                env_path,
                f"{name} cannot be set when gcsFaultToleranceOptions is set",
                f"{options_path}.{option}",
            )
    if options.backend is GcsBackend.ROCKSDB:
        redis_only = {
            "redisAddress": options.redisAddress,
            "redisPassword": options.redisPassword,
            "redisUsername": options.redisUsername,
            "externalStorageNamespace": options.externalStorageNamespace,
        }
        for option, value in redis_only.items():
            if value:
                yield SpecProblem(
                    source,
                    f"{options_path}.{option}",
                    f"applies to the {GcsBackend.REDIS} backend only",
                    f"remove it, or backend: {GcsBackend.REDIS}",
                )
        for name in GCS_STORAGE_ENVS:
            if name in head_env:
                yield SpecProblem(
                    source,
                    env_path,
                    f"{name} is chosen by rayservice with the {GcsBackend.ROCKSDB} backend",
                    "remove it",
                )
    elif options.storage is not None:
        yield SpecProblem(
            source,
            f"{options_path}.storage",
            f"applies to the {GcsBackend.ROCKSDB} backend only",
            f"remove it, or backend: {GcsBackend.ROCKSDB}",
        )
