"""Which port each Service in front of a cluster asks for, and on which address it listens. Pure.

Ports follow KubeRay's manifests: ``spec.serveService.spec.ports`` is a hard request for the
serve Service (refused at apply when taken); the head container's port named ``serve`` (or
``serve-*``), or ``dashboard`` for the head Service, is a preference, used when free; with
neither the next free port from 8000 (serve) or 8265 (head) is taken. Container ports never make
a set-up fail: most of KubeRay's samples name 6379, 8265 and 10001 on the head, and two of them
side by side must both run.

Addresses: on Kubernetes a Service of type NodePort or LoadBalancer is reachable from other
hosts and a ClusterIP one only inside the cluster. Here every Service is a listener on this
machine, on loopback unless the manifest asks for NodePort or LoadBalancer; then it listens on
the controller's service address (all interfaces unless set otherwise). The head Service fronts
Ray's dashboard, which runs code for whoever holds the cluster's token, so it leaves loopback
only when the controller's settings name an address for head Services.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from rayservice.spec.addresses import is_loopback
from rayservice.spec.manifest import (
    Manifest,
    RayCluster,
    RayService,
    preferred_dashboard_port,
    preferred_serve_port,
    requested_serve_port,
)
from rayservice.spec.vocabulary import ALL_INTERFACES, LOCALHOST, Backend, ServicePort, ServiceType

FIRST_SERVE_PORT = 8000
FIRST_DASHBOARD_PORT = 8265


@dataclass(frozen=True)
class ExposureSettings:
    """The controller's word on Services that ask to be reachable from other hosts:
    ``service_address`` is where serve Services of type NodePort or LoadBalancer listen
    (127.0.0.1 keeps every Service on this machine); ``head_service_address`` is where head
    Services of such a type listen, None (the default) keeping them on loopback. On the
    Kubernetes backend neither applies: Kubernetes exposes its Services by their type."""

    service_address: str = ALL_INTERFACES
    head_service_address: str | None = None
    # where the Services are: listeners on this machine, or Kubernetes Services (whose
    # addresses are the cluster's and whose ports are only the manifest's)
    backend: Backend = Backend.LOCAL

    @property
    def on_this_machine(self) -> bool:
        return self.backend is Backend.LOCAL


DEFAULT_EXPOSURE = ExposureSettings()


@dataclass(frozen=True)
class PortAsk:
    """What a manifest asks of one Service's port: ``hard`` must be had exactly, ``preferred``
    is taken when free, else the next free port from ``preferred`` or ``first``."""

    hard: int | None
    preferred: int | None
    first: int

    @property
    def asked(self) -> int:
        """The port asked for by name (0: none), kept with the port it gave."""
        return self.hard or self.preferred or 0

    @property
    def start(self) -> int:
        """Where the search for a port begins."""
        return self.hard or self.preferred or self.first


def port_ask(manifest: Manifest, purpose: ServicePort) -> PortAsk:
    """The port the serve (``SERVE``) or head (``DASHBOARD``) Service of ``manifest`` asks for."""
    spec = manifest.spec.rayClusterConfig if isinstance(manifest, RayService) else manifest.spec
    if purpose is ServicePort.DASHBOARD:
        return PortAsk(None, preferred_dashboard_port(spec), FIRST_DASHBOARD_PORT)
    requested = requested_serve_port(manifest) if isinstance(manifest, RayService) else None
    hard = requested[1] if requested is not None else None
    return PortAsk(hard, preferred_serve_port(spec), FIRST_SERVE_PORT)


@dataclass(frozen=True)
class Exposure:
    """Where one Service listens and why: its type and the field that set it (None: the
    default, ClusterIP)."""

    service: str
    type: ServiceType
    type_field: str | None
    address: str

    @property
    def beyond_loopback(self) -> bool:
        return not is_loopback(self.address)


def _type_of(service: Any) -> ServiceType | None:
    spec = service.get("spec") if isinstance(service, dict) else None
    return _known(spec.get("type") if isinstance(spec, dict) else None)


def _known(value: object) -> ServiceType | None:
    """A Service type admission took; None for anything else (an object stored by an earlier
    release, which took any string, counts as ClusterIP)."""
    return ServiceType(value) if isinstance(value, str) and value in set(ServiceType) else None


def service_type(manifest: Manifest, purpose: ServicePort) -> tuple[ServiceType, str | None]:
    """The type of the serve (``SERVE``) or head (``DASHBOARD``) Service of ``manifest``, with
    the field that set it (None: the default, ClusterIP): the type of ``spec.serveService``
    (serve) or ``headGroupSpec.headService`` (head), else ``headGroupSpec.serviceType``, as
    KubeRay reads them."""
    if isinstance(manifest, RayService):
        head, head_path = manifest.spec.rayClusterConfig.headGroupSpec, "spec.rayClusterConfig"
        serve_service = manifest.spec.serveService
    else:
        head, head_path = manifest.spec.headGroupSpec, "spec"
        serve_service = None
    if purpose is ServicePort.SERVE:
        own = (_type_of(serve_service), "spec.serveService.spec.type")
    else:
        own = (_type_of(head.headService), f"{head_path}.headGroupSpec.headService.spec.type")
    default = (_known(head.serviceType), f"{head_path}.headGroupSpec.serviceType")
    for found, field in (own, default):
        if found is not None:
            return found, field
    return ServiceType.CLUSTER_IP, None


def exposure(manifest: Manifest, purpose: ServicePort, settings: ExposureSettings) -> Exposure:
    """Where the serve (``SERVE``) or head (``DASHBOARD``) Service of ``manifest`` listens."""
    found, field = service_type(manifest, purpose)
    exposed_at: str | None
    if purpose is ServicePort.SERVE:
        name, exposed_at = manifest.serve_service_name, settings.service_address
    else:
        name, exposed_at = manifest.head_service_name, settings.head_service_address
    address = LOCALHOST
    if found.reachable_from_other_hosts and exposed_at is not None:
        address = exposed_at
    return Exposure(name, found, field, address)


def exposure_warnings(manifest: Manifest, serve: bool, settings: ExposureSettings) -> list[str]:
    """What an apply must say about Services asking to be reachable from other hosts: that one
    is, and where; or that one stays on loopback, and why. ``serve``: whether the object has a
    serve Service (a RayCluster only with ``ray.io/enable-serve-service``)."""
    purposes = (ServicePort.SERVE, ServicePort.DASHBOARD) if serve else (ServicePort.DASHBOARD,)
    warnings = []
    for purpose in purposes:
        found = exposure(manifest, purpose, settings)
        if not found.type.reachable_from_other_hosts:
            continue
        asked = f"{found.type_field} is {found.type}"
        if found.beyond_loopback:
            warnings.append(
                f"{asked}: {found.service} listens on {found.address}, reachable from other hosts"
            )
        elif purpose is ServicePort.DASHBOARD and settings.head_service_address is None:
            warnings.append(
                f"{asked}, but {found.service} (Ray's dashboard, which runs code for whoever"
                f" holds the cluster's token) stays on {found.address}; start the controller"
                " with --head-service-address ADDRESS to expose head Services"
            )
        else:
            option = (
                "--service-address" if purpose is ServicePort.SERVE else ("--head-service-address")
            )
            warnings.append(
                f"{asked}, but {found.service} stays on loopback: the controller's {option} is"
                f" {found.address}"
            )
    return warnings


def serve_service_exists(manifest: Manifest) -> bool:
    """A RayService always has a serve Service; a RayCluster when its annotation asks."""
    return isinstance(manifest, RayService) or (
        isinstance(manifest, RayCluster) and manifest.serve_service_enabled
    )


DEFAULT_PROXY_PORT = 8000  # where a node's Serve proxy listens unless http_options says


def proxy_port(config: Mapping[str, Any]) -> int:
    """Where the nodes' Serve proxies listen by the Serve config: ``http_options.port``, else
    Serve's default (on Kubernetes every pod has its own address, so all nodes share it)."""
    options = config.get("http_options")
    port = options.get("port") if isinstance(options, Mapping) else None
    usable = isinstance(port, int) and not isinstance(port, bool) and 0 < port < 65536
    return port if usable and isinstance(port, int) else DEFAULT_PROXY_PORT
