"""What the v1 routes work with: the store, the cluster provider, Ray's Serve and job APIs.

Also the lookups every route shares: a name checked before it touches a path, and the running
cluster a Serve or job request is for.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path

from fastapi import Response

from rayservice.api.admission import ignored_warning
from rayservice.api.objects import add_warning
from rayservice.api.v1.errors import ApiFailure, invalid, not_found
from rayservice.providers.base import ClusterProvider
from rayservice.serve_client.base import ServeClient
from rayservice.serve_client.jobs import JobClient
from rayservice.spec.apiserver import GrpcCode
from rayservice.spec.loader import is_dns_1035_label
from rayservice.spec.observed import ObservedCluster
from rayservice.store.base import Store, StoredResource


@dataclass(frozen=True)
class V1Context:
    store: Store
    provider: ClusterProvider
    serve: ServeClient
    jobs: JobClient
    packages: Path  # the content-addressed package cache
    wake: Callable[[], None]  # tells the control loop that something changed


def warn_ignored(response: Response, stored: StoredResource) -> None:
    """Tell the caller, in a Kubernetes-style ``Warning`` header, which accepted fields mean
    nothing on this machine."""
    warning = ignored_warning(stored)
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
