"""rayservice.client against scripted answers: each method's path, verb, query and camelCase
body, the token header, every error mapping, pagination, the wait helpers on a fake clock, and
that the sync and async clients agree call for call. One test drives the real REST app through
ASGITransport, so the error bodies read are the ones the server writes."""

from __future__ import annotations

import asyncio
import inspect
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from rayservice.api import credentials, settings
from rayservice.api.app import create_app
from rayservice.client import (
    AlreadyExists,
    ApiError,
    AsyncRayServiceClient,
    Conflict,
    ControllerUnavailable,
    InvalidRequest,
    NotFound,
    RayServiceClient,
    Unauthenticated,
    WaitTimeout,
    connection,
    errors,
)
from rayservice.providers.fake import FakeProvider
from rayservice.spec.apiserver import (
    ENABLE_SERVE_SERVICE_ANNOTATION,
    Cluster,
    ClusterSpec,
    ComputeTemplate,
    HeadGroupSpec,
    JobSubmissionInfo,
    RayJobSubmission,
    RayService,
    ServeApplicationsReply,
    WorkerGroupSpec,
)
from rayservice.spec.errors import InvalidSpec
from rayservice.store.sqlite import SqliteStore

BASE = "http://controller.test:8888"
NS = "team-a"
V1 = f"/apis/v1/namespaces/{NS}"
RAY = f"/apis/ray.io/v1/namespaces/{NS}"


@dataclass
class Script:
    """A fake controller: answers by (method, path), in turn, the last answer repeating; keeps
    every request it got."""

    answers: dict[tuple[str, str], list[httpx.Response]] = field(default_factory=dict)
    requests: list[httpx.Request] = field(default_factory=list)

    def on(self, method: str, path: str, *answers: httpx.Response) -> Script:
        self.answers[(method, path)] = list(answers)
        return self

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        queue = self.answers.get((request.method, request.url.raw_path.decode().split("?")[0]))
        if not queue:
            return httpx.Response(404, json={"code": 5, "message": "not scripted"})
        answer = queue.pop(0) if len(queue) > 1 else queue[0]
        # a fresh copy: a response read by one client's stream cannot serve the other's
        return httpx.Response(answer.status_code, headers=answer.headers, content=answer.content)

    @property
    def last(self) -> httpx.Request:
        return self.requests[-1]


def ok(body: Any = None, **kwargs: Any) -> httpx.Response:
    return httpx.Response(200, json={} if body is None else body, **kwargs)


@dataclass
class FakeTime:
    now: float = 1000.0
    slept: list[float] = field(default_factory=list)

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds

    async def async_sleep(self, seconds: float) -> None:
        self.sleep(seconds)


def sync_client(script: Script, time: FakeTime | None = None, **kwargs: Any) -> RayServiceClient:
    time = time or FakeTime()
    return RayServiceClient(
        BASE, transport=httpx.MockTransport(script), clock=time.clock, sleep=time.sleep, **kwargs
    )


def async_client(
    script: Script, time: FakeTime | None = None, **kwargs: Any
) -> AsyncRayServiceClient:
    time = time or FakeTime()
    return AsyncRayServiceClient(
        BASE,
        transport=httpx.MockTransport(script),
        clock=time.clock,
        sleep=time.async_sleep,
        **kwargs,
    )


def both(
    make_script: Callable[[], Script], method: str, *args: Any, **kwargs: Any
) -> Iterator[tuple[str, Script, Any]]:
    """Call ``method`` on a sync and an async client, each with its own fresh script:
    (which, script, result or the exception raised)."""
    script = make_script()
    try:
        result: Any = getattr(sync_client(script), method)(*args, **kwargs)
    except Exception as e:
        result = e
    yield "sync", script, result

    async def run(script: Script) -> Any:
        async with async_client(script) as client:
            return await getattr(client, method)(*args, **kwargs)

    script = make_script()
    try:
        result = asyncio.run(run(script))
    except Exception as e:
        result = e
    yield "async", script, result


def template(name: str = "small") -> ComputeTemplate:
    return ComputeTemplate(name=name, cpu=2, memory=4)


def cluster_body() -> Cluster:
    return Cluster(
        name="demo",
        user="ann",
        annotations={ENABLE_SERVE_SERVICE_ANNOTATION: "true"},
        cluster_spec=ClusterSpec(
            head_group_spec=HeadGroupSpec(
                compute_template="small", ray_start_params={"num-cpus": "0"}
            ),
            worker_group_spec=[
                WorkerGroupSpec(
                    group_name="cpu", compute_template="small", replicas=1, max_replicas=2
                )
            ],
        ),
    )


# --- paths, verbs, bodies, results ------------------------------------------------------------

CLUSTER = {"name": "demo", "namespace": NS, "clusterState": "ready"}
SERVICE = {"name": "svc", "namespace": NS, "serveConfigV2": "applications: []"}
JOB = {"submissionId": "raysubmit_1", "status": "RUNNING", "startTime": "1700000000000"}
APPS = {"applications": {"app": {"name": "app", "status": "RUNNING"}}}

# method, arguments, verb, path, query, body sent, answer, what the method returns
CASES: list[tuple[str, tuple[Any, ...], str, str, str, Any, Any, Any]] = [
    (
        "create_compute_template",
        (NS, template()),
        "POST",
        f"{V1}/compute_templates",
        "",
        {"name": "small", "namespace": NS, "cpu": 2, "memory": 4},
        {"name": "small", "namespace": NS, "cpu": 2, "memory": 4},
        ComputeTemplate(name="small", namespace=NS, cpu=2, memory=4),
    ),
    (
        "get_compute_template",
        (NS, "small"),
        "GET",
        f"{V1}/compute_templates/small",
        "",
        None,
        {"name": "small", "cpu": 2, "memory": 4, "memoryUnit": "Gi"},
        ComputeTemplate(name="small", cpu=2, memory=4, memory_unit="Gi"),
    ),
    (
        "list_compute_templates",
        (NS,),
        "GET",
        f"{V1}/compute_templates",
        "",
        None,
        {"computeTemplates": [{"name": "a"}, {"name": "b"}]},
        [ComputeTemplate(name="a"), ComputeTemplate(name="b")],
    ),
    (
        "list_compute_templates",
        (),
        "GET",
        "/apis/v1/compute_templates",
        "",
        None,
        {},
        [],
    ),
    (
        "delete_compute_template",
        (NS, "small"),
        "DELETE",
        f"{V1}/compute_templates/small",
        "",
        None,
        {},
        None,
    ),
    (
        "get_cluster",
        (NS, "demo"),
        "GET",
        f"{V1}/clusters/demo",
        "",
        None,
        CLUSTER,
        Cluster.model_validate(CLUSTER),
    ),
    (
        "list_clusters",
        (NS,),
        "GET",
        f"{V1}/clusters",
        "",
        None,
        {"clusters": [CLUSTER]},
        [Cluster.model_validate(CLUSTER)],
    ),
    ("list_clusters", (), "GET", "/apis/v1/clusters", "", None, {"clusters": []}, []),
    ("delete_cluster", (NS, "demo"), "DELETE", f"{V1}/clusters/demo", "", None, {}, None),
    (
        "create_ray_service",
        (NS, RayService(name="svc", user="ann", serve_config_v2="applications: []")),
        "POST",
        f"{V1}/services",
        "",
        {"name": "svc", "namespace": NS, "user": "ann", "serveConfigV2": "applications: []"},
        SERVICE,
        RayService.model_validate(SERVICE),
    ),
    (
        "update_ray_service",
        (NS, "svc", RayService(name="svc", namespace=NS, user="ann")),
        "PUT",
        f"{V1}/services/svc",
        "",
        {"name": "svc", "namespace": NS, "user": "ann"},
        SERVICE,
        RayService.model_validate(SERVICE),
    ),
    (
        "get_ray_service",
        (NS, "svc"),
        "GET",
        f"{V1}/services/svc",
        "",
        None,
        SERVICE,
        RayService.model_validate(SERVICE),
    ),
    ("delete_ray_service", (NS, "svc"), "DELETE", f"{V1}/services/svc", "", None, {}, None),
    (
        "deploy_serve_applications",
        (NS, "demo", "applications: []\n"),
        "POST",
        f"{V1}/serveapplication/demo",
        "",
        {"configyaml": "applications: []\n"},
        {},
        None,
    ),
    (
        "get_serve_applications",
        (NS, "demo"),
        "GET",
        f"{V1}/serveapplication/demo",
        "",
        None,
        APPS,
        ServeApplicationsReply.model_validate(APPS),
    ),
    (
        "delete_serve_applications",
        (NS, "demo"),
        "DELETE",
        f"{V1}/serveapplication/demo",
        "",
        None,
        {},
        None,
    ),
    (
        "submit_job",
        (NS, "demo", RayJobSubmission(entrypoint="python run.py", entrypoint_num_cpus=1)),
        "POST",
        f"{V1}/jobsubmissions/demo",
        "",
        {"entrypoint": "python run.py", "entrypointNumCpus": 1.0},
        {"submissionId": "raysubmit_1"},
        "raysubmit_1",
    ),
    (
        "get_job",
        (NS, "demo", "raysubmit_1"),
        "GET",
        f"{V1}/jobsubmissions/demo/raysubmit_1",
        "",
        None,
        JOB,
        JobSubmissionInfo.model_validate(JOB),
    ),
    (
        "list_jobs",
        (NS, "demo"),
        "GET",
        f"{V1}/jobsubmissions/demo",
        "",
        None,
        {"submissions": [JOB]},
        [JobSubmissionInfo.model_validate(JOB)],
    ),
    (
        "get_job_log",
        (NS, "demo", "raysubmit_1"),
        "GET",
        f"{V1}/jobsubmissions/demo/log/raysubmit_1",
        "",
        None,
        {"log": "hello\n"},
        "hello\n",
    ),
    (
        "stop_job",
        (NS, "demo", "raysubmit_1"),
        "POST",
        f"{V1}/jobsubmissions/demo/raysubmit_1",
        "",
        None,
        {},
        None,
    ),
    (
        "delete_job",
        (NS, "demo", "raysubmit_1"),
        "DELETE",
        f"{V1}/jobsubmissions/demo/raysubmit_1",
        "",
        None,
        {},
        None,
    ),
    # the controller's Kubernetes-shaped paths
    (
        "get_service",
        (NS, "svc"),
        "GET",
        f"{RAY}/rayservices/svc",
        "",
        None,
        {"kind": "X"},
        {"kind": "X"},
    ),
    ("delete_service", (NS, "svc"), "DELETE", f"{RAY}/rayservices/svc", "", None, {}, None),
    ("delete_raycluster", (NS, "rc"), "DELETE", f"{RAY}/rayclusters/rc", "", None, {}, None),
    (
        "rollout",
        (NS, "svc", "pause"),
        "POST",
        f"{RAY}/rayservices/svc/rollout/pause",
        "",
        None,
        {"message": "paused"},
        {"message": "paused"},
    ),
    (
        "rollout_history",
        (NS, "svc"),
        "GET",
        f"{RAY}/rayservices/svc/rollout/history",
        "",
        None,
        {"items": [{"revision": 1}]},
        [{"revision": 1}],
    ),
    ("list_objects", ("rayclusters", NS), "GET", f"{RAY}/rayclusters", "", None, {"items": []}, []),
    (
        "list_objects",
        ("pods", None),
        "GET",
        "/api/v1/pods",
        "",
        None,
        {"items": [{"a": 1}]},
        [{"a": 1}],
    ),
    (
        "list_objects",
        ("services", NS),
        "GET",
        f"/api/v1/namespaces/{NS}/services",
        "",
        None,
        {"items": []},
        [],
    ),
    (
        "events",
        (NS, "svc"),
        "GET",
        f"{RAY}/rayservices/svc/events",
        "",
        None,
        {"items": [{"reason": "Created"}]},
        [{"reason": "Created"}],
    ),
    (
        "logs",
        (NS, "svc", "svc-head", 5),
        "GET",
        f"{RAY}/rayservices/svc/logs",
        "tail=5&pod=svc-head",
        None,
        None,
        "line\n",
    ),
]


@pytest.mark.parametrize(
    ("method", "args", "verb", "path", "query", "sent", "answer", "expected"),
    CASES,
    ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)],
)
def test_each_method_sends_its_request_and_reads_its_answer(
    method: str,
    args: tuple[Any, ...],
    verb: str,
    path: str,
    query: str,
    sent: Any,
    answer: Any,
    expected: Any,
) -> None:
    def script() -> Script:
        reply = httpx.Response(200, text="line\n") if answer is None else ok(answer)
        return Script().on(verb, path, reply)

    for which, fake, result in both(script, method, *args):
        assert not isinstance(result, Exception), (which, result)
        (request,) = fake.requests
        assert (request.method, request.url.path, request.url.query.decode()) == (
            verb,
            path,
            query,
        ), which
        assert (json.loads(request.content) if request.content else None) == sent, which
        assert result == expected, which


def test_a_cluster_is_sent_in_camel_case_with_the_path_namespace() -> None:
    script = Script().on("POST", f"{V1}/clusters", ok(CLUSTER))
    created = sync_client(script).create_cluster(NS, cluster_body())
    assert created.cluster_state == "ready"
    body = json.loads(script.last.content)
    assert body == {
        "name": "demo",
        "namespace": NS,
        "user": "ann",
        "annotations": {"ray.io/enable-serve-service": "true"},
        "clusterSpec": {
            "headGroupSpec": {"computeTemplate": "small", "rayStartParams": {"num-cpus": "0"}},
            "workerGroupSpec": [
                {
                    "computeTemplate": "small",
                    "rayStartParams": {},
                    "groupName": "cpu",
                    "replicas": 1,
                    "minReplicas": 0,
                    "maxReplicas": 2,
                }
            ],
        },
    }


def test_names_stay_one_path_segment() -> None:
    script = Script()
    with pytest.raises(NotFound):
        sync_client(script).get_cluster(NS, "../../clusters/x")
    assert script.last.url.raw_path == f"{V1}/clusters/..%2F..%2Fclusters%2Fx".encode()


def test_apply_chooses_the_path_by_kind_and_reads_warnings() -> None:
    service = {"kind": "RayService", "metadata": {"name": "svc", "namespace": NS}}
    cluster = {"kind": "RayCluster", "metadata": {"name": "rc"}}
    script = (
        Script()
        .on(
            "PUT",
            f"{RAY}/rayservices/svc",
            ok({"metadata": {"generation": 2}}, headers={"Warning": '299 - "held change"'}),
        )
        .on("PUT", "/apis/ray.io/v1/namespaces/default/rayclusters/rc", ok({"kind": "change"}))
        .on("DELETE", "/apis/ray.io/v1/namespaces/default/rayclusters/rc", ok())
    )
    client = sync_client(script)
    stored, warnings = client.apply(service, "svc.yaml", "/srv")
    assert stored == {"metadata": {"generation": 2}} and warnings == ["held change"]
    assert json.loads(script.last.content) == {
        "manifest": service,
        "source": "svc.yaml",
        "baseDir": "/srv",
    }
    assert client.dry_run(cluster, "rc.yaml", "/srv") == {"kind": "change"}
    assert script.last.url.params["dryRun"] == "All"
    client.delete_document(cluster)
    assert (script.last.method, script.last.url.path) == (
        "DELETE",
        "/apis/ray.io/v1/namespaces/default/rayclusters/rc",
    )


# --- auth and address ---------------------------------------------------------------------------


def test_the_token_goes_out_as_a_bearer_header_and_nothing_without_one() -> None:
    script = Script().on("GET", f"{V1}/clusters", ok({"clusters": []}))
    sync_client(script, token="s3cret").list_clusters(NS)
    assert script.last.headers["authorization"] == "Bearer s3cret"
    sync_client(script).list_clusters(NS)
    assert "authorization" not in script.last.headers

    async def run() -> None:
        async with async_client(script, token="t0ken") as client:
            await client.list_clusters(NS)

    asyncio.run(run())
    assert script.last.headers["authorization"] == "Bearer t0ken"


def test_the_address_follows_the_command_lines_convention() -> None:
    assert connection.resolve_base_url(None, {}) == "http://127.0.0.1:8888"
    assert connection.resolve_base_url(None, {"RAYSERVICE_API_PORT": "9000"}).endswith(":9000")
    env = {"RAYSERVICE_API_URL": "https://ctl.example:443/"}
    assert connection.resolve_base_url(None, env) == "https://ctl.example:443"
    assert connection.resolve_base_url("http://h:1/", env) == "http://h:1"
    # the names are repeated in the client package: they must stay the server's
    assert connection.API_URL_ENV == settings.API_URL_ENV
    assert connection.DEFAULT_API_PORT == settings.DEFAULT_API_PORT
    assert connection.API_HOST == settings.API_HOST
    assert connection.BEARER == credentials.BEARER
    assert errors.TOKEN_ENV == credentials.TOKEN_ENV
    assert errors.TOKEN_FILE_ENV == credentials.TOKEN_FILE_ENV


# --- errors ---------------------------------------------------------------------------------------

ERRORS: list[tuple[int, dict[str, Any], type[ApiError], int | None, str]] = [
    (404, {"code": 5, "message": "cluster demo not found"}, NotFound, 5, "cluster demo not found"),
    (409, {"code": 6, "message": "exists"}, AlreadyExists, 6, "exists"),
    (
        400,
        {"code": 3, "message": "name: must not be empty"},
        InvalidRequest,
        3,
        "name: must not be empty",
    ),
    (
        401,
        {"code": 16, "message": "a valid token is required"},
        Unauthenticated,
        16,
        "a valid token is required",
    ),
    (400, {"code": 9, "message": "serve is not up"}, Conflict, 9, "serve is not up"),
    (500, {"code": 13, "message": "boom"}, ApiError, 13, "boom"),
    # the controller's own paths: FastAPI's detail, no gRPC code
    (404, {"detail": 'rayservice "x" not found'}, NotFound, None, 'rayservice "x" not found'),
    (409, {"detail": "promote refused"}, Conflict, None, "promote refused"),
    (503, {}, ApiError, None, "503 Service Unavailable"),
]


@pytest.mark.parametrize(("status", "body", "kind", "code", "message"), ERRORS)
def test_error_answers_become_typed_errors(
    status: int, body: dict[str, Any], kind: type[ApiError], code: int | None, message: str
) -> None:
    def script() -> Script:
        return Script().on("GET", f"{V1}/clusters/demo", httpx.Response(status, json=body))

    for which, _, error in both(script, "get_cluster", NS, "demo"):
        assert type(error) is kind, which
        assert (error.status, error.code, error.message) == (status, code, message), which


def test_a_refused_manifest_is_an_invalid_spec_with_its_problems() -> None:
    problem = {
        "source": "svc.yaml",
        "field": "spec.serveConfigV2",
        "message": "is required",
        "valid": "a YAML string",
    }
    script = Script().on(
        "PUT",
        f"{RAY}/rayservices/svc",
        httpx.Response(422, json={"message": "x", "problems": [problem]}),
    )
    manifest = {"kind": "RayService", "metadata": {"name": "svc", "namespace": NS}}
    with pytest.raises(InvalidSpec) as caught:
        sync_client(script).apply(manifest, "svc.yaml", "/")
    assert isinstance(caught.value, InvalidRequest)
    assert [p.render() for p in caught.value.problems] == [
        "svc.yaml: spec.serveConfigV2: is required (valid: a YAML string)"
    ]


def test_an_unlocated_refusal_still_renders_its_message() -> None:
    script = Script().on(
        "POST",
        f"{V1}/clusters",
        httpx.Response(400, json={"code": 3, "message": "compute template 'big' does not exist"}),
    )
    with pytest.raises(InvalidRequest) as caught:
        sync_client(script).create_cluster(NS, cluster_body())
    assert str(caught.value) == "compute template 'big' does not exist"
    assert [p.render() for p in caught.value.problems] == [str(caught.value)]


def test_unauthenticated_says_where_the_token_goes() -> None:
    script = Script().on(
        "GET", f"{V1}/clusters", httpx.Response(401, json={"code": 16, "message": "no"})
    )
    with pytest.raises(Unauthenticated, match="RAYSERVICE_TOKEN_FILE"):
        sync_client(script).list_clusters(NS)


def test_no_answer_says_how_to_start_a_controller() -> None:
    class Refusing(Script):
        def __call__(self, request: httpx.Request) -> httpx.Response:
            raise httpx.ConnectError("connection refused", request=request)

    for which, _, error in both(Refusing, "list_clusters"):
        assert isinstance(error, ControllerUnavailable), which
        assert error.status is None and "rayservice start" in str(error), which
    for which, _, healthy in both(Refusing, "healthy"):
        assert healthy is False, which


def test_a_plain_text_error_keeps_its_text() -> None:
    script = Script().on("GET", f"{V1}/clusters", httpx.Response(502, text="upstream down\n"))
    with pytest.raises(ApiError) as caught:
        sync_client(script).list_clusters(NS)
    assert (type(caught.value), caught.value.message) == (ApiError, "upstream down")


def test_an_answer_that_is_not_the_promised_body_is_an_api_error() -> None:
    script = Script().on("GET", f"{V1}/clusters/demo", ok({"clusterState": ["not", "a str"]}))
    with pytest.raises(ApiError, match="not a Cluster"):
        sync_client(script).get_cluster(NS, "demo")


# --- pagination ---------------------------------------------------------------------------------


def paged_services(total: int, repeat_token: bool = False) -> Callable[[], Script]:
    """A server that answers ``pageSize`` services at a time, tokens being offsets."""

    class Pager(Script):
        def __call__(self, request: httpx.Request) -> httpx.Response:
            self.requests.append(request)
            size = int(request.url.params.get("pageSize", total))
            start = int(request.url.params.get("pageToken", "0"))
            names = [f"svc-{i}" for i in range(start, min(start + size, total))]
            following = start + size
            token = "1" if repeat_token else (str(following) if following < total else "")
            return ok(
                {
                    "services": [{"name": n, "namespace": NS} for n in names],
                    "nextPageToken": token,
                    "totalSize": total,
                }
            )

    return Pager


def test_listing_follows_page_tokens_to_the_end() -> None:
    for which, script, services in both(paged_services(5), "list_ray_services", NS, page_size=2):
        assert [s.name for s in services] == [f"svc-{i}" for i in range(5)], which
        queries = [(r.url.path, r.url.query.decode()) for r in script.requests]
        assert queries == [
            (f"{V1}/services", "pageSize=2"),
            (f"{V1}/services", "pageSize=2&pageToken=2"),
            (f"{V1}/services", "pageSize=2&pageToken=4"),
        ], which


def test_one_page_and_a_server_repeating_its_token() -> None:
    page = sync_client(paged_services(5)()).list_ray_services_page(page_size=3, page_token="3")
    assert [s.name for s in page.services] == ["svc-3", "svc-4"] and page.total_size == 5
    for which, script, error in both(paged_services(5, repeat_token=True), "list_ray_services"):
        assert isinstance(error, ApiError) and "twice" in str(error), which
        assert len(script.requests) == 2, which


# --- wait helpers ----------------------------------------------------------------------------


def clusters(*states: str) -> list[httpx.Response]:
    return [ok({"name": "demo", "clusterState": s}) for s in states]


def run_wait(
    client_kind: str, script: Script, time: FakeTime, method: str, *args: Any, **kwargs: Any
) -> Any:
    if client_kind == "sync":
        return getattr(sync_client(script, time), method)(*args, **kwargs)

    async def run() -> Any:
        async with async_client(script, time) as client:
            return await getattr(client, method)(*args, **kwargs)

    return asyncio.run(run())


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_wait_cluster_ready_polls_and_reports_each_change(kind: str) -> None:
    script = Script().on("GET", f"{V1}/clusters/demo", *clusters("", "", "unhealthy", "ready"))
    time, seen = FakeTime(), list[str]()
    cluster = run_wait(
        kind, script, time, "wait_cluster_ready", NS, "demo", 60, seen.append, interval=2
    )
    assert cluster.cluster_state == "ready"
    assert seen == [
        "clusterState (none yet)",
        "clusterState unhealthy",
        "clusterState ready",
    ]
    assert len(script.requests) == 4 and time.slept == [2, 2, 2]


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_wait_gives_up_at_the_deadline_saying_what_it_saw(kind: str) -> None:
    event = {
        "reason": "Pending",
        "message": "head not started",
        "lastTimestamp": "2024-01-01T00:00:00Z",
    }
    older = {"reason": "Created", "lastTimestamp": "2023-01-01T00:00:00Z"}
    script = Script().on(
        "GET", f"{V1}/clusters/demo", ok({"clusterState": "unhealthy", "events": [event, older]})
    )
    time = FakeTime()
    with pytest.raises(WaitTimeout) as caught:
        run_wait(kind, script, time, "wait_cluster_ready", NS, "demo", 5, interval=2)
    assert caught.value.last_seen == "clusterState unhealthy; last event: Pending head not started"
    assert "cluster team-a/demo to be ready after 5 s" in str(caught.value)
    assert isinstance(caught.value, TimeoutError)
    assert time.slept == [2, 2, 1] and time.now == 1005


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_wait_serve_applications_sees_through_passing_errors(kind: str) -> None:
    script = Script().on(
        "GET",
        f"{V1}/serveapplication/demo",
        httpx.Response(400, json={"code": 9, "message": "dashboard not up"}),
        httpx.Response(503, json={"code": 14, "message": "busy"}),
        ok({}),
        ok(
            {
                "applications": {
                    "b": {"status": "RUNNING"},
                    "a": {"status": "DEPLOYING", "message": "2 replicas left"},
                }
            }
        ),
        ok({"applications": {"a": {"status": "RUNNING"}, "b": {"status": "RUNNING"}}}),
    )
    seen: list[str] = []
    reply = run_wait(
        kind,
        script,
        FakeTime(),
        "wait_serve_applications_running",
        NS,
        "demo",
        30,
        seen.append,
        interval=0.5,
    )
    assert sorted(reply.applications) == ["a", "b"]
    assert seen == [
        "Conflict (dashboard not up)",
        "ApiError (busy)",
        "no Serve applications yet",
        "a DEPLOYING (2 replicas left), b RUNNING",
        "a RUNNING, b RUNNING",
    ]


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_wait_stops_at_an_error_that_will_not_pass(kind: str) -> None:
    script = Script().on(
        "GET",
        f"{V1}/clusters/demo",
        httpx.Response(404, json={"code": 5, "message": "no cluster demo"}),
    )
    time = FakeTime()
    with pytest.raises(NotFound):
        run_wait(kind, script, time, "wait_cluster_ready", NS, "demo", 60)
    assert len(script.requests) == 1 and time.slept == []


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_wait_job_returns_at_a_terminal_status(kind: str) -> None:
    path = f"{V1}/jobsubmissions/demo/raysubmit_1"
    script = Script().on(
        "GET",
        path,
        ok({"status": "PENDING"}),
        ok({"status": "RUNNING"}),
        ok({"status": "FAILED", "message": "exit 1"}),
    )
    seen: list[str] = []
    job = run_wait(
        kind, script, FakeTime(), "wait_job", NS, "demo", "raysubmit_1", 10, seen.append, interval=1
    )
    assert job.status == "FAILED"
    assert seen == ["status PENDING", "status RUNNING", "status FAILED (exit 1)"]


# --- parity ---------------------------------------------------------------------------------------


def public_methods(cls: type) -> dict[str, inspect.Signature]:
    return {
        name: inspect.signature(member)
        for name, member in inspect.getmembers(cls, inspect.isfunction)
        if not name.startswith("_") and name not in ("close", "aclose")
    }


def test_the_async_client_has_every_method_of_the_sync_one_with_the_same_arguments() -> None:
    sync, aio = public_methods(RayServiceClient), public_methods(AsyncRayServiceClient)
    assert sorted(sync) == sorted(aio) and len(sync) > 30
    for name, signature in sync.items():
        assert inspect.iscoroutinefunction(getattr(AsyncRayServiceClient, name)), name
        assert list(signature.parameters) == list(aio[name].parameters), name
        assert signature.return_annotation == aio[name].return_annotation, name
    init = inspect.signature(RayServiceClient.__init__).parameters
    assert list(init) == list(inspect.signature(AsyncRayServiceClient.__init__).parameters)


def test_the_real_apps_error_bodies_are_read(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "store.db")
    app = create_app(store, FakeProvider(clock=lambda: 0.0), tmp_path / "packages", lambda: None)

    async def run() -> None:
        transport = httpx.ASGITransport(app=app)
        async with AsyncRayServiceClient(BASE, transport=transport) as client:
            assert await client.healthy()
            assert not await client.service_exists(NS, "missing")
            with pytest.raises(NotFound, match='rayservice "missing" not found'):
                await client.get_service(NS, "missing")
            manifest = {
                "apiVersion": "ray.io/v1",
                "kind": "RayService",
                "metadata": {"name": "svc", "namespace": NS},
            }
            with pytest.raises(InvalidRequest) as caught:
                await client.apply(manifest, "svc.yaml", str(tmp_path))
            assert caught.value.status == 422
            assert any(
                p.source == "svc.yaml" and p.field.startswith("spec") for p in caught.value.problems
            )

    asyncio.run(run())
