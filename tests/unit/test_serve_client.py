"""The Serve clients: the dashboard client against a scripted HTTP transport, and the fake.

The dashboard answers are modelled on Ray 2.60's dashboard: the fixture
``serve_instance_details.json`` follows ``ray.serve.schema.ServeInstanceDetails`` (a test
below checks it against that schema), 400 bodies are plain text, and token authentication
answers 401 without a token and 403 with a wrong one.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from rayservice.serve_client.base import ServeClient, ServeConfigRejected
from rayservice.serve_client.dashboard import DashboardServeClient, parse_serve_details
from rayservice.serve_client.fake import FakeServeClient, ServeCall, running_state
from rayservice.spec.errors import PermanentError, TemporaryError
from rayservice.spec.observed import AppState, DeploymentState, Replica, ServeState

DASHBOARD = "http://127.0.0.1:8265"
TOKEN = "s3cret-token"
CONFIG: dict[str, Any] = {
    "applications": [
        {
            "name": "simple_app",
            "route_prefix": "/basic",
            "import_path": "hello:app",
            "deployments": [{"name": "BaseService", "num_replicas": 2}],
        }
    ]
}
OPERATIONS = ["deploy", "status", "details", "shutdown"]
# How a dashboard with token authentication answers without the token and with another one.
TOKEN_REFUSALS = [
    (401, "Unauthorized: Missing authentication token"),
    (403, "Forbidden: Invalid authentication token"),
]
NO_ANSWER = [
    httpx.ConnectError("Connection refused"),
    httpx.ReadTimeout("timed out"),
    httpx.RemoteProtocolError("Server disconnected without sending a response."),
]
# What the dashboard answers before the first deploy or after a shutdown (measured).
NOT_RUNNING: dict[str, Any] = {
    "controller_info": {},
    "proxies": {},
    "applications": {},
    "target_capacity": None,
}
DETAILS_FIXTURE = Path(__file__).parent / "fixtures" / "serve_instance_details.json"


def load_details() -> dict[str, Any]:
    details: dict[str, Any] = json.loads(DETAILS_FIXTURE.read_text())
    return details


class ScriptedDashboard:
    """An httpx transport that records requests and answers with ``respond``."""

    def __init__(self, respond: Callable[[httpx.Request], httpx.Response]) -> None:
        self.requests: list[httpx.Request] = []
        self._respond = respond

    def client(self) -> DashboardServeClient:
        return DashboardServeClient(timeout=1.0, transport=self.transport())

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self._handle)

    def _handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self._respond(request)


def answering(status: int, **content: Any) -> ScriptedDashboard:
    return ScriptedDashboard(lambda _: httpx.Response(status, **content))


def raising(error: Exception) -> ScriptedDashboard:
    def respond(_: httpx.Request) -> httpx.Response:
        raise error

    return ScriptedDashboard(respond)


def call(client: ServeClient, operation: str) -> None:
    if operation == "deploy":
        client.deploy(DASHBOARD, TOKEN, CONFIG)
    elif operation == "status":
        client.status(DASHBOARD, TOKEN)
    elif operation == "details":
        client.details(DASHBOARD, TOKEN)
    else:
        client.shutdown(DASHBOARD, TOKEN)


def test_deploy_puts_the_config_as_json_with_the_token() -> None:
    dashboard = answering(200)

    dashboard.client().deploy(DASHBOARD, TOKEN, CONFIG)

    (request,) = dashboard.requests
    assert request.method == "PUT"
    assert str(request.url) == f"{DASHBOARD}/api/serve/applications/"
    assert request.headers["x-ray-authorization"] == f"Bearer {TOKEN}"
    assert request.headers["content-type"] == "application/json"
    assert json.loads(request.content) == CONFIG


def test_a_trailing_slash_on_the_dashboard_url_is_ignored() -> None:
    dashboard = answering(200)

    dashboard.client().deploy(f"{DASHBOARD}/", TOKEN, CONFIG)

    assert dashboard.requests[0].url.path == "/api/serve/applications/"


def test_deploy_rejected_with_400_carries_rays_message() -> None:
    message = "1 validation error for ServeDeploySchema\napplications.0.import_path\n  ..."
    dashboard = answering(400, text=message + "\n")

    with pytest.raises(ServeConfigRejected) as rejected:
        dashboard.client().deploy(DASHBOARD, TOKEN, CONFIG)

    assert str(rejected.value) == message
    assert isinstance(rejected.value, PermanentError)


@pytest.mark.parametrize(("status", "body"), TOKEN_REFUSALS)
@pytest.mark.parametrize("operation", OPERATIONS)
def test_a_refused_token_is_permanent(status: int, body: str, operation: str) -> None:
    client = answering(status, text=body).client()

    with pytest.raises(PermanentError, match="refused the cluster's token") as refused:
        call(client, operation)

    assert not isinstance(refused.value, ServeConfigRejected)
    assert body in str(refused.value)


@pytest.mark.parametrize("status", [404, 500, 503])
@pytest.mark.parametrize("operation", OPERATIONS)
def test_server_errors_are_temporary(status: int, operation: str) -> None:
    client = answering(status, text="The GCS may be down, please retry later").client()

    with pytest.raises(TemporaryError, match=f"HTTP {status}"):
        call(client, operation)


def test_serve_missing_on_the_cluster_is_permanent() -> None:
    client = answering(501, text="Serve dependencies are not installed.").client()

    with pytest.raises(PermanentError, match="HTTP 501"):
        client.status(DASHBOARD, TOKEN)


@pytest.mark.parametrize("error", NO_ANSWER)
@pytest.mark.parametrize("operation", OPERATIONS)
def test_no_answer_is_temporary_and_keeps_the_cause(error: httpx.HTTPError, operation: str) -> None:
    client = raising(error).client()

    with pytest.raises(TemporaryError, match="got no answer") as temporary:
        call(client, operation)

    assert temporary.value.__cause__ is error


def test_status_asks_for_declarative_apps_with_the_token() -> None:
    dashboard = answering(200, json=load_details())

    dashboard.client().status(DASHBOARD, TOKEN)

    (request,) = dashboard.requests
    assert request.method == "GET"
    assert request.url.path == "/api/serve/applications/"
    assert request.url.params["api_type"] == "declarative"
    assert request.headers["x-ray-authorization"] == f"Bearer {TOKEN}"


def test_status_reads_apps_deployments_and_replicas() -> None:
    state = answering(200, json=load_details()).client().status(DASHBOARD, TOKEN)

    assert [app.name for app in state.apps] == ["fruit_app", "math_app"]
    assert state.target_capacity is None
    fruit = state.app("fruit_app")
    assert fruit is not None
    assert (fruit.status, fruit.route_prefix, fruit.message) == ("RUNNING", "/fruit", "")
    [mango] = fruit.deployments[0].replicas
    assert fruit.deployments[0] == DeploymentState(
        name="MangoStand", status="HEALTHY", message="", replicas=(mango,)
    )
    assert mango.state == "RUNNING" and len(mango.node_id) == 56 and mango.replica_id
    math = state.app("math_app")
    assert math is not None
    assert (math.status, math.message) == ("DEPLOYING", "Deploying app 'math_app'")
    states = {d.name: (d.status, tuple(r.state for r in d.replicas)) for d in math.deployments}
    assert states == {
        "Adder": ("UPDATING", ("STARTING",)),
        "Multiplier": ("HEALTHY", ("RUNNING",)),
        "Router": ("UPDATING", ()),
    }


def test_the_fixture_follows_rays_own_response_schema() -> None:
    from ray.serve.schema import ServeInstanceDetails

    ServeInstanceDetails.model_validate(load_details())


def test_details_asks_for_declarative_apps_and_returns_rays_document_as_it_is() -> None:
    dashboard = answering(200, json=load_details())

    details = dashboard.client().details(DASHBOARD, TOKEN)

    assert details == load_details()
    (request,) = dashboard.requests
    assert (request.method, request.url.path) == ("GET", "/api/serve/applications/")
    assert request.url.params["api_type"] == "declarative"
    assert request.headers["x-ray-authorization"] == f"Bearer {TOKEN}"


@pytest.mark.parametrize("answer", [{"text": "<html>proxy error page</html>"}, {"json": []}])
def test_details_that_are_not_a_json_object_are_temporary(answer: dict[str, Any]) -> None:
    client = answering(200, **answer).client()

    with pytest.raises(TemporaryError, match="not Serve's application details"):
        client.details(DASHBOARD, TOKEN)


def test_serve_not_running_reads_as_no_apps() -> None:
    assert parse_serve_details(NOT_RUNNING) == ServeState()


def test_target_capacity_is_read_as_a_float() -> None:
    details = load_details() | {"target_capacity": 50}

    assert parse_serve_details(details).target_capacity == 50.0


def test_an_answer_that_is_not_serve_details_is_temporary() -> None:
    client = answering(200, text="<html>proxy error page</html>").client()

    with pytest.raises(TemporaryError, match="not Serve's application details"):
        client.status(DASHBOARD, TOKEN)


def test_shutdown_deletes_the_applications() -> None:
    dashboard = answering(200)

    dashboard.client().shutdown(DASHBOARD, TOKEN)

    (request,) = dashboard.requests
    assert (request.method, request.url.path) == ("DELETE", "/api/serve/applications/")
    assert request.headers["x-ray-authorization"] == f"Bearer {TOKEN}"


# The fake, which controller tests rely on.


def test_the_fake_records_configs_per_dashboard() -> None:
    fake = FakeServeClient()
    other = "http://127.0.0.1:9265"

    fake.deploy(DASHBOARD, TOKEN, CONFIG)
    fake.deploy(other, TOKEN, {"applications": []})

    assert fake.last_deployed(DASHBOARD) == CONFIG
    assert fake.last_deployed(other) == {"applications": []}
    assert fake.last_deployed("http://127.0.0.1:1") is None
    assert fake.calls == [
        ServeCall("deploy", DASHBOARD, TOKEN),
        ServeCall("deploy", other, TOKEN),
    ]


def test_the_fake_keeps_a_copy_of_what_was_deployed() -> None:
    fake = FakeServeClient()
    config = json.loads(json.dumps(CONFIG))

    fake.deploy(DASHBOARD, TOKEN, config)
    config["applications"].clear()

    assert fake.last_deployed(DASHBOARD) == CONFIG


def test_the_fake_answers_the_scripted_state_until_shutdown() -> None:
    fake = FakeServeClient()
    state = ServeState(apps=(AppState(name="simple_app", status="DEPLOYING"),))

    assert fake.status(DASHBOARD, TOKEN) == ServeState()
    fake.set_state(DASHBOARD, state)
    assert fake.status(DASHBOARD, TOKEN) == state
    fake.shutdown(DASHBOARD, TOKEN)
    assert fake.status(DASHBOARD, TOKEN) == ServeState()


def test_the_fake_raises_scripted_errors_until_cleared() -> None:
    fake = FakeServeClient()
    other = "http://127.0.0.1:9265"
    fake.fail("deploy", ServeConfigRejected("bad import_path"), dashboard_url=DASHBOARD)
    fake.fail("status", TemporaryError("connection refused"))

    with pytest.raises(ServeConfigRejected, match="bad import_path"):
        fake.deploy(DASHBOARD, TOKEN, CONFIG)
    fake.deploy(other, TOKEN, CONFIG)
    with pytest.raises(TemporaryError):
        call(fake, "status")

    fake.clear_failures()
    fake.deploy(DASHBOARD, TOKEN, CONFIG)
    assert fake.status(DASHBOARD, TOKEN) == ServeState()
    assert len(fake.deployed[DASHBOARD]) == 1


def test_running_state_reports_every_app_of_a_config_as_up() -> None:
    assert running_state(CONFIG) == ServeState(
        apps=(
            AppState(
                name="simple_app",
                status="RUNNING",
                route_prefix="/basic",
                deployments=(
                    DeploymentState(
                        name="BaseService", status="HEALTHY", replicas=(Replica("RUNNING"),) * 2
                    ),
                ),
            ),
        )
    )


def test_the_fake_details_are_rays_empty_document_until_a_state_is_scripted() -> None:
    fake = FakeServeClient()

    assert fake.details(DASHBOARD, TOKEN) == NOT_RUNNING
    fake.set_state(DASHBOARD, running_state(CONFIG))
    fake.shutdown(DASHBOARD, TOKEN)
    assert fake.details(DASHBOARD, TOKEN) == NOT_RUNNING


def without_placement(state: ServeState) -> ServeState:
    """``state`` without where Ray placed replicas and proxies (a scripted state says none)."""
    apps = tuple(
        replace(
            app,
            deployments=tuple(
                replace(d, replicas=tuple(Replica(r.state) for r in d.replicas))
                for d in app.deployments
            ),
        )
        for app in state.apps
    )
    return replace(state, apps=apps, proxies=(), proxy_location="")


def test_the_fake_details_follow_rays_schema_and_tell_the_scripted_state() -> None:
    from ray.serve.schema import ServeInstanceDetails

    fake = FakeServeClient(clock=lambda: 1767225600.0)
    config = CONFIG | {"http_options": {"host": "127.0.0.1", "port": 21005}}
    fake.deploy(DASHBOARD, TOKEN, config)
    (running,) = running_state(CONFIG).apps
    deploying = replace(
        running,
        status="DEPLOYING",
        message="Deploying app 'simple_app'",
        deployments=(
            replace(
                running.deployments[0],
                status="UPDATING",
                replicas=(Replica("RUNNING"), Replica("STARTING")),
            ),
        ),
    )
    fake.set_state(DASHBOARD, ServeState(apps=(deploying,), target_capacity=50.0))

    details = fake.details(DASHBOARD, TOKEN)

    ServeInstanceDetails.model_validate(details)
    parsed = parse_serve_details(details)
    assert without_placement(parsed) == fake.status(DASHBOARD, TOKEN)
    [proxy_node] = {node for node, _ in parsed.proxies}
    assert {r.node_id for r in parsed.apps[0].deployments[0].replicas} == {proxy_node}
    assert details["http_options"]["port"] == 21005
    app = details["applications"]["simple_app"]
    assert app["deployed_app_config"] == CONFIG["applications"][0]
    assert app["last_deployed_time_s"] == 1767225600.0
    deployment = app["deployments"]["BaseService"]
    assert (deployment["status_trigger"], deployment["target_num_replicas"]) == (
        "CONFIG_UPDATE_STARTED",
        2,
    )
    replica_ids = [replica["replica_id"] for replica in deployment["replicas"]]
    assert len(set(replica_ids)) == 2
    assert fake.details(DASHBOARD, TOKEN) == details


def test_the_fake_fails_details_when_told() -> None:
    fake = FakeServeClient()
    fake.fail("details", TemporaryError("connection refused"), dashboard_url=DASHBOARD)

    with pytest.raises(TemporaryError):
        fake.details(DASHBOARD, TOKEN)
    assert fake.calls == [ServeCall("details", DASHBOARD, TOKEN)]
