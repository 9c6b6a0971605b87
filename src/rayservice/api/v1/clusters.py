"""v1 clusters: a RayCluster of its own, made from a v1 ``Cluster`` body and its compute
templates, then admitted and stored like ``rayservice apply -f`` of a ``kind: RayCluster``.

The controller does the rest (nodes, ``<name>-head-svc``, ``<name>-serve-svc`` when the
annotation ``ray.io/enable-serve-service: "true"`` asks for it); a reply shows the stored
object with its state, events and service endpoints.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Request, Response

from rayservice.api.v1.context import (
    V1Context,
    admit_manifest,
    checked_name,
    delete_or_404,
    stored_or_404,
)
from rayservice.api.v1.convert import cluster_body, page
from rayservice.api.v1.errors import already_exists
from rayservice.api.v1.templates import templates_in
from rayservice.spec.apiserver import (
    Cluster,
    ListClustersResponse,
    cluster_manifest,
    parse_body,
    to_wire,
)
from rayservice.spec.events import ObjectKind
from rayservice.store.base import StoredResource

CLUSTER = ObjectKind.RAY_CLUSTER


def router(ctx: V1Context) -> APIRouter:
    api = APIRouter(prefix="/apis/v1", tags=["clusters"])
    store = ctx.store

    def reply(resource: StoredResource) -> dict[str, Any]:
        return to_wire(cluster_body(resource, store.events(resource.namespace, resource.name)))

    def listed(namespace: str | None, limit: int, token: str) -> dict[str, Any]:
        resources = sorted(store.list_resources(CLUSTER, namespace), key=lambda r: r.key)
        shown, next_token = page(resources, [r.key for r in resources], limit, token)
        clusters = [cluster_body(r, store.events(r.namespace, r.name)) for r in shown]
        return to_wire(ListClustersResponse(clusters=clusters, continue_=next_token or None))

    @api.post("/namespaces/{namespace}/clusters")
    def create_cluster(
        namespace: str,
        request: Request,
        response: Response,
        body: Annotated[dict[str, Any], Body()],
    ) -> dict[str, Any]:
        cluster = parse_body(Cluster, body)
        manifest = cluster_manifest(
            cluster, templates_in(store, checked_name(namespace, "namespace"))
        )
        if store.get(CLUSTER, namespace, cluster.name) is not None:
            raise already_exists(f'cluster "{cluster.name}" in namespace "{namespace}"')
        return reply(admit_manifest(ctx, manifest, request, response))

    @api.get("/namespaces/{namespace}/clusters/{name}")
    def get_cluster(namespace: str, name: str) -> dict[str, Any]:
        return reply(stored_or_404(ctx, CLUSTER, namespace, name))

    @api.get("/namespaces/{namespace}/clusters")
    def list_clusters(
        namespace: str,
        limit: int = 0,
        continue_: Annotated[str, Query(alias="continue")] = "",
    ) -> dict[str, Any]:
        return listed(namespace, limit, continue_)

    @api.get("/clusters")
    def list_all_clusters(
        limit: int = 0, continue_: Annotated[str, Query(alias="continue")] = ""
    ) -> dict[str, Any]:
        return listed(None, limit, continue_)

    @api.delete("/namespaces/{namespace}/clusters/{name}")
    def delete_cluster(namespace: str, name: str) -> dict[str, Any]:
        delete_or_404(ctx, CLUSTER, namespace, name)
        return {}

    return api
