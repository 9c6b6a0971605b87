"""v1 job submissions on a cluster, through Ray's job API on its dashboard: submit, get,
list, logs, stop, delete. A job runs the user's code by design: the API's token rule (see
:mod:`rayservice.api.auth`) is what keeps it from anyone who may not.
"""

from __future__ import annotations

from typing import Annotated, Any

import yaml
from fastapi import APIRouter, Body

from rayservice.api.v1.context import V1Context, running_cluster
from rayservice.api.v1.errors import invalid
from rayservice.spec.apiserver import (
    GetJobLogReply,
    JobSubmissionInfo,
    ListJobSubmissionInfo,
    RayJobSubmission,
    SubmitRayJobReply,
    check,
    job_submission_problems,
    parse_body,
    to_wire,
)


def _ray_request(job: RayJobSubmission) -> dict[str, Any]:
    """The body of Ray's ``POST /api/jobs/`` for a v1 submission."""
    request: dict[str, Any] = {"entrypoint": job.entrypoint}
    if job.submission_id:
        request["submission_id"] = job.submission_id
    if job.runtime_env:
        try:
            runtime_env = yaml.safe_load(job.runtime_env)
        except yaml.YAMLError as e:
            raise invalid(f"runtimeEnv is not YAML: {e}") from e
        if not isinstance(runtime_env, dict):
            raise invalid("runtimeEnv must be a YAML mapping, e.g. 'pip:\\n  - requests'")
        request["runtime_env"] = runtime_env
    if job.metadata:
        request["metadata"] = dict(job.metadata)
    if job.entrypoint_num_cpus:
        request["entrypoint_num_cpus"] = job.entrypoint_num_cpus
    if job.entrypoint_num_gpus:
        request["entrypoint_num_gpus"] = job.entrypoint_num_gpus
    if job.entrypoint_resources:
        try:
            request["entrypoint_resources"] = {
                k: float(v) for k, v in job.entrypoint_resources.items()
            }
        except ValueError as e:
            raise invalid(f"entrypointResources must map names to numbers: {e}") from e
    return request


def _info(job: dict[str, Any]) -> JobSubmissionInfo:
    """Ray's job document as the v1 body (the runtime env as text values, as the proto has it)."""
    runtime_env = {k: str(v) for k, v in (job.get("runtime_env") or {}).items()}
    return JobSubmissionInfo.model_validate({**job, "runtime_env": runtime_env or None})


def router(ctx: V1Context) -> APIRouter:
    api = APIRouter(prefix="/apis/v1/namespaces/{namespace}/jobsubmissions", tags=["jobs"])
    jobs = ctx.jobs

    @api.post("/{cluster}")
    def submit_job(
        namespace: str, cluster: str, body: Annotated[dict[str, Any], Body()]
    ) -> dict[str, Any]:
        job = parse_body(RayJobSubmission, body)
        check(job_submission_problems(job))
        target = running_cluster(ctx, namespace, cluster)
        submission_id = jobs.submit(target.dashboard_url, target.auth_token, _ray_request(job))
        return to_wire(SubmitRayJobReply(submission_id=submission_id))

    @api.get("/{cluster}/log/{submission_id}")
    def get_job_log(namespace: str, cluster: str, submission_id: str) -> dict[str, Any]:
        target = running_cluster(ctx, namespace, cluster)
        text = jobs.logs(target.dashboard_url, target.auth_token, submission_id)
        return to_wire(GetJobLogReply(log=text))

    @api.get("/{cluster}/{submission_id}")
    def get_job(namespace: str, cluster: str, submission_id: str) -> dict[str, Any]:
        target = running_cluster(ctx, namespace, cluster)
        return to_wire(_info(jobs.info(target.dashboard_url, target.auth_token, submission_id)))

    @api.get("/{cluster}")
    def list_jobs(namespace: str, cluster: str) -> dict[str, Any]:
        target = running_cluster(ctx, namespace, cluster)
        listed = jobs.list(target.dashboard_url, target.auth_token)
        return to_wire(ListJobSubmissionInfo(submissions=[_info(job) for job in listed]))

    @api.post("/{cluster}/{submission_id}")
    def stop_job(namespace: str, cluster: str, submission_id: str) -> dict[str, Any]:
        target = running_cluster(ctx, namespace, cluster)
        jobs.stop(target.dashboard_url, target.auth_token, submission_id)
        return {}

    @api.delete("/{cluster}/{submission_id}")
    def delete_job(namespace: str, cluster: str, submission_id: str) -> dict[str, Any]:
        target = running_cluster(ctx, namespace, cluster)
        jobs.delete(target.dashboard_url, target.auth_token, submission_id)
        return {}

    return api
