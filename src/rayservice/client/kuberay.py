"""The requests of KubeRay's API server v1 (``/apis/v1/...``), as :class:`Call` values.

Bodies are the models of :mod:`rayservice.spec.apiserver`, written with ``to_wire``
(lowerCamelCase, no nulls) and read back with ``model_validate``. A body whose ``namespace``
is empty gets the namespace of the path, the only one the server accepts. Pure: building a
call sends nothing.
"""

from __future__ import annotations

from collections.abc import Callable

from rayservice.client.calls import Call, model, model_part, nothing, path
from rayservice.client.errors import ApiError
from rayservice.spec.apiserver import (
    Cluster,
    ComputeTemplate,
    GetJobLogReply,
    JobSubmissionInfo,
    ListClustersResponse,
    ListComputeTemplatesResponse,
    ListJobSubmissionInfo,
    ListRayServicesResponse,
    RayJobSubmission,
    RayService,
    ServeApplicationsReply,
    SubmissionYaml,
    SubmitRayJobReply,
    to_wire,
)

V1 = ("apis", "v1")


def _in(namespace: str, *rest: str) -> str:
    return path(*V1, "namespaces", namespace, *rest)


def _everywhere_or_in(namespace: str | None, plural: str) -> str:
    return path(*V1, plural) if namespace is None else _in(namespace, plural)


# compute templates


def create_compute_template(namespace: str, template: ComputeTemplate) -> Call[ComputeTemplate]:
    body = to_wire(template.model_copy(update={"namespace": template.namespace or namespace}))
    return Call("POST", _in(namespace, "compute_templates"), model(ComputeTemplate), body=body)


def get_compute_template(namespace: str, name: str) -> Call[ComputeTemplate]:
    return Call("GET", _in(namespace, "compute_templates", name), model(ComputeTemplate))


def list_compute_templates(namespace: str | None) -> Call[list[ComputeTemplate]]:
    read = model_part(ListComputeTemplatesResponse, lambda reply: reply.compute_templates)
    return Call("GET", _everywhere_or_in(namespace, "compute_templates"), read)


def delete_compute_template(namespace: str, name: str) -> Call[None]:
    return Call("DELETE", _in(namespace, "compute_templates", name), nothing)


# clusters


def create_cluster(namespace: str, cluster: Cluster) -> Call[Cluster]:
    body = to_wire(cluster.model_copy(update={"namespace": cluster.namespace or namespace}))
    return Call("POST", _in(namespace, "clusters"), model(Cluster), body=body)


def get_cluster(namespace: str, name: str) -> Call[Cluster]:
    return Call("GET", _in(namespace, "clusters", name), model(Cluster))


def list_clusters(namespace: str | None) -> Call[list[Cluster]]:
    read = model_part(ListClustersResponse, lambda reply: reply.clusters)
    return Call("GET", _everywhere_or_in(namespace, "clusters"), read)


def delete_cluster(namespace: str, name: str) -> Call[None]:
    return Call("DELETE", _in(namespace, "clusters", name), nothing)


# RayServices


def create_ray_service(namespace: str, service: RayService) -> Call[RayService]:
    body = to_wire(service.model_copy(update={"namespace": service.namespace or namespace}))
    return Call("POST", _in(namespace, "services"), model(RayService), body=body)


def update_ray_service(namespace: str, name: str, service: RayService) -> Call[RayService]:
    body = to_wire(service.model_copy(update={"namespace": service.namespace or namespace}))
    return Call("PUT", _in(namespace, "services", name), model(RayService), body=body)


def get_ray_service(namespace: str, name: str) -> Call[RayService]:
    return Call("GET", _in(namespace, "services", name), model(RayService))


def ray_services_page(
    namespace: str | None, page_size: int | None, page_token: str | None
) -> Call[ListRayServicesResponse]:
    params: dict[str, str | int] = {}
    if page_size is not None:
        params["pageSize"] = page_size
    if page_token:
        params["pageToken"] = page_token
    where = _everywhere_or_in(namespace, "services")
    return Call("GET", where, model(ListRayServicesResponse), params=params)


class Pages:
    """Follows ``nextPageToken`` from one page to the next; refuses a token seen before, so a
    server that repeats itself cannot keep a caller in a loop."""

    def __init__(self, first: Callable[[str | None], Call[ListRayServicesResponse]]) -> None:
        self._page = first
        self._seen: set[str] = set()
        self.services: list[RayService] = []

    def first(self) -> Call[ListRayServicesResponse]:
        return self._page(None)

    def after(self, reply: ListRayServicesResponse) -> Call[ListRayServicesResponse] | None:
        """The call of the next page, or None when ``reply`` was the last one."""
        self.services += reply.services
        token = reply.next_page_token
        if not token:
            return None
        if token in self._seen:
            raise ApiError(f"the server answered the page token {token!r} twice")
        self._seen.add(token)
        return self._page(token)


def delete_ray_service(namespace: str, name: str) -> Call[None]:
    return Call("DELETE", _in(namespace, "services", name), nothing)


# Serve applications of a cluster


def deploy_serve_applications(namespace: str, cluster: str, config_yaml: str) -> Call[None]:
    body = to_wire(SubmissionYaml(configyaml=config_yaml))
    return Call("POST", _in(namespace, "serveapplication", cluster), nothing, body=body)


def get_serve_applications(namespace: str, cluster: str) -> Call[ServeApplicationsReply]:
    return Call("GET", _in(namespace, "serveapplication", cluster), model(ServeApplicationsReply))


def delete_serve_applications(namespace: str, cluster: str) -> Call[None]:
    return Call("DELETE", _in(namespace, "serveapplication", cluster), nothing)


# job submissions


def submit_job(namespace: str, cluster: str, job: RayJobSubmission) -> Call[str]:
    read = model_part(SubmitRayJobReply, lambda reply: reply.submission_id)
    return Call("POST", _in(namespace, "jobsubmissions", cluster), read, body=to_wire(job))


def get_job(namespace: str, cluster: str, submission_id: str) -> Call[JobSubmissionInfo]:
    where = _in(namespace, "jobsubmissions", cluster, submission_id)
    return Call("GET", where, model(JobSubmissionInfo))


def list_jobs(namespace: str, cluster: str) -> Call[list[JobSubmissionInfo]]:
    read = model_part(ListJobSubmissionInfo, lambda reply: reply.submissions)
    return Call("GET", _in(namespace, "jobsubmissions", cluster), read)


def get_job_log(namespace: str, cluster: str, submission_id: str) -> Call[str]:
    read = model_part(GetJobLogReply, lambda reply: reply.log)
    return Call("GET", _in(namespace, "jobsubmissions", cluster, "log", submission_id), read)


def stop_job(namespace: str, cluster: str, submission_id: str) -> Call[None]:
    return Call("POST", _in(namespace, "jobsubmissions", cluster, submission_id), nothing)


def delete_job(namespace: str, cluster: str, submission_id: str) -> Call[None]:
    return Call("DELETE", _in(namespace, "jobsubmissions", cluster, submission_id), nothing)
