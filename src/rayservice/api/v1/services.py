"""v1 RayServices: the same objects ``rayservice apply`` makes, from KubeRay's v1
``RayService`` body (a Serve config and a cluster spec whose groups name compute templates)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Request, Response

from rayservice.api.v1.context import (
    V1Context,
    admit_manifest,
    checked_name,
    delete_or_404,
    stored_or_404,
)
from rayservice.api.v1.convert import page, service_body
from rayservice.api.v1.errors import already_exists, not_found
from rayservice.api.v1.templates import templates_in
from rayservice.spec.apiserver import (
    ListRayServicesResponse,
    RayService,
    parse_body,
    service_manifest,
    to_wire,
    validate_service,
)
from rayservice.spec.vocabulary import KIND
from rayservice.store.base import StoredResource


def router(ctx: V1Context) -> APIRouter:
    api = APIRouter(prefix="/apis/v1", tags=["ray services"])
    store = ctx.store

    def reply(resource: StoredResource) -> dict[str, Any]:
        return to_wire(service_body(resource, store.events(resource.namespace, resource.name)))

    def store_body(
        namespace: str,
        body: dict[str, Any],
        request: Request,
        response: Response,
        path_name: str | None,
    ) -> StoredResource:
        service = parse_body(RayService, body)
        validate_service(service, checked_name(namespace, "namespace"), path_name)
        exists = store.get(KIND, namespace, service.name) is not None
        if path_name is None and exists:
            raise already_exists(f'service "{service.name}" in namespace "{namespace}"')
        if path_name is not None and not exists:
            raise not_found(f'service "{service.name}" in namespace "{namespace}"')
        manifest = service_manifest(service, templates_in(store, namespace))
        return admit_manifest(ctx, manifest, request, response)

    def listed(namespace: str | None, size: int, token: str) -> dict[str, Any]:
        resources = sorted(store.list_resources(KIND, namespace), key=lambda r: r.key)
        shown, next_token = page(resources, [r.key for r in resources], size, token)
        services = [service_body(r, store.events(r.namespace, r.name)) for r in shown]
        listing = ListRayServicesResponse(
            services=services, total_size=len(resources), next_page_token=next_token or None
        )
        return to_wire(listing)

    @api.post("/namespaces/{namespace}/services")
    def create_service(
        namespace: str,
        request: Request,
        response: Response,
        body: Annotated[dict[str, Any], Body()],
    ) -> dict[str, Any]:
        return reply(store_body(namespace, body, request, response, None))

    @api.put("/namespaces/{namespace}/services/{name}")
    def update_service(
        namespace: str,
        name: str,
        request: Request,
        response: Response,
        body: Annotated[dict[str, Any], Body()],
    ) -> dict[str, Any]:
        return reply(store_body(namespace, body, request, response, name))

    @api.get("/namespaces/{namespace}/services/{name}")
    def get_service(namespace: str, name: str) -> dict[str, Any]:
        return reply(stored_or_404(ctx, KIND, namespace, name))

    @api.get("/namespaces/{namespace}/services")
    def list_services(namespace: str, pageSize: int = 0, pageToken: str = "") -> dict[str, Any]:
        return listed(namespace, pageSize, pageToken)

    @api.get("/services")
    def list_all_services(pageSize: int = 0, pageToken: str = "") -> dict[str, Any]:
        return listed(None, pageSize, pageToken)

    @api.delete("/namespaces/{namespace}/services/{name}")
    def delete_service(namespace: str, name: str) -> dict[str, Any]:
        delete_or_404(ctx, KIND, namespace, name)
        return {}

    return api
