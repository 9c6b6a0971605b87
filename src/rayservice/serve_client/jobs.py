"""The JobClient protocol and its HTTP adapter: Ray's job REST API on a cluster's dashboard.

RayJob-style workloads run an entrypoint command on a cluster. As for Serve, the control
plane drives that through the dashboard of the cluster rather than through Ray's Python SDK,
so it depends on one documented HTTP API and not on a driver tied to a cluster:

    POST   /api/jobs/                 submit; answers {"job_id", "submission_id"}
    GET    /api/jobs/                 every job, submitted or started by a driver script
    GET    /api/jobs/{id}             one job's details
    GET    /api/jobs/{id}/logs        {"logs": the driver's output so far}
    POST   /api/jobs/{id}/stop        {"stopped": whether the job was still running}
    DELETE /api/jobs/{id}             {"deleted": true}; only a job that ended

``{id}`` is a submission id (``raysubmit_...`` when Ray picked it) or a driver job id. The job
dicts are Ray's JSON as it answered it (``JobDetails``: type, job_id, submission_id,
driver_info, status, entrypoint, message, error_type, start_time, end_time, metadata,
runtime_env, driver_agent_http_address, driver_node_id, driver_exit_code).

Errors, on top of the ones every dashboard call shares (``dashboard_http``): a job that does
not exist is ``JobNotFound``; a request Ray refuses (a malformed submission, a submission id
in use, the delete of a job that has not ended) is ``JobRejected`` with Ray's message. Both
are permanent: the same request will get the same answer.

Ray's head answers 400 only to a submission it cannot parse. It passes submit, stop and
delete on to the job agent of a node and answers 500 whenever the agent did not answer 200,
quoting the agent's answer: a submission id in use (the agent's 400) is read from that quote,
and the delete of a job that has not ended (the agent's 500) is caught before it is sent.
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping
from typing import Any, Protocol, TypeVar
from urllib.parse import quote

import httpx

from rayservice.serve_client.dashboard_http import (
    DashboardClient,
    check_success,
    error_text,
    json_answer,
    unexpected_answer,
)
from rayservice.spec.errors import PermanentError

JOBS_PATH = "/api/jobs/"
TERMINAL_STATUSES = frozenset({"STOPPED", "SUCCEEDED", "FAILED"})

_AGENT_REFUSED = "Request failed with status code 400:"
_TRACEBACK = "Traceback (most recent call last):"

_T = TypeVar("_T")


class JobNotFound(PermanentError):
    """No job has this submission id (or driver job id) on the cluster."""


class JobRejected(PermanentError):
    """Ray refused the request (HTTP 400 and the like); the message is Ray's own."""


class JobClient(Protocol):
    def submit(self, dashboard_url: str, token: str, request: Mapping[str, Any]) -> str:
        """Submit a job (Ray's ``JobSubmitRequest`` fields); return its submission id."""
        ...

    def info(self, dashboard_url: str, token: str, submission_id: str) -> dict[str, Any]:
        """One job's details, as Ray's JSON."""
        ...

    def list(self, dashboard_url: str, token: str) -> builtins.list[dict[str, Any]]:
        """Every job the cluster knows, as Ray's JSON."""
        ...

    def logs(self, dashboard_url: str, token: str, submission_id: str) -> str:
        """The job's output so far."""
        ...

    def stop(self, dashboard_url: str, token: str, submission_id: str) -> bool:
        """Ask the job to stop; whether it was still running."""
        ...

    def delete(self, dashboard_url: str, token: str, submission_id: str) -> bool:
        """Forget a job that has ended (with its logs); whether Ray deleted it."""
        ...


class DashboardJobClient(DashboardClient):
    """Talks to the job API of any number of dashboards through one connection pool."""

    def submit(self, dashboard_url: str, token: str, request: Mapping[str, Any]) -> str:
        response = self._send("POST", dashboard_url, token, JOBS_PATH, json=dict(request))
        return _field(response, "submission_id", str)

    def info(self, dashboard_url: str, token: str, submission_id: str) -> dict[str, Any]:
        response = self._send("GET", dashboard_url, token, _job_path(submission_id))
        return _answer(response, "a job's details", dict)

    def list(self, dashboard_url: str, token: str) -> builtins.list[dict[str, Any]]:
        response = self._send("GET", dashboard_url, token, JOBS_PATH)
        jobs = _answer(response, "a list of jobs", builtins.list)
        if not all(isinstance(job, dict) for job in jobs):
            raise unexpected_answer(response, "a list of jobs", "an item that is not an object")
        return jobs

    def logs(self, dashboard_url: str, token: str, submission_id: str) -> str:
        response = self._send("GET", dashboard_url, token, _job_path(submission_id, "/logs"))
        return _field(response, "logs", str)

    def stop(self, dashboard_url: str, token: str, submission_id: str) -> bool:
        response = self._send("POST", dashboard_url, token, _job_path(submission_id, "/stop"))
        return _field(response, "stopped", bool)

    def delete(self, dashboard_url: str, token: str, submission_id: str) -> bool:
        # Ray answers the delete of a job that has not ended with a 500 that looks like
        # any other failure, so ask first. A job that ended stays ended: the answer cannot
        # go stale the wrong way.
        status = self.info(dashboard_url, token, submission_id).get("status")
        if status not in TERMINAL_STATUSES:
            raise JobRejected(
                f"job {submission_id} is {status}: Ray deletes only a job that has ended "
                f"({', '.join(sorted(TERMINAL_STATUSES))}); stop it first"
            )
        response = self._send("DELETE", dashboard_url, token, _job_path(submission_id))
        return _field(response, "deleted", bool)

    def _send(
        self, method: str, dashboard_url: str, token: str, path: str, **kwargs: Any
    ) -> httpx.Response:
        response = self._call_dashboard(method, dashboard_url, token, path, **kwargs)
        if response.status_code == httpx.codes.NOT_FOUND and path != JOBS_PATH:
            raise JobNotFound(error_text(response))
        if response.status_code == httpx.codes.BAD_REQUEST or _relays_a_refusal(response):
            raise JobRejected(_ray_message(response))
        check_success(response, dashboard_url)
        return response


def _job_path(submission_id: str, tail: str = "") -> str:
    if not submission_id:
        raise JobNotFound("a job has no empty submission id")
    return JOBS_PATH + quote(submission_id, safe="") + tail


def _relays_a_refusal(response: httpx.Response) -> bool:
    """Whether a 500 carries the job agent's 400.

    The head hands submit, stop and delete to the job agent of a node; when the agent
    refuses (a submission id in use, say), the head answers 500 with a traceback that quotes
    the agent's status. Retrying such a request is as useless as retrying a 400.
    """
    return response.status_code == httpx.codes.INTERNAL_SERVER_ERROR and (
        _AGENT_REFUSED in response.text
    )


def _ray_message(response: httpx.Response) -> str:
    """Ray's own words from an error body: the exception line that ends a traceback."""
    text = response.text.strip()
    if not text.startswith(_TRACEBACK):
        return error_text(response)
    # The head closes a quoted agent answer with a lone ".".
    lines = [line.strip() for line in text.splitlines() if line.strip() not in ("", ".")]
    return lines[-1]


def _answer(response: httpx.Response, expected: str, kind: type[_T]) -> _T:
    body = json_answer(response, expected)
    if not isinstance(body, kind):
        raise unexpected_answer(response, expected, type(body).__name__)
    return body


def _field(response: httpx.Response, name: str, kind: type[_T]) -> _T:
    expected = f"an object with {name!r}"
    value = _answer(response, expected, dict).get(name)
    if not isinstance(value, kind):
        raise unexpected_answer(response, expected, value)
    return value
