"""The controller's REST API (FastAPI), the only way the CLI reaches the control plane.

Paths follow Kubernetes' shape so the objects read like ``kubectl`` output:
``/apis/ray.io/v1/namespaces/{ns}/rayservices[/{name}]`` (PUT applies a manifest; with
``?dryRun=All``, as kubectl sends it, it only answers what applying would change), the
observed ``rayclusters``, ``pods`` and ``services``, plus ``events`` and ``logs`` of a service.
Invalid input answers 422 with the list of problems (file, field, message, valid).
Given a token, every route but ``GET /healthz`` demands it (``api/auth.py``); a caller on
another machine may not name folders on the controller's disk.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import Body, FastAPI, HTTPException, Query, Request
from fastapi.responses import PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from rayservice import __version__
from rayservice.api import admission, rollout
from rayservice.api.auth import TokenAuth, caller_is_local
from rayservice.api.autoscaling import add_autoscaling_routes
from rayservice.api.config_objects import add_config_object_routes, alongside_values
from rayservice.api.objects import (
    add_warning,
    applied_document,
    change_object,
    check_dry_run_value,
    event_object,
    list_object,
    resource_object,
    view_object,
)
from rayservice.api.v1 import V1Context, add_v1_api
from rayservice.kubeapi.mirror import ConfigMirror
from rayservice.providers.base import ClusterProvider
from rayservice.serve_client.base import ServeClient
from rayservice.serve_client.dashboard import DashboardServeClient
from rayservice.serve_client.jobs import DashboardJobClient, JobClient
from rayservice.serve_client.ray_status import DashboardRayStatus, RayStatusReader
from rayservice.spec.addresses import reachable_from_here
from rayservice.spec.errors import RayServiceError
from rayservice.spec.events import ObjectKind
from rayservice.spec.service_exposure import DEFAULT_EXPOSURE, ExposureSettings
from rayservice.spec.status import RayServiceStatus
from rayservice.spec.vocabulary import KIND, LOCALHOST
from rayservice.store.base import Store, View

RAY = "/apis/ray.io/v1"
CORE = "/api/v1"
VIEW_KINDS = {
    "rayclusters": ObjectKind.RAY_CLUSTER,
    "pods": ObjectKind.POD,
    "services": ObjectKind.SERVICE,
}


KUBECTL_PROXY_PORT = 8001  # where `kubectl proxy` listens by default


def _not_found(namespace: str, name: str) -> HTTPException:
    return HTTPException(404, f'rayservice "{name}" not found in namespace "{namespace}"')


def create_app(
    store: Store,
    provider: ClusterProvider,
    packages: Path,
    wake: Callable[[], None],
    *,
    metrics_registry: CollectorRegistry | None = None,
    token: str | None = None,
    serve: ServeClient | None = None,
    jobs: JobClient | None = None,
    exposure: ExposureSettings = DEFAULT_EXPOSURE,
    ray_status: RayStatusReader | None = None,
    mirror: ConfigMirror | None = None,
) -> FastAPI:
    """The API over ``store``; with ``token``, every request but ``GET /healthz`` needs it.
    ``serve`` and ``jobs`` reach Ray on the clusters (Ray's dashboard when not given);
    ``exposure``: the controller's settings for Services reachable from other hosts;
    ``ray_status`` reads what ``ray status`` prints (the dashboard when not given); ``mirror``
    puts Secrets and ConfigMaps in the Kubernetes cluster (the Kubernetes backend)."""
    app = FastAPI(
        title="rayservice",
        version=__version__,
        description="The rayservice control plane, and KubeRay's API server v1 under /apis/v1.",
    )
    if token is not None:
        app.add_middleware(TokenAuth, token=token)
    registry = metrics_registry if metrics_registry is not None else CollectorRegistry()
    in_cluster = mirror.values if mirror is not None else None  # what pods there would read
    context = V1Context(
        store=store,
        provider=provider,
        serve=serve if serve is not None else DashboardServeClient(),
        jobs=jobs if jobs is not None else DashboardJobClient(),
        packages=packages,
        wake=wake,
        exposure=exposure,
        in_cluster=in_cluster,
    )
    add_v1_api(app, context)

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/metrics")
    def metrics() -> Response:
        """The controller's metrics in Prometheus' text format."""
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    @app.put(RAY + "/namespaces/{namespace}/rayservices/{name}")
    @app.put(RAY + "/namespaces/{namespace}/rayclusters/{name}")
    def apply(
        namespace: str,
        name: str,
        body: Annotated[dict[str, Any], Body()],
        request: Request,
        response: Response,
        dry_run: Annotated[str | None, Query(alias="dryRun")] = None,
    ) -> dict[str, Any]:
        document, source, base_dir = applied_document(body, namespace)
        key = f"{namespace}/{name}"
        local = caller_is_local(request)
        if dry_run is not None:
            check_dry_run_value(dry_run)
            preview = admission.dry_run(
                store,
                document,
                source,
                base_dir,
                packages,
                key,
                may_read_local_paths=local,
                alongside=alongside_values(body, namespace),
                exposure=exposure,
            )
            return change_object(preview.change, preview.generation)
        previous = store.get(str(document.get("kind") or KIND), namespace, name)
        stored = admission.admit(
            store,
            document,
            source,
            base_dir,
            packages,
            time.time(),
            key,
            may_read_local_paths=local,
            exposure=exposure,
        )
        wake()
        for warning in admission.apply_warnings(store, previous, stored, exposure, in_cluster):
            add_warning(response, warning)
        return resource_object(stored)

    @app.get(RAY + "/rayservices")
    def list_all() -> dict[str, Any]:
        return list_object(KIND, [resource_object(r) for r in store.list_resources(KIND)])

    @app.get(RAY + "/namespaces/{namespace}/rayservices")
    def list_services(namespace: str) -> dict[str, Any]:
        resources = store.list_resources(KIND, namespace)
        return list_object(KIND, [resource_object(r) for r in resources])

    @app.get(RAY + "/namespaces/{namespace}/rayservices/{name}")
    def get_service(namespace: str, name: str) -> dict[str, Any]:
        resource = store.get(KIND, namespace, name)
        if resource is None:
            raise _not_found(namespace, name)
        return resource_object(resource)

    @app.delete(RAY + "/namespaces/{namespace}/rayservices/{name}")
    def delete_service(namespace: str, name: str) -> dict[str, Any]:
        resource = store.mark_deleting(KIND, namespace, name)
        if resource is None:
            raise _not_found(namespace, name)
        wake()
        return resource_object(resource)

    @app.get(RAY + "/namespaces/{namespace}/rayclusters/{name}")
    def get_cluster(namespace: str, name: str) -> dict[str, Any]:
        """A standalone RayCluster as stored (spec and status), else an observed cluster of
        a RayService."""
        resource = store.get(ObjectKind.RAY_CLUSTER, namespace, name)
        if resource is not None:
            return resource_object(resource)
        view = next(
            (v for v in store.views(ObjectKind.RAY_CLUSTER, namespace) if v.name == name), None
        )
        if view is None:
            raise HTTPException(404, f'raycluster "{name}" not found in namespace "{namespace}"')
        return view_object(view)

    @app.get(RAY + "/namespaces/{namespace}/dashboards/{name}")
    def dashboard(namespace: str, name: str) -> dict[str, str]:
        """Where the dashboard of a RayService's active cluster (or of a RayCluster) is, and
        the token Ray's login asks for. Never logged; the API's own token guards it."""
        cluster, address, port = _dashboard_target(store, namespace, name)
        observed = provider.observe(cluster) if cluster else None
        if not exposure.on_this_machine:
            if observed is None or not observed.dashboard_url:
                raise HTTPException(404, f"{namespace}/{name} has no head Service of KubeRay's yet")
            # through the API server's proxy, which wants the kubeconfig's credentials:
            # `kubectl proxy` lends them to a browser
            path = urlsplit(observed.dashboard_url).path
            return {
                "url": f"http://127.0.0.1:{KUBECTL_PROXY_PORT}{path}/",
                "cluster": cluster,
                "token": observed.auth_token,
                "via": "kubectl proxy",
            }
        if observed is None or not port:
            raise HTTPException(404, f"{namespace}/{name} has no running cluster yet")
        host = reachable_from_here(address)
        return {
            "url": f"http://{f'[{host}]' if ':' in host else host}:{port}",
            "cluster": cluster,
            "token": observed.auth_token,
        }

    @app.delete(RAY + "/namespaces/{namespace}/rayclusters/{name}")
    def delete_cluster(namespace: str, name: str) -> dict[str, Any]:
        resource = store.mark_deleting(ObjectKind.RAY_CLUSTER, namespace, name)
        if resource is None:
            view = _cluster_view(store, namespace, name)
            detail = f'raycluster "{name}" not found in namespace "{namespace}"'
            if view is not None:
                detail = f"raycluster {name} belongs to the RayService {view.owner}: delete it"
            raise HTTPException(404, detail)
        wake()
        return resource_object(resource)

    @app.post(RAY + "/namespaces/{namespace}/rayservices/{name}/rollout/{verb}")
    def rollout_verb(namespace: str, name: str, verb: str) -> dict[str, Any]:
        resource = store.get(KIND, namespace, name)
        if resource is None:
            raise _not_found(namespace, name)
        try:
            updated, message = rollout.run_verb(store, resource, verb)
        except rollout.RolloutRefused as e:
            raise HTTPException(409, str(e)) from e
        wake()
        return {"message": message, "object": resource_object(updated)}

    @app.get(RAY + "/namespaces/{namespace}/rayservices/{name}/rollout/history")
    def rollout_history(namespace: str, name: str) -> dict[str, Any]:
        if store.get(KIND, namespace, name) is None:
            raise _not_found(namespace, name)
        return {"items": rollout.history(store.revisions(KIND, namespace, name))}

    @app.get(RAY + "/namespaces/{namespace}/rayservices/{name}/events")
    def events(namespace: str, name: str) -> dict[str, Any]:
        return list_object("Event", [event_object(e) for e in store.events(namespace, name)])

    @app.get(RAY + "/namespaces/{namespace}/rayservices/{name}/logs")
    def logs(
        namespace: str, name: str, pod: str | None = None, tail: int = 200
    ) -> PlainTextResponse:
        clusters = provider.clusters(owner=f"{namespace}/{name}")
        if not clusters:
            raise _not_found(namespace, name)
        owner_of_pod = next((c for c in clusters if pod is None or pod.startswith(c + "-")), None)
        if owner_of_pod is None:
            raise HTTPException(404, f"no pod {pod!r} in the clusters of {namespace}/{name}")
        try:
            return PlainTextResponse(provider.logs(owner_of_pod, pod, tail))
        except RayServiceError as e:
            raise HTTPException(404, str(e)) from e

    for plural, kind in VIEW_KINDS.items():
        prefix = RAY if plural == "rayclusters" else CORE
        _add_view_routes(app, store, prefix, plural, kind)
    add_config_object_routes(app, store, wake, mirror)
    add_autoscaling_routes(
        app, store, provider, wake, ray_status if ray_status is not None else DashboardRayStatus()
    )
    return app


def _dashboard_target(store: Store, namespace: str, name: str) -> tuple[str, str, int]:
    """The cluster whose dashboard the head Service shows, and that front's address and port."""
    cluster = store.get(ObjectKind.RAY_CLUSTER, namespace, name)
    if cluster is not None:
        record, shown = cluster.record, name
    else:
        service = store.get(KIND, namespace, name)
        if service is None:
            raise _not_found(namespace, name)
        record = service.record
        shown = RayServiceStatus.model_validate(service.status).activeServiceStatus.rayClusterName
    address = str(record.get("dashboard_address") or LOCALHOST)
    return shown, address, int(record.get("dashboard_port") or 0)


def _cluster_view(store: Store, namespace: str, name: str) -> View | None:
    views = store.views(ObjectKind.RAY_CLUSTER, namespace)
    return next((v for v in views if v.name == name), None)


def _add_view_routes(app: FastAPI, store: Store, prefix: str, plural: str, kind: str) -> None:
    def list_in(namespace: str) -> dict[str, Any]:
        return list_object(kind, [view_object(v) for v in store.views(kind, namespace)])

    def list_everywhere() -> dict[str, Any]:
        return list_object(kind, [view_object(v) for v in store.views(kind)])

    app.add_api_route(f"{prefix}/namespaces/{{namespace}}/{plural}", list_in, methods=["GET"])
    app.add_api_route(f"{prefix}/{plural}", list_everywhere, methods=["GET"])
