"""An in-memory JobClient for tests: jobs live in a dict, nothing is ever run.

Code that submits, watches, stops and deletes jobs is tested against the same behaviour the
dashboard has, without a cluster: submissions are checked the way Ray checks them, a job
starts PENDING and changes status only when the test says so (``set_status``, with the
output it printed through ``set_logs``), and the errors are the adapter's (``JobNotFound``,
``JobRejected``). The job dicts carry the keys of Ray's JSON. Each dashboard URL is its own
cluster; ``fail`` scripts any other error, as on the Serve fake (``ScriptedFailures``).
"""

from __future__ import annotations

import builtins
import copy
import itertools
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from rayservice.serve_client.fake import ScriptedFailures
from rayservice.serve_client.jobs import TERMINAL_STATUSES, JobNotFound, JobRejected

JobOperation = Literal["submit", "info", "list", "logs", "stop", "delete"]
JOB_STATUSES = frozenset({"PENDING", "RUNNING", "STOPPED", "SUCCEEDED", "FAILED"})

# What ``POST /api/jobs/`` takes (``JobSubmitRequest``); Ray refuses any other key.
_SUBMIT_FIELDS = frozenset(
    {
        "entrypoint",
        "submission_id",
        "job_id",
        "runtime_env",
        "metadata",
        "entrypoint_num_cpus",
        "entrypoint_num_gpus",
        "entrypoint_memory",
        "entrypoint_resources",
        "entrypoint_label_selector",
    }
)
# Ray's wording of each status, as it fills ``message``.
_MESSAGES = {
    "PENDING": "Job has not started yet.",
    "RUNNING": "Job is currently running.",
    "STOPPED": "Job was intentionally stopped.",
    "SUCCEEDED": "Job finished successfully.",
    "FAILED": "Job failed.",
}
_NODE_ID = "0" * 56
_AGENT_ADDRESS = "http://127.0.0.2:52365"  # the node's dashboard agent, where logs are read


@dataclass(frozen=True)
class JobCall:
    """One call the fake received, successful or not."""

    operation: JobOperation
    dashboard_url: str
    token: str


class FakeJobClient(ScriptedFailures[JobOperation]):
    """Keeps the jobs of each dashboard in memory; a test moves them between statuses."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        super().__init__()
        self.calls: list[JobCall] = []
        self._clock = clock
        self._jobs: dict[str, dict[str, dict[str, Any]]] = {}
        self._logs: dict[tuple[str, str], str] = {}
        self._numbers = itertools.count(1)

    # What a test scripts.

    def set_status(
        self,
        dashboard_url: str,
        submission_id: str,
        status: str,
        message: str | None = None,
        exit_code: int | None = None,
    ) -> None:
        """Move a job to ``status``, as its supervisor would (start and end times,
        Ray's message unless ``message`` is given, the driver's exit code once it ended)."""
        if status not in JOB_STATUSES:
            raise ValueError(f"{status!r} is not one of Ray's job statuses {sorted(JOB_STATUSES)}")
        job = self._job(dashboard_url, submission_id)
        now = self._now_ms()
        job["status"] = status
        job["message"] = _MESSAGES[status] if message is None else message
        if status != "PENDING" and job["start_time"] is None:
            job["start_time"] = now
            job["driver_agent_http_address"] = _AGENT_ADDRESS
            job["driver_node_id"] = _NODE_ID
        if status in TERMINAL_STATUSES:
            job["end_time"] = now
            job["driver_exit_code"] = exit_code
        if status == "FAILED":
            job["error_type"] = "JOB_ENTRYPOINT_COMMAND_ERROR"

    def set_logs(self, dashboard_url: str, submission_id: str, logs: str) -> None:
        self._job(dashboard_url, submission_id)
        self._logs[(dashboard_url, submission_id)] = logs

    # The JobClient protocol.

    def submit(self, dashboard_url: str, token: str, request: Mapping[str, Any]) -> str:
        self._enter("submit", dashboard_url, token)
        # A JSON round trip copies the request and, like the real client, refuses anything
        # that cannot travel in a request body.
        body: dict[str, Any] = {
            key: value
            for key, value in json.loads(json.dumps(dict(request))).items()
            if value is not None  # Ray drops them, so that older servers take newer requests
        }
        _check_submission(body)
        jobs = self._jobs.setdefault(dashboard_url, {})
        submission_id = body.get("submission_id") or body.get("job_id") or self._new_id()
        if submission_id in jobs:
            raise JobRejected(
                f"ValueError: Job with submission_id {submission_id} already exists. "
                "Please use a different submission_id."
            )
        jobs[submission_id] = {
            "type": "SUBMISSION",
            "job_id": None,
            "submission_id": submission_id,
            "driver_info": None,
            "status": "PENDING",
            "entrypoint": body["entrypoint"],
            "message": _MESSAGES["PENDING"],
            "error_type": None,
            "start_time": None,
            "end_time": None,
            "metadata": body.get("metadata"),
            "runtime_env": body.get("runtime_env"),
            "driver_agent_http_address": None,
            "driver_node_id": None,
            "driver_exit_code": None,
        }
        return str(submission_id)

    def info(self, dashboard_url: str, token: str, submission_id: str) -> dict[str, Any]:
        self._enter("info", dashboard_url, token)
        return copy.deepcopy(self._job(dashboard_url, submission_id))

    def list(self, dashboard_url: str, token: str) -> builtins.list[dict[str, Any]]:
        self._enter("list", dashboard_url, token)
        return [copy.deepcopy(job) for job in self._jobs.get(dashboard_url, {}).values()]

    def logs(self, dashboard_url: str, token: str, submission_id: str) -> str:
        self._enter("logs", dashboard_url, token)
        self._job(dashboard_url, submission_id)
        return self._logs.get((dashboard_url, submission_id), "")

    def stop(self, dashboard_url: str, token: str, submission_id: str) -> bool:
        """Stops a job that has not ended at once (Ray takes a moment)."""
        self._enter("stop", dashboard_url, token)
        if self._job(dashboard_url, submission_id)["status"] in TERMINAL_STATUSES:
            return False
        self.set_status(dashboard_url, submission_id, "STOPPED")
        return True

    def delete(self, dashboard_url: str, token: str, submission_id: str) -> bool:
        self._enter("delete", dashboard_url, token)
        status = self._job(dashboard_url, submission_id)["status"]
        if status not in TERMINAL_STATUSES:
            raise JobRejected(f"job {submission_id} is {status}: it has not ended; stop it first")
        del self._jobs[dashboard_url][submission_id]
        self._logs.pop((dashboard_url, submission_id), None)
        return True

    def _enter(self, operation: JobOperation, dashboard_url: str, token: str) -> None:
        self.calls.append(JobCall(operation, dashboard_url, token))
        self._raise_if_scripted(operation, dashboard_url)

    def _job(self, dashboard_url: str, submission_id: str) -> dict[str, Any]:
        job = self._jobs.get(dashboard_url, {}).get(submission_id)
        if job is None:
            raise JobNotFound(f"Job {submission_id} does not exist")
        return job

    def _new_id(self) -> str:
        return f"raysubmit_{next(self._numbers):016d}"

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)


def _check_submission(body: Mapping[str, Any]) -> None:
    """Refuse what Ray refuses before it starts anything: unknown fields, no entrypoint,
    ids, metadata and runtime_env of the wrong type."""
    unknown = sorted(set(body) - _SUBMIT_FIELDS)
    if unknown:
        raise JobRejected(f"TypeError: unexpected fields in the job submission: {unknown}")
    if not isinstance(body.get("entrypoint"), str):
        raise JobRejected("TypeError: entrypoint must be a string")
    for field in ("submission_id", "job_id"):
        if field in body and not isinstance(body[field], str):
            raise JobRejected(f"TypeError: {field} must be a string if provided")
    metadata = body.get("metadata")
    if metadata is not None and not (
        isinstance(metadata, dict) and all(isinstance(v, str) for v in metadata.values())
    ):
        raise JobRejected("TypeError: metadata must be a dict of strings")
    runtime_env = body.get("runtime_env")
    if runtime_env is not None and not isinstance(runtime_env, dict):
        raise JobRejected("TypeError: runtime_env must be a dict")
