"""Which accepted manifest fields have no effect on the local backend.

Manifests written for Kubernetes carry images, volumes, scheduling rules and ports that mean
nothing when Ray runs as local processes. They are accepted so that KubeRay manifests load
unchanged, and listed here so that users are told, instead of wondering why a field did nothing.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from rayservice.spec.autoscaling import AUTOSCALER_SETTINGS
from rayservice.spec.manifest import (
    HeadGroupSpec,
    Manifest,
    RayCluster,
    RayClusterSpec,
    RayServiceSpec,
    dashboard_port_entry,
    node_groups,
    requested_serve_port,
    serve_port_entry,
)
from rayservice.spec.paths import field_path
from rayservice.spec.references import KEY_REFERENCES
from rayservice.spec.resources import is_gpu_resource
from rayservice.spec.vocabulary import AnnotationKey

BACKEND_MANAGED_RAY_START_PARAMS = frozenset(
    {
        "address",
        "block",
        "dashboard-agent-grpc-port",
        "dashboard-agent-listen-port",
        "dashboard-host",
        "dashboard-port",
        "head",
        "max-worker-port",
        "metrics-export-port",
        "min-worker-port",
        "node-ip-address",
        "node-manager-port",
        "object-manager-port",
        "port",
        "ray-client-server-port",
        "runtime-env-agent-port",
        "temp-dir",
        "worker-port-list",
    }
)
"""``ray start`` options the local backend chooses itself (addresses, ports, directories)."""

FIXED_PORT_PARAMS = frozenset({"metrics-export-port", "dashboard-agent-listen-port"})
"""Ports the head of a standalone RayCluster may fix (a metrics scraper, a tool that talks to
the agent): honoured when free. A RayService's head gets its own, because during an upgrade
two of its clusters run side by side on this machine and could not share one."""

_USED_CONTAINER_FIELDS = frozenset({"name", "resources", "env", "envFrom"})
_USED_RESOURCE_NAMES = frozenset({"cpu", "memory"})
_KUBERNETES_ONLY_HEAD_FIELDS = ("enableIngress", "ingressOptions")
_USED_CONTAINER_PORT_FIELDS = frozenset({"name", "containerPort", "protocol"})
_UNUSED_CLUSTER_FIELDS = ("authOptions", "headServiceAnnotations", "historyServerOptions",
                          "managedBy", "networkPolicy", "tlsOptions")  # fmt: skip
_UNUSED_GROUP_FIELDS = ("labels", "resources", "idleTimeoutSeconds", "priority")
_UNUSED_SERVICE_FIELDS = ("managedBy", "suspend", "deploymentUnhealthySecondThreshold",
                          "serviceUnhealthySecondThreshold")  # fmt: skip


def ignored_fields(manifest: Manifest) -> list[str]:
    """Paths of the fields in ``manifest`` that are accepted but have no effect locally."""
    if isinstance(manifest, RayCluster):
        used_ports = _used_head_ports(manifest.spec, manifest.serve_service_enabled)
        return list(
            _cluster_fields(manifest.spec, "spec", FIXED_PORT_PARAMS, used_ports, head_named=True)
        )
    spec = manifest.spec
    requested = requested_serve_port(manifest)
    used_ports = _used_head_ports(spec.rayClusterConfig, serve_preferred=requested is None)
    paths = list(
        _cluster_fields(
            spec.rayClusterConfig, "spec.rayClusterConfig", frozenset(), used_ports,
            head_named=False,
        )
    )  # fmt: skip
    options = spec.upgradeStrategy.clusterUpgradeOptions
    if options is not None and options.gatewayClassName is not None:
        paths.append("spec.upgradeStrategy.clusterUpgradeOptions.gatewayClassName")
    if spec.serveService is not None:
        paths += _service_fields(
            spec.serveService,
            "spec.serveService",
            _USED_SERVE_SERVICE_METADATA,
            requested[0] if requested is not None else None,
        )
    paths += [f"spec.serveConfigV2.http_options.{name}" for name in _proxy_options(spec)]
    paths += [f"spec.{name}" for name in _UNUSED_SERVICE_FIELDS if getattr(spec, name) is not None]
    return paths


_USED_SERVE_SERVICE_METADATA = frozenset({"name", "labels", "annotations"})
_USED_SERVICE_PORT_FIELDS = frozenset({"name", "port"})


def _service_fields(
    service: Mapping[str, Any],
    prefix: str,
    used_metadata: frozenset[str],
    used_port: int | None = None,
) -> Iterator[str]:
    """What of a Service (``spec.serveService``, ``headGroupSpec.headService``) means nothing
    here: all but the metadata fields ``used_metadata``, its type (where it listens), and the
    name and port of the entry at index ``used_port`` (the one asking for the port)."""
    for key, value in service.items():
        path = field_path(prefix, key)
        if key in ("apiVersion", "kind"):
            continue
        if key == "metadata" and isinstance(value, Mapping):
            yield from (field_path(path, k) for k in value if k not in used_metadata)
        elif key == "spec" and isinstance(value, Mapping):
            for field, content in value.items():
                spec_path = field_path(path, field)
                if field == "type":
                    continue
                if field != "ports" or not isinstance(content, list):
                    yield spec_path
                    continue
                for index, port in enumerate(content):
                    if index != used_port or not isinstance(port, Mapping):
                        yield field_path(spec_path, index)
                        continue
                    yield from (
                        field_path(spec_path, index, k)
                        for k in port
                        if k not in _USED_SERVICE_PORT_FIELDS
                    )
        else:
            yield path


_PROXY_OPTIONS_SET_HERE = ("host", "port")


def _proxy_options(spec: RayServiceSpec) -> list[str]:
    """The ``http_options`` of serveConfigV2 the controller sets itself: each cluster's Serve
    proxies listen on 127.0.0.1 at ports of its own (the Service in front has the port users
    know)."""
    options = spec.serve_config().get("http_options")
    return [
        name for name in _PROXY_OPTIONS_SET_HERE if isinstance(options, dict) and name in options
    ]


def _cluster_fields(
    spec: RayClusterSpec,
    prefix: str,
    honoured_on_head: frozenset[str],
    used_head_ports: frozenset[int],
    *,
    head_named: bool,
) -> Iterator[str]:
    """``used_head_ports``: indexes of the head container's ports a Service takes its port
    from; ``head_named``: the head Service takes ``headService.metadata.name`` (a
    RayCluster's; a RayService's head Service is always ``<name>-head-svc``)."""
    for name in _UNUSED_CLUSTER_FIELDS:
        if getattr(spec, name):
            yield f"{prefix}.{name}"
    yield from _autoscaler_fields(spec, f"{prefix}.autoscalerOptions")
    options = spec.gcsFaultToleranceOptions
    if options is not None and options.storage is not None:
        # the volume of an embedded RocksDB store: here it is a folder of the cluster
        yield f"{prefix}.gcsFaultToleranceOptions.storage"
    yield from _head_only_fields(spec.headGroupSpec, f"{prefix}.headGroupSpec", head_named)
    for relative_path, group in node_groups(spec):
        group_path = f"{prefix}.{relative_path}"
        is_head = group is spec.headGroupSpec
        honoured = honoured_on_head if is_head else frozenset()
        yield from _ray_start_param_fields(group.rayStartParams, group_path, honoured)
        unused = (name for name in _UNUSED_GROUP_FIELDS if getattr(group, name, None) is not None)
        yield from (field_path(group_path, name) for name in unused)
        used_ports = used_head_ports if is_head else frozenset()
        yield from _template_fields(group.template, field_path(group_path, "template"), used_ports)


def _autoscaler_fields(spec: RayClusterSpec, options_path: str) -> Iterator[str]:
    """Ray's autoscaler runs as a process of the cluster: of ``autoscalerOptions`` only its
    settings count, not its container's fields (and nothing without
    ``enableInTreeAutoscaling``)."""
    options = spec.autoscalerOptions
    if options is None:
        return
    if not spec.enableInTreeAutoscaling:
        yield options_path
        return
    for name in options.model_dump(exclude_none=True):
        if name not in AUTOSCALER_SETTINGS:
            yield field_path(options_path, name)


def _head_only_fields(head: HeadGroupSpec, head_path: str, head_named: bool) -> Iterator[str]:
    values = head.model_dump(include=set(_KUBERNETES_ONLY_HEAD_FIELDS))
    for name in _KUBERNETES_ONLY_HEAD_FIELDS:
        if values.get(name) is not None:
            yield field_path(head_path, name)
    if head.headService is not None:
        used = frozenset({"name"}) if head_named else frozenset()
        yield from _service_fields(head.headService, field_path(head_path, "headService"), used)


def _used_head_ports(spec: RayClusterSpec, serve_preferred: bool) -> frozenset[int]:
    """Indexes of the head container's ports that give a Service its preferred port: the one
    named ``dashboard``, and the one named ``serve`` (or ``serve-*``) when ``serve_preferred``
    (a serve Service exists and no port of its own is asked for)."""
    entries = (serve_port_entry(spec) if serve_preferred else None, dashboard_port_entry(spec))
    return frozenset(entry for entry in entries if entry is not None)


def _ray_start_param_fields(
    params: Mapping[str, str], group_path: str, honoured: frozenset[str]
) -> Iterator[str]:
    for name in params:
        if name in BACKEND_MANAGED_RAY_START_PARAMS and name not in honoured:
            yield field_path(group_path, "rayStartParams", name)


def _template_fields(
    template: Mapping[str, Any], template_path: str, used_ports: frozenset[int]
) -> Iterator[str]:
    for key, value in template.items():
        path = field_path(template_path, key)
        if key == "metadata" and isinstance(value, Mapping):
            yield from _pod_metadata_fields(value, path)
        elif key == "spec" and isinstance(value, Mapping):
            yield from _pod_spec_fields(value, path, used_ports)
        else:
            yield path


def _pod_metadata_fields(metadata: Mapping[str, Any], metadata_path: str) -> Iterator[str]:
    for key, value in metadata.items():
        path = field_path(metadata_path, key)
        if key == "annotations" and isinstance(value, Mapping):
            for name in value:
                if name != AnnotationKey.FT_ENABLED:
                    yield field_path(path, name)
        else:
            yield path


def _pod_spec_fields(
    pod_spec: Mapping[str, Any], pod_spec_path: str, used_ports: frozenset[int]
) -> Iterator[str]:
    for key, value in pod_spec.items():
        path = field_path(pod_spec_path, key)
        if key != "containers" or not isinstance(value, list):
            yield path
            continue
        for index, container in enumerate(value):
            container_path = field_path(path, index)
            if index == 0 and isinstance(container, Mapping):
                yield from _container_fields(container, container_path, used_ports)
            else:
                yield container_path


def _container_fields(
    container: Mapping[str, Any], container_path: str, used_ports: frozenset[int]
) -> Iterator[str]:
    for key, value in container.items():
        path = field_path(container_path, key)
        if key == "ports" and isinstance(value, list) and used_ports:
            yield from _container_port_fields(value, path, used_ports)
        elif key not in _USED_CONTAINER_FIELDS:
            yield path
        elif key == "resources" and isinstance(value, Mapping):
            yield from _resource_fields(value, path)
        elif key == "env" and isinstance(value, list):
            yield from _env_reference_fields(value, path)


def _container_port_fields(
    ports: list[Any], ports_path: str, used: frozenset[int]
) -> Iterator[str]:
    """Every port entry but those at the indexes ``used``, of which only fields other than the
    name, the port and the protocol (TCP, as everything here) are listed."""
    for index, port in enumerate(ports):
        if index not in used or not isinstance(port, Mapping):
            yield field_path(ports_path, index)
            continue
        yield from (
            field_path(ports_path, index, k) for k in port if k not in _USED_CONTAINER_PORT_FIELDS
        )


def _env_reference_fields(env: list[Any], env_path: str) -> Iterator[str]:
    """Variables taken from the pod (its fields, its containers' resources) have no value
    here; those taken from Secrets and ConfigMaps do (:mod:`rayservice.spec.references`)."""
    for index, variable in enumerate(env):
        value_from = variable.get("valueFrom") if isinstance(variable, Mapping) else None
        if isinstance(value_from, Mapping) and not KEY_REFERENCES.keys() & value_from.keys():
            yield field_path(env_path, index, "valueFrom")


def _resource_fields(resources: Mapping[str, Any], resources_path: str) -> Iterator[str]:
    for kind, amounts in resources.items():
        path = field_path(resources_path, kind)
        if kind not in ("limits", "requests") or not isinstance(amounts, Mapping):
            yield path
            continue
        for name in amounts:
            if name not in _USED_RESOURCE_NAMES and not is_gpu_resource(name):
                yield field_path(path, name)
