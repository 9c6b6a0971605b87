"""The asynchronous client, :class:`AsyncRayServiceClient`, over ``httpx.AsyncClient``.

The twin of :mod:`rayservice.client.sync`: the same methods with the same arguments and
results, awaited. Requests are built by :mod:`rayservice.client.kuberay` and
:mod:`rayservice.client.manifests` and answers read by :func:`rayservice.client.calls.interpret`,
so only the sending differs.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from types import TracebackType
from typing import Any, TypeVar

import httpx

from rayservice.client import kuberay, manifests, waiting
from rayservice.client.calls import Call, interpret
from rayservice.client.connection import DEFAULT_TIMEOUT, auth_headers, resolve_base_url
from rayservice.client.errors import ApiError, ControllerUnavailable, NotFound, unavailable
from rayservice.client.waiting import DEFAULT_INTERVAL, Progress, Target, Waiting
from rayservice.spec.apiserver import (
    Cluster,
    ComputeTemplate,
    JobSubmissionInfo,
    ListRayServicesResponse,
    RayJobSubmission,
    RayService,
    ServeApplicationsReply,
)
from rayservice.spec.autoscaling import AutoscalingState, ScaleRequest

T = TypeVar("T")


class AsyncRayServiceClient:
    """Asynchronous client of a rayservice controller: KubeRay's API server v1 paths and the
    controller's Kubernetes-shaped paths. Errors are the :mod:`rayservice.client` tree.

    ``base_url`` defaults to ``$RAYSERVICE_API_URL``, else ``http://127.0.0.1:8888``;
    ``token`` goes out as ``Authorization: Bearer <token>``; ``transport`` replaces the
    network (``httpx.MockTransport`` or ``httpx.ASGITransport`` in tests); ``clock`` and
    ``sleep`` pace the wait helpers.
    """

    def __init__(
        self,
        base_url: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        *,
        token: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.base_url = resolve_base_url(base_url)
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            timeout=timeout,
            headers=auth_headers(token),
            transport=transport,
        )
        self._clock = clock
        self._sleep = sleep

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncRayServiceClient:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def send(self, call: Call[T]) -> T:
        """Send one request and read its answer (every method goes through here)."""
        try:
            response = await self._http.request(call.method, call.path, **call.request_args())
        except httpx.TransportError as e:
            raise unavailable(self.base_url, e) from e
        return interpret(call, response, self.base_url)

    async def _wait(
        self,
        target: Target[T],
        timeout: float,
        interval: float,
        on_progress: Progress | None,
    ) -> T:
        wait = Waiting(target, timeout, interval, self._clock(), on_progress)
        while True:
            try:
                value = await self.send(target.call)
            except ApiError as error:
                wait.failed(error)
            else:
                if wait.answered(value):
                    return value
            await self._sleep(wait.pause(self._clock()))

    # --- the controller's Kubernetes-shaped API (what the command line uses) ----------------

    async def healthy(self) -> bool:
        """Whether a controller answers ``GET /healthz`` within a second."""
        try:
            return await self.send(manifests.healthz())
        except ControllerUnavailable:
            return False

    async def apply(
        self, manifest: dict[str, Any], source: str, base_dir: str
    ) -> tuple[dict[str, Any], list[str]]:
        """Store a RayService or RayCluster manifest: the stored object and the warnings sent
        with it. ``source`` names the file in problems; relative working_dirs resolve
        against ``base_dir``."""
        return await self.send(manifests.apply(manifest, source, base_dir))

    async def dry_run(
        self,
        manifest: dict[str, Any],
        source: str,
        base_dir: str,
        alongside: Sequence[dict[str, Any]] = (),
    ) -> dict[str, Any]:
        """What applying would change: kind, summary, fields, generation. Stores nothing.
        The Secrets and ConfigMaps ``alongside`` count as applied first."""
        return await self.send(manifests.dry_run(manifest, source, base_dir, alongside))

    async def get_service(self, namespace: str, name: str) -> dict[str, Any]:
        """The stored RayService object, with its status."""
        return await self.send(manifests.get_service(namespace, name))

    async def service_exists(self, namespace: str, name: str) -> bool:
        try:
            await self.get_service(namespace, name)
        except NotFound:
            return False
        return True

    async def rollout(self, namespace: str, name: str, verb: str) -> dict[str, Any]:
        """Run a rollout verb (pause, resume, promote, undo): its message and the object."""
        return await self.send(manifests.rollout(namespace, name, verb))

    async def rollout_history(self, namespace: str, name: str) -> list[dict[str, Any]]:
        return await self.send(manifests.rollout_history(namespace, name))

    async def delete_service(self, namespace: str, name: str) -> None:
        await self.send(manifests.delete_service(namespace, name))

    async def dashboard(self, namespace: str, name: str) -> dict[str, Any]:
        """``url``, ``cluster`` and ``token`` (what Ray's dashboard login asks for) of a
        RayService's active cluster or of a RayCluster."""
        return await self.send(manifests.dashboard(namespace, name))

    async def autoscaling_state(
        self, namespace: str, cluster: str, ray_status: bool = False
    ) -> AutoscalingState:
        """A cluster's nodes and the scale its Ray autoscaler last asked for; with
        ``ray_status`` also what ``ray status`` prints."""
        return await self.send(manifests.autoscaling_state(namespace, cluster, ray_status))

    async def request_scale(self, namespace: str, cluster: str, scale: ScaleRequest) -> None:
        """Ask for workers per group of ``cluster`` and for given workers to go (what Ray's
        autoscaler does through rayservice's node provider)."""
        await self.send(manifests.request_scale(namespace, cluster, scale))

    async def get_raycluster(self, namespace: str, name: str) -> dict[str, Any]:
        """A RayCluster applied from a manifest (spec and status), or a RayService's cluster
        as observed."""
        return await self.send(manifests.get_raycluster(namespace, name))

    async def delete_raycluster(self, namespace: str, name: str) -> None:
        """Delete a RayCluster applied from a manifest."""
        await self.send(manifests.delete_raycluster(namespace, name))

    async def get_object(self, plural: str, namespace: str, name: str) -> dict[str, Any]:
        """One stored object by its plural: ``secrets`` or ``configmaps``."""
        return await self.send(manifests.get_object(plural, namespace, name))

    async def delete_object(self, plural: str, namespace: str, name: str) -> list[str]:
        """Delete a Secret or ConfigMap: the warnings sent back (what it does to the services
        that take values from it)."""
        return await self.send(manifests.delete_object(plural, namespace, name))

    async def delete_document(self, manifest: dict[str, Any]) -> None:
        """Delete the object a manifest names, at the path of its kind."""
        await self.send(manifests.delete_document(manifest))

    async def list_objects(self, plural: str, namespace: str | None) -> list[dict[str, Any]]:
        """``rayservices``, ``rayclusters``, ``pods`` or ``services``; None: every namespace."""
        return await self.send(manifests.list_objects(plural, namespace))

    async def events(self, namespace: str, name: str) -> list[dict[str, Any]]:
        return await self.send(manifests.events(namespace, name))

    async def logs(self, namespace: str, name: str, pod: str | None, tail: int) -> str:
        return await self.send(manifests.logs(namespace, name, pod, tail))

    # --- KubeRay's API server v1: compute templates ---------------------------------------

    async def create_compute_template(
        self, namespace: str, template: ComputeTemplate
    ) -> ComputeTemplate:
        return await self.send(kuberay.create_compute_template(namespace, template))

    async def get_compute_template(self, namespace: str, name: str) -> ComputeTemplate:
        return await self.send(kuberay.get_compute_template(namespace, name))

    async def list_compute_templates(self, namespace: str | None = None) -> list[ComputeTemplate]:
        """The templates of ``namespace``, or of every namespace."""
        return await self.send(kuberay.list_compute_templates(namespace))

    async def delete_compute_template(self, namespace: str, name: str) -> None:
        await self.send(kuberay.delete_compute_template(namespace, name))

    # --- clusters ---------------------------------------------------------------------------

    async def create_cluster(self, namespace: str, cluster: Cluster) -> Cluster:
        return await self.send(kuberay.create_cluster(namespace, cluster))

    async def get_cluster(self, namespace: str, name: str) -> Cluster:
        return await self.send(kuberay.get_cluster(namespace, name))

    async def list_clusters(self, namespace: str | None = None) -> list[Cluster]:
        return await self.send(kuberay.list_clusters(namespace))

    async def delete_cluster(self, namespace: str, name: str) -> None:
        await self.send(kuberay.delete_cluster(namespace, name))

    async def wait_cluster_ready(
        self,
        namespace: str,
        name: str,
        timeout: float,
        on_progress: Progress | None = None,
        *,
        interval: float = DEFAULT_INTERVAL,
    ) -> Cluster:
        """Poll until the cluster's ``clusterState`` is ``ready``; raises
        :class:`WaitTimeout` (saying what was last seen) after ``timeout`` seconds."""
        return await self._wait(
            waiting.cluster_ready(namespace, name), timeout, interval, on_progress
        )

    # --- RayServices ------------------------------------------------------------------------

    async def create_ray_service(self, namespace: str, service: RayService) -> RayService:
        return await self.send(kuberay.create_ray_service(namespace, service))

    async def update_ray_service(
        self, namespace: str, name: str, service: RayService
    ) -> RayService:
        return await self.send(kuberay.update_ray_service(namespace, name, service))

    async def get_ray_service(self, namespace: str, name: str) -> RayService:
        return await self.send(kuberay.get_ray_service(namespace, name))

    async def list_ray_services_page(
        self,
        namespace: str | None = None,
        *,
        page_size: int | None = None,
        page_token: str | None = None,
    ) -> ListRayServicesResponse:
        """One page; its ``next_page_token`` asks for the next one."""
        return await self.send(kuberay.ray_services_page(namespace, page_size, page_token))

    async def list_ray_services(
        self, namespace: str | None = None, *, page_size: int | None = None
    ) -> list[RayService]:
        """Every RayService of ``namespace`` (or of every namespace), page after page."""
        pages = kuberay.Pages(lambda token: kuberay.ray_services_page(namespace, page_size, token))
        call: Call[ListRayServicesResponse] | None = pages.first()
        while call is not None:
            call = pages.after(await self.send(call))
        return pages.services

    async def delete_ray_service(self, namespace: str, name: str) -> None:
        await self.send(kuberay.delete_ray_service(namespace, name))

    # --- Serve applications of a cluster ------------------------------------------------------

    async def deploy_serve_applications(
        self, namespace: str, cluster: str, config_yaml: str
    ) -> None:
        """Deploy a Serve config (YAML text, with ``applications``) on a running cluster."""
        await self.send(kuberay.deploy_serve_applications(namespace, cluster, config_yaml))

    async def get_serve_applications(self, namespace: str, cluster: str) -> ServeApplicationsReply:
        return await self.send(kuberay.get_serve_applications(namespace, cluster))

    async def delete_serve_applications(self, namespace: str, cluster: str) -> None:
        await self.send(kuberay.delete_serve_applications(namespace, cluster))

    async def wait_serve_applications_running(
        self,
        namespace: str,
        cluster: str,
        timeout: float,
        on_progress: Progress | None = None,
        *,
        interval: float = DEFAULT_INTERVAL,
    ) -> ServeApplicationsReply:
        """Poll until the cluster has Serve applications and all are RUNNING."""
        target = waiting.serve_applications_running(namespace, cluster)
        return await self._wait(target, timeout, interval, on_progress)

    # --- job submissions ----------------------------------------------------------------------

    async def submit_job(self, namespace: str, cluster: str, job: RayJobSubmission) -> str:
        """Submit a job to a cluster: its submission id."""
        return await self.send(kuberay.submit_job(namespace, cluster, job))

    async def get_job(self, namespace: str, cluster: str, submission_id: str) -> JobSubmissionInfo:
        return await self.send(kuberay.get_job(namespace, cluster, submission_id))

    async def list_jobs(self, namespace: str, cluster: str) -> list[JobSubmissionInfo]:
        return await self.send(kuberay.list_jobs(namespace, cluster))

    async def get_job_log(self, namespace: str, cluster: str, submission_id: str) -> str:
        return await self.send(kuberay.get_job_log(namespace, cluster, submission_id))

    async def stop_job(self, namespace: str, cluster: str, submission_id: str) -> None:
        await self.send(kuberay.stop_job(namespace, cluster, submission_id))

    async def delete_job(self, namespace: str, cluster: str, submission_id: str) -> None:
        await self.send(kuberay.delete_job(namespace, cluster, submission_id))

    async def wait_job(
        self,
        namespace: str,
        cluster: str,
        submission_id: str,
        timeout: float,
        on_progress: Progress | None = None,
        *,
        interval: float = DEFAULT_INTERVAL,
    ) -> JobSubmissionInfo:
        """Poll until the job is SUCCEEDED, FAILED or STOPPED: its last info (a failed job
        is returned, not raised; read ``status``)."""
        target = waiting.job_finished(namespace, cluster, submission_id)
        return await self._wait(target, timeout, interval, on_progress)
