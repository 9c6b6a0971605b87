"""What the v1 routes work with: the store, the cluster provider, Ray's Serve and job APIs.

Also the steps the routes share: storing a manifest made from a v1 body through admission (so
a v1 client meets every check ``rayservice apply`` makes), reading or deleting one object or
answering 404, a name checked before it touches a path, and the running cluster a Serve or
job request is for.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path
from typing import Any

from fastapi import Request, Response

from rayservice.api import admission
from rayservice.api.admission import InCluster
from rayservice.api.auth import caller_is_local
from rayservice.api.objects import add_warning
from rayservice.api.v1.errors import ApiFailure, invalid, not_found
from rayservice.providers.base import ClusterProvider
from rayservice.serve_client.base import ServeClient
from rayservice.serve_client.jobs import JobClient
from rayservice.spec.apiserver import REQUEST_BODY, GrpcCode
from rayservice.spec.events import ObjectKind
from rayservice.spec.loader import is_dns_1035_label
from rayservice.spec.observed import ObservedCluster
from rayservice.spec.service_exposure import DEFAULT_EXPOSURE, ExposureSettings
from rayservice.store.base import Store, StoredResource


@dataclass(frozen=True)
class V1Context:
    store: Store
    provider: ClusterProvider
    serve: ServeClient
    jobs: JobClient
    packages: Path  # the content-addressed package cache
    wake: Callable[[], None]  # tells the control loop that something changed
    exposure: ExposureSettings = DEFAULT_EXPOSURE  # where Services for other hosts listen
    in_cluster: InCluster | None = None  # the Kubernetes cluster's Secrets and ConfigMaps


def admit_manifest(
    ctx: V1Context, manifest: dict[str, Any], request: Request, response: Response
) -> StoredResource:
    """Store a manifest made from a v1 body as ``rayservice apply`` would (every check of
    admission), wake the controller, name the fields that mean nothing here and warn as the
    apply does (a Service reachable from other hosts, a taken preferred port ...)."""
    meta = manifest["metadata"]
    previous = ctx.store.get(str(manifest["kind"]), meta["namespace"], meta["name"])
    stored = admission.admit(
        ctx.store,
        manifest,
        REQUEST_BODY,
        Path.cwd(),
        ctx.packages,
        time.time(),
        f"{meta['namespace']}/{meta['name']}",
        may_read_local_paths=caller_is_local(request),
        exposure=ctx.exposure,
    )
    ctx.wake()
    warn_ignored(response, stored)
    warnings = admission.apply_warnings(ctx.store, previous, stored, ctx.exposure, ctx.in_cluster)
    for warning in warnings:
        add_warning(response, warning)
    return stored


def stored_or_404(ctx: V1Context, kind: ObjectKind, namespace: str, name: str) -> StoredResource:
    resource = ctx.store.get(kind, namespace, name)
    if resource is None:
        raise not_found(_described(kind, namespace, name))
    return resource


def delete_or_404(ctx: V1Context, kind: ObjectKind, namespace: str, name: str) -> None:
    """Mark the object for deletion (the controller stops its processes) and wake the loop."""
    if ctx.store.mark_deleting(kind, namespace, name) is None:
        raise not_found(_described(kind, namespace, name))
    ctx.wake()


def _described(kind: ObjectKind, namespace: str, name: str) -> str:
    return f'{_V1_NOUN[kind]} "{name}" in namespace "{namespace}"'


_V1_NOUN = {
    ObjectKind.RAY_CLUSTER: "cluster",
    ObjectKind.RAY_SERVICE: "service",
    ObjectKind.COMPUTE_TEMPLATE: "compute template",
}


def warn_ignored(response: Response, stored: StoredResource) -> None:
    """Tell the caller, in a Kubernetes-style ``Warning`` header, which accepted fields mean
    nothing on this machine."""
    warning = admission.ignored_warning(stored)
    if warning is not None:
        add_warning(response, warning)


def checked_name(name: str, what: str) -> str:
    """``name`` when it is a DNS-1035 label, else a 400: names become file and folder names."""
    if not is_dns_1035_label(name):
        raise invalid(
            f"{what} {name!r} is not a DNS-1035 label (lower-case letters, digits and '-',"
            " starting with a letter, at most 63 characters)"
        )
    return name


def running_cluster(ctx: V1Context, namespace: str, name: str) -> ObservedCluster:
    """The cluster ``name`` of ``namespace`` with its head up (Serve and jobs talk to it)."""
    checked_name(namespace, "namespace")
    cluster = ctx.provider.observe(checked_name(name, "cluster name"))
    if cluster is None or cluster.owner.split("/", 1)[0] != namespace:
        raise not_found(f'cluster "{name}" in namespace "{namespace}"')
    if not cluster.head_ready:
        raise ApiFailure(
            HTTPStatus.SERVICE_UNAVAILABLE,
            GrpcCode.UNAVAILABLE,
            f"cluster {name} is not ready yet: its head is starting; try again shortly",
        )
    return cluster
