"""The job clients: the dashboard client against a scripted HTTP transport, and the fake.

The answers are the ones a Ray 2.60 head with token authentication gave: job dicts as below,
plain-text 404s ("Job <id> does not exist"), a 400 with a traceback for a malformed
submission, and a 500 for a submission id in use (the head quotes its job agent's 400) and
for the delete of a job that has not ended (it quotes the agent's 500).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from rayservice.serve_client.fake_jobs import JOB_STATUSES, FakeJobClient, JobCall
from rayservice.serve_client.jobs import DashboardJobClient, JobClient, JobNotFound, JobRejected
from rayservice.spec.errors import PermanentError, TemporaryError
from tests.unit.test_serve_client import (
    DASHBOARD,
    NO_ANSWER,
    TOKEN,
    TOKEN_REFUSALS,
    ScriptedDashboard,
)

JOB_ID = "raysubmit_kZA6Cfvqgd4BzHAT"
REQUEST: dict[str, Any] = {
    "entrypoint": "python -c \"print('hello')\"",
    "submission_id": JOB_ID,
    "metadata": {"owner": "check"},
    "entrypoint_num_cpus": 0.5,
}
FINISHED_JOB: dict[str, Any] = {
    "type": "SUBMISSION",
    "job_id": "03000000",
    "submission_id": JOB_ID,
    "driver_info": {"id": "03000000", "node_ip_address": "127.0.0.2", "pid": "15987"},
    "status": "SUCCEEDED",
    "entrypoint": "python -c \"print('hello')\"",
    "message": "Job finished successfully.",
    "error_type": None,
    "start_time": 1796058713590,
    "end_time": 1796058715770,
    "metadata": {"owner": "check"},
    "runtime_env": None,
    "driver_agent_http_address": "http://127.0.0.2:19102",
    "driver_node_id": "9c1c708aa19acf190a4aa79240140260f3a6cf9c2d9ab53600316782",
    "driver_exit_code": 0,
}
RUNNING_JOB = FINISHED_JOB | {
    "status": "RUNNING",
    "message": "Job is currently running.",
    "end_time": None,
    "driver_exit_code": None,
}
NOT_FOUND = f"Job {JOB_ID} does not exist"
HEAD = "/site-packages/ray/dashboard/modules/job"
BAD_REQUEST = f"""Traceback (most recent call last):
  File "{HEAD}/utils.py", line 128, in parse_and_validate_request
    return validate_request_type(json_data, request_type)
TypeError: JobSubmitRequest.__init__() got an unexpected keyword argument 'bogus'
"""
SUBMISSION_ID_IN_USE = f"""Traceback (most recent call last):
  File "{HEAD}/job_head.py", line 134, in _raise_error
    raise RuntimeError(f"Request failed with status code {{status}}: {{error_text}}.")
RuntimeError: Request failed with status code 400: Traceback (most recent call last):
  File "{HEAD}/job_manager.py", line 553, in submit_job
    raise ValueError(
ValueError: Job with submission_id {JOB_ID} already exists. Please use a different submission_id.
.
"""
AGENT_FAILED = f"""Traceback (most recent call last):
  File "{HEAD}/job_head.py", line 134, in _raise_error
    raise RuntimeError(f"Request failed with status code {{status}}: {{error_text}}.")
RuntimeError: Request failed with status code 500: Traceback (most recent call last):
  File "{HEAD}/job_manager.py", line 655, in delete_job
RuntimeError: Attempted to delete job '{JOB_ID}', but it is in a non-terminal state RUNNING.
.
"""


class ScriptedJobs(ScriptedDashboard):
    """The Serve tests' scripted dashboard, behind a job client."""

    def job_client(self) -> DashboardJobClient:
        return DashboardJobClient(timeout=1.0, transport=self.transport())


def always(status: int, **content: Any) -> ScriptedJobs:
    return ScriptedJobs(lambda _: httpx.Response(status, **content))


def by_method(**answers: httpx.Response) -> ScriptedJobs:
    """A different answer per HTTP method (``GET=...``, ``DELETE=...``)."""
    return ScriptedJobs(lambda request: answers[request.method])


def each_operation(
    client: JobClient, submission_id: str
) -> Iterator[tuple[str, Callable[[], object]]]:
    yield "submit", lambda: client.submit(DASHBOARD, TOKEN, REQUEST)
    yield "info", lambda: client.info(DASHBOARD, TOKEN, submission_id)
    yield "list", lambda: client.list(DASHBOARD, TOKEN)
    yield "logs", lambda: client.logs(DASHBOARD, TOKEN, submission_id)
    yield "stop", lambda: client.stop(DASHBOARD, TOKEN, submission_id)
    yield "delete", lambda: client.delete(DASHBOARD, TOKEN, submission_id)


OPERATIONS = ["submit", "info", "list", "logs", "stop", "delete"]
ON_ONE_JOB = ["info", "logs", "stop", "delete"]


def run(client: JobClient, operation: str, submission_id: str = JOB_ID) -> object:
    return dict(each_operation(client, submission_id))[operation]()


def only_request(dashboard: ScriptedJobs) -> httpx.Request:
    (request,) = dashboard.requests
    assert request.headers["x-ray-authorization"] == f"Bearer {TOKEN}"
    return request


# What the dashboard client sends and reads.


def test_submit_posts_the_request_as_json_and_returns_the_submission_id() -> None:
    dashboard = always(200, json={"job_id": JOB_ID, "submission_id": JOB_ID})

    assert dashboard.job_client().submit(DASHBOARD, TOKEN, REQUEST) == JOB_ID

    request = only_request(dashboard)
    assert (request.method, str(request.url)) == ("POST", f"{DASHBOARD}/api/jobs/")
    assert request.headers["content-type"] == "application/json"
    assert json.loads(request.content) == REQUEST


def test_info_returns_rays_json_as_it_is() -> None:
    dashboard = always(200, json=FINISHED_JOB)

    assert dashboard.job_client().info(f"{DASHBOARD}/", TOKEN, JOB_ID) == FINISHED_JOB

    request = only_request(dashboard)
    assert (request.method, str(request.url)) == ("GET", f"{DASHBOARD}/api/jobs/{JOB_ID}")


def test_list_returns_every_job() -> None:
    dashboard = always(200, json=[FINISHED_JOB, RUNNING_JOB])

    assert dashboard.job_client().list(DASHBOARD, TOKEN) == [FINISHED_JOB, RUNNING_JOB]

    request = only_request(dashboard)
    assert (request.method, request.url.path) == ("GET", "/api/jobs/")


def test_logs_returns_the_output_text() -> None:
    output = "Running entrypoint for job ...\nhello\n"
    dashboard = always(200, json={"logs": output})

    assert dashboard.job_client().logs(DASHBOARD, TOKEN, JOB_ID) == output

    request = only_request(dashboard)
    assert (request.method, request.url.path) == ("GET", f"/api/jobs/{JOB_ID}/logs")


@pytest.mark.parametrize("stopped", [True, False])
def test_stop_posts_and_says_whether_the_job_was_running(stopped: bool) -> None:
    dashboard = always(200, json={"stopped": stopped})

    assert dashboard.job_client().stop(DASHBOARD, TOKEN, JOB_ID) is stopped

    request = only_request(dashboard)
    assert (request.method, request.url.path) == ("POST", f"/api/jobs/{JOB_ID}/stop")


def test_delete_reads_the_status_then_deletes_a_job_that_ended() -> None:
    dashboard = by_method(
        GET=httpx.Response(200, json=FINISHED_JOB),
        DELETE=httpx.Response(200, json={"deleted": True}),
    )

    assert dashboard.job_client().delete(DASHBOARD, TOKEN, JOB_ID) is True

    assert [(r.method, r.url.path) for r in dashboard.requests] == [
        ("GET", f"/api/jobs/{JOB_ID}"),
        ("DELETE", f"/api/jobs/{JOB_ID}"),
    ]
    assert all(r.headers["x-ray-authorization"] == f"Bearer {TOKEN}" for r in dashboard.requests)


@pytest.mark.parametrize("status", ["PENDING", "RUNNING"])
def test_delete_of_a_job_that_has_not_ended_is_rejected_without_asking_ray(status: str) -> None:
    # Ray would answer 500, indistinguishable from a passing failure.
    dashboard = always(200, json=RUNNING_JOB | {"status": status})

    with pytest.raises(JobRejected, match=f"{JOB_ID} is {status}.*stop it first"):
        dashboard.job_client().delete(DASHBOARD, TOKEN, JOB_ID)

    assert [r.method for r in dashboard.requests] == ["GET"]


def test_a_submission_id_travels_quoted_in_the_path() -> None:
    dashboard = always(200, json={"logs": ""})

    dashboard.job_client().logs(DASHBOARD, TOKEN, "nightly run/2")

    assert only_request(dashboard).url.raw_path == b"/api/jobs/nightly%20run%2F2/logs"


@pytest.mark.parametrize("operation", ON_ONE_JOB)
def test_an_empty_submission_id_names_no_job(operation: str) -> None:
    dashboard = always(200, json=[])

    with pytest.raises(JobNotFound):
        run(dashboard.job_client(), operation, submission_id="")

    assert dashboard.requests == []


# How the dashboard client reads failures.


@pytest.mark.parametrize("operation", ON_ONE_JOB)
def test_a_missing_job_is_job_not_found_with_rays_message(operation: str) -> None:
    with pytest.raises(JobNotFound) as missing:
        run(always(404, text=NOT_FOUND).job_client(), operation)

    assert str(missing.value) == NOT_FOUND
    assert isinstance(missing.value, PermanentError)


def test_a_404_on_the_job_list_is_temporary() -> None:
    # No job is named: the dashboard has not loaded its job module yet.
    with pytest.raises(TemporaryError, match="HTTP 404"):
        always(404, text="404: Not Found").job_client().list(DASHBOARD, TOKEN)


def test_a_bad_request_is_rejected_with_the_exception_line_of_rays_traceback() -> None:
    with pytest.raises(JobRejected) as rejected:
        always(400, text=BAD_REQUEST).job_client().submit(DASHBOARD, TOKEN, REQUEST)

    assert str(rejected.value) == (
        "TypeError: JobSubmitRequest.__init__() got an unexpected keyword argument 'bogus'"
    )


def test_a_plain_text_refusal_is_carried_whole() -> None:
    with pytest.raises(JobRejected, match=r"^Can only stop submission type jobs$"):
        always(400, text="Can only stop submission type jobs").job_client().stop(
            DASHBOARD, TOKEN, "02000000"
        )


def test_a_submission_id_in_use_is_rejected_though_ray_answers_500() -> None:
    with pytest.raises(JobRejected) as rejected:
        always(500, text=SUBMISSION_ID_IN_USE).job_client().submit(DASHBOARD, TOKEN, REQUEST)

    assert str(rejected.value) == (
        f"ValueError: Job with submission_id {JOB_ID} already exists. "
        "Please use a different submission_id."
    )


@pytest.mark.parametrize(
    "body",
    [AGENT_FAILED, "No available agent to submit job, please try again later."],
)
@pytest.mark.parametrize("status", [500, 503])
@pytest.mark.parametrize("operation", OPERATIONS)
def test_other_server_errors_are_temporary(body: str, status: int, operation: str) -> None:
    client = by_method(
        GET=httpx.Response(status, text=body)
        if operation != "delete"
        else httpx.Response(200, json=FINISHED_JOB),
        POST=httpx.Response(status, text=body),
        DELETE=httpx.Response(status, text=body),
    ).job_client()

    with pytest.raises(TemporaryError, match=f"HTTP {status}"):
        run(client, operation)


@pytest.mark.parametrize(("status", "body"), TOKEN_REFUSALS)
@pytest.mark.parametrize("operation", OPERATIONS)
def test_a_refused_token_is_permanent(status: int, body: str, operation: str) -> None:
    with pytest.raises(PermanentError, match="refused the cluster's token") as refused:
        run(always(status, text=body).job_client(), operation)

    assert not isinstance(refused.value, JobRejected | JobNotFound)
    assert body in str(refused.value)


@pytest.mark.parametrize("error", NO_ANSWER)
@pytest.mark.parametrize("operation", OPERATIONS)
def test_no_answer_is_temporary_and_keeps_the_cause(error: httpx.HTTPError, operation: str) -> None:
    def fail(_: httpx.Request) -> httpx.Response:
        raise error

    with pytest.raises(TemporaryError, match="got no answer") as temporary:
        run(ScriptedJobs(fail).job_client(), operation)

    assert temporary.value.__cause__ is error


@pytest.mark.parametrize(
    ("operation", "answer"),
    [
        ("submit", {"job_id": JOB_ID}),
        ("info", [FINISHED_JOB]),
        ("list", FINISHED_JOB),
        ("list", ["not a job"]),
        ("logs", {"logs": None}),
        ("stop", {"stopped": "yes"}),
    ],
)
def test_an_answer_of_another_shape_is_temporary(operation: str, answer: object) -> None:
    with pytest.raises(TemporaryError, match="answered something that is not"):
        run(always(200, json=answer).job_client(), operation)


def test_an_answer_that_is_not_json_is_temporary() -> None:
    client = always(200, text="<html>proxy error page</html>").job_client()

    with pytest.raises(TemporaryError, match="answered something that is not"):
        client.info(DASHBOARD, TOKEN, JOB_ID)


# The fake, and what it shares with the dashboard.


def test_a_submitted_job_has_the_keys_of_rays_json_and_waits_pending() -> None:
    fake = FakeJobClient(clock=lambda: 1796058713.59)

    submission_id = fake.submit(DASHBOARD, TOKEN, REQUEST)
    job = fake.info(DASHBOARD, TOKEN, submission_id)

    assert submission_id == JOB_ID
    assert job.keys() == FINISHED_JOB.keys()
    assert job["status"] == "PENDING"
    assert (job["entrypoint"], job["metadata"]) == (REQUEST["entrypoint"], {"owner": "check"})
    assert fake.list(DASHBOARD, TOKEN) == [job]
    assert fake.list("http://127.0.0.1:9265", TOKEN) == []


def test_the_fake_picks_distinct_ray_style_ids() -> None:
    fake = FakeJobClient()

    first = fake.submit(DASHBOARD, TOKEN, {"entrypoint": "true"})
    second = fake.submit(DASHBOARD, TOKEN, {"entrypoint": "true", "submission_id": None})

    assert first != second
    assert first.startswith("raysubmit_") and second.startswith("raysubmit_")


def test_a_test_moves_a_job_through_its_life() -> None:
    now = [1000.0]
    fake = FakeJobClient(clock=lambda: now[0])
    fake.submit(DASHBOARD, TOKEN, REQUEST)

    fake.set_status(DASHBOARD, JOB_ID, "RUNNING")
    fake.set_logs(DASHBOARD, JOB_ID, "hello\n")
    now[0] = 1002.5
    fake.set_status(DASHBOARD, JOB_ID, "SUCCEEDED", exit_code=0)

    job = fake.info(DASHBOARD, TOKEN, JOB_ID)
    assert (job["status"], job["message"]) == ("SUCCEEDED", "Job finished successfully.")
    assert (job["start_time"], job["end_time"], job["driver_exit_code"]) == (1000000, 1002500, 0)
    assert fake.logs(DASHBOARD, TOKEN, JOB_ID) == "hello\n"


def test_the_fake_knows_only_rays_statuses() -> None:
    fake = FakeJobClient()
    fake.submit(DASHBOARD, TOKEN, REQUEST)

    assert {"PENDING", "RUNNING", "STOPPED", "SUCCEEDED", "FAILED"} == JOB_STATUSES
    with pytest.raises(ValueError, match="not one of Ray's job statuses"):
        fake.set_status(DASHBOARD, JOB_ID, "DONE")


def test_the_fake_stops_a_running_job_once() -> None:
    fake = FakeJobClient()
    fake.submit(DASHBOARD, TOKEN, REQUEST)
    fake.set_status(DASHBOARD, JOB_ID, "RUNNING")

    assert fake.stop(DASHBOARD, TOKEN, JOB_ID) is True
    assert fake.info(DASHBOARD, TOKEN, JOB_ID)["status"] == "STOPPED"
    assert fake.stop(DASHBOARD, TOKEN, JOB_ID) is False


def test_the_fake_deletes_a_job_that_ended_with_its_logs() -> None:
    fake = FakeJobClient()
    fake.submit(DASHBOARD, TOKEN, REQUEST)
    fake.set_logs(DASHBOARD, JOB_ID, "hello\n")
    fake.set_status(DASHBOARD, JOB_ID, "FAILED", exit_code=1)

    assert fake.delete(DASHBOARD, TOKEN, JOB_ID) is True
    with pytest.raises(JobNotFound):
        fake.logs(DASHBOARD, TOKEN, JOB_ID)
    assert fake.list(DASHBOARD, TOKEN) == []


@pytest.mark.parametrize(
    ("request_body", "reason"),
    [
        ({"entrypoint": "true", "bogus": 1}, "unexpected fields"),
        ({"submission_id": "x"}, "entrypoint must be a string"),
        ({"entrypoint": "true", "submission_id": 7}, "submission_id must be a string"),
        ({"entrypoint": "true", "metadata": {"n": 1}}, "metadata must be a dict of strings"),
        ({"entrypoint": "true", "runtime_env": "pip"}, "runtime_env must be a dict"),
    ],
)
def test_the_fake_refuses_what_ray_refuses(request_body: dict[str, Any], reason: str) -> None:
    with pytest.raises(JobRejected, match=reason):
        FakeJobClient().submit(DASHBOARD, TOKEN, request_body)


def test_the_fake_raises_scripted_errors_until_cleared() -> None:
    fake = FakeJobClient()
    fake.fail("submit", TemporaryError("connection refused"), dashboard_url=DASHBOARD)

    with pytest.raises(TemporaryError):
        fake.submit(DASHBOARD, TOKEN, REQUEST)
    fake.clear_failures()

    assert fake.submit(DASHBOARD, TOKEN, REQUEST) == JOB_ID
    assert fake.calls == [JobCall("submit", DASHBOARD, TOKEN), JobCall("submit", DASHBOARD, TOKEN)]


def dashboard_with_running_job() -> JobClient:
    """What a head holding JOB_ID, RUNNING, answers (measured)."""

    def answer(request: httpx.Request) -> httpx.Response:
        job_path = f"/api/jobs/{JOB_ID}"
        if request.method == "POST" and request.url.path == "/api/jobs/":
            return httpx.Response(500, text=SUBMISSION_ID_IN_USE)
        if request.url.path.startswith(job_path):
            return httpx.Response(200, json=RUNNING_JOB)
        return httpx.Response(404, text=f"Job {request.url.path.split('/')[3]} does not exist")

    return ScriptedJobs(answer).job_client()


def fake_with_running_job() -> JobClient:
    fake = FakeJobClient()
    fake.submit(DASHBOARD, TOKEN, REQUEST)
    fake.set_status(DASHBOARD, JOB_ID, "RUNNING")
    return fake


BOTH = pytest.mark.parametrize(
    "with_running_job",
    [dashboard_with_running_job, fake_with_running_job],
    ids=["dashboard", "fake"],
)


@BOTH
def test_both_refuse_a_submission_id_in_use(with_running_job: Callable[[], JobClient]) -> None:
    with pytest.raises(JobRejected, match=f"{JOB_ID} already exists"):
        with_running_job().submit(DASHBOARD, TOKEN, REQUEST)


@BOTH
def test_both_refuse_to_delete_a_running_job(with_running_job: Callable[[], JobClient]) -> None:
    with pytest.raises(JobRejected, match=f"{JOB_ID} is RUNNING"):
        with_running_job().delete(DASHBOARD, TOKEN, JOB_ID)


@BOTH
@pytest.mark.parametrize("operation", ON_ONE_JOB)
def test_both_say_a_missing_job_does_not_exist(
    with_running_job: Callable[[], JobClient], operation: str
) -> None:
    with pytest.raises(JobNotFound, match=r"^Job raysubmit_other does not exist$"):
        run(with_running_job(), operation, submission_id="raysubmit_other")
