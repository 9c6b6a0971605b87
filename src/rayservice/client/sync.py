"""The blocking client, :class:`RayServiceClient`, over ``httpx.Client``.

Each method builds its request with :mod:`rayservice.client.kuberay` or
:mod:`rayservice.client.manifests` and reads the answer with
:func:`rayservice.client.calls.interpret`; this module only sends. Its twin,
:mod:`rayservice.client.aio`, has the same methods with the same arguments.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
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


class RayServiceClient:
    """Blocking client of a rayservice controller: KubeRay's API server v1 paths and the
    controller's Kubernetes-shaped paths. Errors are the :mod:`rayservice.client` tree.

    ``base_url`` defaults to ``$RAYSERVICE_API_URL``, else ``http://127.0.0.1:8888``;
    ``token`` goes out as ``Authorization: Bearer <token>``; ``transport`` replaces the
    network (``httpx.MockTransport`` in tests); ``clock`` and ``sleep`` pace the wait helpers.
    """

    def __init__(
        self,
        base_url: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        *,
        token: str | None = None,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.base_url = resolve_base_url(base_url)
        self._http = httpx.Client(
            base_url=self.base_url,
            timeout=timeout,
            headers=auth_headers(token),
            transport=transport,
        )
        self._clock = clock
        self._sleep = sleep

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> RayServiceClient:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()

    def send(self, call: Call[T]) -> T:
        """Send one request and read its answer (every method goes through here)."""
        try:
            response = self._http.request(call.method, call.path, **call.request_args())
        except httpx.TransportError as e:
            raise unavailable(self.base_url, e) from e
        return interpret(call, response, self.base_url)

    def _wait(
        self,
        target: Target[T],
        timeout: float,
        interval: float,
        on_progress: Progress | None,
    ) -> T:
        wait = Waiting(target, timeout, interval, self._clock(), on_progress)
        while True:
            try:
                value = self.send(target.call)
            except ApiError as error:
                wait.failed(error)
            else:
                if wait.answered(value):
                    return value
            self._sleep(wait.pause(self._clock()))

    # --- the controller's Kubernetes-shaped API (what the command line uses) ----------------

    def healthy(self) -> bool:
        """Whether a controller answers ``GET /healthz`` within a second."""
        try:
            return self.send(manifests.healthz())
        except ControllerUnavailable:
            return False

    def apply(
        self, manifest: dict[str, Any], source: str, base_dir: str
    ) -> tuple[dict[str, Any], list[str]]:
        """Store a RayService or RayCluster manifest: the stored object and the warnings sent
        with it. ``source`` names the file in problems; relative working_dirs resolve
        against ``base_dir``."""
        return self.send(manifests.apply(manifest, source, base_dir))

    def dry_run(
        self,
        manifest: dict[str, Any],
        source: str,
        base_dir: str,
        alongside: Sequence[dict[str, Any]] = (),
    ) -> dict[str, Any]:
        """What applying would change: kind, summary, fields, generation. Stores nothing.
        The Secrets and ConfigMaps ``alongside`` count as applied first."""
        return self.send(manifests.dry_run(manifest, source, base_dir, alongside))

    def get_service(self, namespace: str, name: str) -> dict[str, Any]:
        """The stored RayService object, with its status."""
        return self.send(manifests.get_service(namespace, name))

    def service_exists(self, namespace: str, name: str) -> bool:
        try:
            self.get_service(namespace, name)
        except NotFound:
            return False
        return True

    def rollout(self, namespace: str, name: str, verb: str) -> dict[str, Any]:
        """Run a rollout verb (pause, resume, promote, undo): its message and the object."""
        return self.send(manifests.rollout(namespace, name, verb))

    def rollout_history(self, namespace: str, name: str) -> list[dict[str, Any]]:
        return self.send(manifests.rollout_history(namespace, name))

    def delete_service(self, namespace: str, name: str) -> None:
        self.send(manifests.delete_service(namespace, name))

    def dashboard(self, namespace: str, name: str) -> dict[str, Any]:
        """``url``, ``cluster`` and ``token`` (what Ray's dashboard login asks for) of a
        RayService's active cluster or of a RayCluster."""
        return self.send(manifests.dashboard(namespace, name))

    def autoscaling_state(
        self, namespace: str, cluster: str, ray_status: bool = False
    ) -> AutoscalingState:
        """A cluster's nodes and the scale its Ray autoscaler last asked for; with
        ``ray_status`` also what ``ray status`` prints."""
        return self.send(manifests.autoscaling_state(namespace, cluster, ray_status))

    def request_scale(self, namespace: str, cluster: str, scale: ScaleRequest) -> None:
        """Ask for workers per group of ``cluster`` and for given workers to go (what Ray's
        autoscaler does through rayservice's node provider)."""
        self.send(manifests.request_scale(namespace, cluster, scale))

    def get_raycluster(self, namespace: str, name: str) -> dict[str, Any]:
        """A RayCluster applied from a manifest (spec and status), or a RayService's cluster
        as observed."""
        return self.send(manifests.get_raycluster(namespace, name))

    def delete_raycluster(self, namespace: str, name: str) -> None:
        """Delete a RayCluster applied from a manifest."""
        self.send(manifests.delete_raycluster(namespace, name))

    def get_object(self, plural: str, namespace: str, name: str) -> dict[str, Any]:
        """One stored object by its plural: ``secrets`` or ``configmaps``."""
        return self.send(manifests.get_object(plural, namespace, name))

    def delete_object(self, plural: str, namespace: str, name: str) -> list[str]:
        """Delete a Secret or ConfigMap: the warnings sent back (what it does to the services
        that take values from it)."""
        return self.send(manifests.delete_object(plural, namespace, name))

    def delete_document(self, manifest: dict[str, Any]) -> None:
        """Delete the object a manifest names, at the path of its kind."""
        self.send(manifests.delete_document(manifest))

    def list_objects(self, plural: str, namespace: str | None) -> list[dict[str, Any]]:
        """``rayservices``, ``rayclusters``, ``pods`` or ``services``; None: every namespace."""
        return self.send(manifests.list_objects(plural, namespace))

    def events(self, namespace: str, name: str) -> list[dict[str, Any]]:
        return self.send(manifests.events(namespace, name))

    def logs(self, namespace: str, name: str, pod: str | None, tail: int) -> str:
        return self.send(manifests.logs(namespace, name, pod, tail))

    # --- KubeRay's API server v1: compute templates ---------------------------------------

    def create_compute_template(self, namespace: str, template: ComputeTemplate) -> ComputeTemplate:
        return self.send(kuberay.create_compute_template(namespace, template))

    def get_compute_template(self, namespace: str, name: str) -> ComputeTemplate:
        return self.send(kuberay.get_compute_template(namespace, name))

    def list_compute_templates(self, namespace: str | None = None) -> list[ComputeTemplate]:
        """The templates of ``namespace``, or of every namespace."""
        return self.send(kuberay.list_compute_templates(namespace))

    def delete_compute_template(self, namespace: str, name: str) -> None:
        self.send(kuberay.delete_compute_template(namespace, name))

    # --- clusters ---------------------------------------------------------------------------

    def create_cluster(self, namespace: str, cluster: Cluster) -> Cluster:
        return self.send(kuberay.create_cluster(namespace, cluster))

    def get_cluster(self, namespace: str, name: str) -> Cluster:
        return self.send(kuberay.get_cluster(namespace, name))

    def list_clusters(self, namespace: str | None = None) -> list[Cluster]:
        return self.send(kuberay.list_clusters(namespace))

    def delete_cluster(self, namespace: str, name: str) -> None:
        self.send(kuberay.delete_cluster(namespace, name))

    def wait_cluster_ready(
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
        return self._wait(waiting.cluster_ready(namespace, name), timeout, interval, on_progress)

    # --- RayServices ------------------------------------------------------------------------

    def create_ray_service(self, namespace: str, service: RayService) -> RayService:
        return self.send(kuberay.create_ray_service(namespace, service))

    def update_ray_service(self, namespace: str, name: str, service: RayService) -> RayService:
        return self.send(kuberay.update_ray_service(namespace, name, service))

    def get_ray_service(self, namespace: str, name: str) -> RayService:
        return self.send(kuberay.get_ray_service(namespace, name))

    def list_ray_services_page(
        self,
        namespace: str | None = None,
        *,
        page_size: int | None = None,
        page_token: str | None = None,
    ) -> ListRayServicesResponse:
        """One page; its ``next_page_token`` asks for the next one."""
        return self.send(kuberay.ray_services_page(namespace, page_size, page_token))

    def list_ray_services(
        self, namespace: str | None = None, *, page_size: int | None = None
    ) -> list[RayService]:
        """Every RayService of ``namespace`` (or of every namespace), page after page."""
        pages = kuberay.Pages(lambda token: kuberay.ray_services_page(namespace, page_size, token))
        call: Call[ListRayServicesResponse] | None = pages.first()
        while call is not None:
            call = pages.after(self.send(call))
        return pages.services

    def delete_ray_service(self, namespace: str, name: str) -> None:
        self.send(kuberay.delete_ray_service(namespace, name))

    # --- Serve applications of a cluster ------------------------------------------------------

    def deploy_serve_applications(self, namespace: str, cluster: str, config_yaml: str) -> None:
        """Deploy a Serve config (YAML text, with ``applications``) on a running cluster."""
        self.send(kuberay.deploy_serve_applications(namespace, cluster, config_yaml))

    def get_serve_applications(self, namespace: str, cluster: str) -> ServeApplicationsReply:
        return self.send(kuberay.get_serve_applications(namespace, cluster))

    def delete_serve_applications(self, namespace: str, cluster: str) -> None:
        self.send(kuberay.delete_serve_applications(namespace, cluster))

    def wait_serve_applications_running(
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
        return self._wait(target, timeout, interval, on_progress)

    # --- job submissions ----------------------------------------------------------------------

    def submit_job(self, namespace: str, cluster: str, job: RayJobSubmission) -> str:
        """Submit a job to a cluster: its submission id."""
        return self.send(kuberay.submit_job(namespace, cluster, job))

    def get_job(self, namespace: str, cluster: str, submission_id: str) -> JobSubmissionInfo:
        return self.send(kuberay.get_job(namespace, cluster, submission_id))

    def list_jobs(self, namespace: str, cluster: str) -> list[JobSubmissionInfo]:
        return self.send(kuberay.list_jobs(namespace, cluster))

    def get_job_log(self, namespace: str, cluster: str, submission_id: str) -> str:
        return self.send(kuberay.get_job_log(namespace, cluster, submission_id))

    def stop_job(self, namespace: str, cluster: str, submission_id: str) -> None:
        self.send(kuberay.stop_job(namespace, cluster, submission_id))

    def delete_job(self, namespace: str, cluster: str, submission_id: str) -> None:
        self.send(kuberay.delete_job(namespace, cluster, submission_id))

    def wait_job(
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
        return self._wait(target, timeout, interval, on_progress)
