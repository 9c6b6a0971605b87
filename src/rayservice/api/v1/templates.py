"""Compute templates: named node sizes (cpu, memory in GiB, gpu, extended resources,
tolerations) that the node groups of v1 clusters and RayServices refer to by name.

A template is stored as it was sent; a cluster made from it copies its sizes into its pod
templates, so changing or deleting a template later leaves existing clusters as they are (as
KubeRay's API server does).
"""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Body

from rayservice.api.v1.context import V1Context, checked_name, stored_or_404
from rayservice.api.v1.errors import already_exists
from rayservice.spec.apiserver import (
    ComputeTemplate,
    ListComputeTemplatesResponse,
    parse_body,
    to_wire,
    validate_compute_template,
)
from rayservice.spec.events import ObjectKind
from rayservice.store.base import Store, StoredResource

TEMPLATE = ObjectKind.COMPUTE_TEMPLATE
_SOURCE = "<compute template request>"


def template_of(resource: StoredResource) -> ComputeTemplate:
    return ComputeTemplate.model_validate(resource.manifest["spec"])


def templates_in(store: Store, namespace: str) -> dict[str, ComputeTemplate]:
    """The compute templates of ``namespace`` by name."""
    return {r.name: template_of(r) for r in store.list_resources(TEMPLATE, namespace)}


def _listed(resources: list[StoredResource]) -> dict[str, Any]:
    return to_wire(
        ListComputeTemplatesResponse(compute_templates=[template_of(r) for r in resources])
    )


def router(ctx: V1Context) -> APIRouter:
    api = APIRouter(prefix="/apis/v1", tags=["compute templates"])
    store = ctx.store

    @api.post("/namespaces/{namespace}/compute_templates")
    def create_compute_template(
        namespace: str, body: Annotated[dict[str, Any], Body()]
    ) -> dict[str, Any]:
        template = parse_body(ComputeTemplate, body)
        validate_compute_template(template, checked_name(namespace, "namespace"))
        if store.get(TEMPLATE, namespace, template.name) is not None:
            raise already_exists(f'compute template "{template.name}" in namespace "{namespace}"')
        manifest = {
            "kind": TEMPLATE,
            "metadata": {"name": template.name, "namespace": namespace},
            "spec": to_wire(template),
        }
        return to_wire(template_of(store.apply(TEMPLATE, manifest, _SOURCE, time.time())))

    @api.get("/namespaces/{namespace}/compute_templates/{name}")
    def get_compute_template(namespace: str, name: str) -> dict[str, Any]:
        return to_wire(template_of(stored_or_404(ctx, TEMPLATE, namespace, name)))

    @api.get("/namespaces/{namespace}/compute_templates")
    def list_compute_templates(namespace: str) -> dict[str, Any]:
        return _listed(store.list_resources(TEMPLATE, namespace))

    @api.get("/compute_templates")
    def list_all_compute_templates() -> dict[str, Any]:
        return _listed(store.list_resources(TEMPLATE))

    @api.delete("/namespaces/{namespace}/compute_templates/{name}")
    def delete_compute_template(namespace: str, name: str) -> dict[str, Any]:
        stored_or_404(ctx, TEMPLATE, namespace, name)
        store.remove(TEMPLATE, namespace, name)
        return {}

    return api
