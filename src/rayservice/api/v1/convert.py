"""Stored objects as v1 bodies: a RayCluster as a ``Cluster``, a RayService as a ``RayService``,
events as ``events``; and the page tokens of v1 lists.

The forward direction (a body to a manifest) is the model's (:mod:`rayservice.spec.apiserver`);
this is the way back, from what the store holds and what the controller observed.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from rayservice.api.v1.errors import invalid
from rayservice.spec.apiserver import (
    COMPUTE_TEMPLATE_ANNOTATION,
    USER_LABEL,
    Cluster,
    ClusterEvent,
    ClusterSpec,
    HeadGroupSpec,
    RayService,
    RayServiceEvent,
    RayServiceStatus,
    ServeApplicationStatus,
    ServeDeploymentStatus,
    WorkerGroupSpec,
)
from rayservice.spec.manifest import RayCluster
from rayservice.spec.manifest import RayService as RayServiceManifest
from rayservice.spec.status import RayClusterStatus
from rayservice.spec.status import RayServiceStatus as ServiceStatusDocument
from rayservice.store.base import Event, StoredResource

T = TypeVar("T")
EventT = TypeVar("EventT", bound=ClusterEvent)


def _time(timestamp: float) -> datetime:
    return datetime.fromtimestamp(timestamp, tz=UTC).replace(microsecond=0)


def events_body(events: Sequence[Event], model: type[EventT]) -> list[EventT]:
    return [
        model(
            id=f"{e.name}.{index}",
            name=f"{e.involved_kind}/{e.involved_name}",
            created_at=_time(e.first_seen),
            first_timestamp=_time(e.first_seen),
            last_timestamp=_time(e.last_seen),
            reason=e.reason,
            message=e.message,
            type=e.type,
            count=e.count,
        )
        for index, e in enumerate(events)
    ]


def _group_fields(group: dict[str, Any]) -> dict[str, Any]:
    template = group.get("template") or {}
    annotations = (template.get("metadata") or {}).get("annotations") or {}
    containers = (template.get("spec") or {}).get("containers") or [{}]
    return {
        "compute_template": annotations.get(COMPUTE_TEMPLATE_ANNOTATION, ""),
        "image": containers[0].get("image"),
        "ray_start_params": dict(group.get("rayStartParams") or {}),
    }


def cluster_spec_body(spec: dict[str, Any]) -> ClusterSpec:
    """A RayCluster spec as the v1 ``clusterSpec`` (the groups, their templates and counts)."""
    head = spec.get("headGroupSpec") or {}
    return ClusterSpec(
        head_group_spec=HeadGroupSpec(**_group_fields(head), service_type=head.get("serviceType")),
        worker_group_spec=[
            WorkerGroupSpec(
                **_group_fields(group),
                group_name=group.get("groupName", ""),
                replicas=group.get("replicas") or 0,
                min_replicas=group.get("minReplicas") or 0,
                max_replicas=group.get("maxReplicas") or 0,
            )
            for group in spec.get("workerGroupSpecs") or []
        ],
        enable_in_tree_autoscaling=spec.get("enableInTreeAutoscaling"),
    )


def cluster_body(resource: StoredResource, events: Sequence[Event]) -> Cluster:
    manifest = RayCluster.model_validate(resource.manifest)
    status = RayClusterStatus.model_validate(resource.status)
    meta = manifest.metadata
    return Cluster(
        name=meta.name,
        namespace=meta.namespace,
        user=meta.labels.get(USER_LABEL, ""),
        version=manifest.spec.rayVersion,
        cluster_spec=cluster_spec_body(resource.manifest["spec"]),
        annotations=dict(meta.annotations) or None,
        created_at=_time(resource.created_at),
        cluster_state=status.state or ("deleting" if resource.deleting else "provisioning"),
        events=events_body(events, ClusterEvent),
        service_endpoint=dict(status.endpoints),
    )


def service_body(resource: StoredResource, events: Sequence[Event]) -> RayService:
    manifest = RayServiceManifest.model_validate(resource.manifest)
    status = ServiceStatusDocument.model_validate(resource.status)
    active = status.activeServiceStatus
    ports = {
        name: str(resource.record[key])
        for name, key in (("serve", "serve_port"), ("dashboard", "dashboard_port"))
        if resource.record.get(key)
    }
    return RayService(
        name=manifest.metadata.name,
        namespace=manifest.metadata.namespace,
        user=manifest.metadata.labels.get(USER_LABEL, ""),
        version=manifest.spec.rayClusterConfig.rayVersion,
        serve_config_v2=manifest.spec.serveConfigV2,
        cluster_spec=cluster_spec_body(resource.manifest["spec"]["rayClusterConfig"]),
        created_at=_time(resource.created_at),
        ray_service_status=RayServiceStatus(
            application_status=status.serviceStatus or None,
            ray_cluster_name=active.rayClusterName or None,
            ray_service_events=events_body(events, RayServiceEvent),
            service_endpoint=ports,
            serve_application_status=[
                ServeApplicationStatus(
                    name=name,
                    status=app.status,
                    message=app.message,
                    serve_deployment_status=[
                        ServeDeploymentStatus(
                            deployment_name=deployment, status=d.status, message=d.message
                        )
                        for deployment, d in app.serveDeploymentStatuses.items()
                    ],
                )
                for name, app in active.applicationStatuses.items()
            ],
        ),
    )


def page(items: Sequence[T], keys: Sequence[str], size: int, token: str) -> tuple[list[T], str]:
    """One page of ``items`` (sorted by ``keys``) after the key ``token`` encodes, and the
    token of the next page ("" on the last). A token names the last key shown, so items
    created or deleted between two calls neither repeat nor hide the others."""
    after = _decode(token) if token else ""
    start = next((i for i, key in enumerate(keys) if key > after), len(keys))
    if size <= 0:
        return list(items[start:]), ""
    end = min(start + size, len(items))
    more = end < len(items)
    return list(items[start:end]), _encode(keys[end - 1]) if more else ""


def _encode(key: str) -> str:
    return base64.urlsafe_b64encode(key.encode()).decode()


def _decode(token: str) -> str:
    try:
        # validate: without it, characters outside the alphabet are dropped, so "!!!!" would
        # read as the empty key and restart the listing instead of being refused
        return base64.b64decode(token.encode(), altchars=b"-_", validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError) as e:
        raise invalid(f"page token {token!r} is not one this server gave out") from e
