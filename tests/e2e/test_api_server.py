"""Seed 003 replayed against a running controller and real Ray: every curl of the seed, in
order, as HTTP requests to the API on its own port (the seed's port 8888 is the default; the
test takes a free one). Our fruit and math apps stand in for the seed's remote zip."""

from __future__ import annotations

import copy
from typing import Any

import httpx
import pytest
import yaml

from rayservice.host.ports import port_is_free
from rayservice.spec.ignored import FIXED_PORT_PARAMS
from tests.e2e.conftest import REPO, Cli
from tests.e2e.steps import get_json, post, service_port
from tests.helpers import eventually
from tests.seed_003 import SEED_CLUSTER as CLUSTER
from tests.seed_003 import SEED_TEMPLATE as TEMPLATE

pytestmark = pytest.mark.e2e

V1 = "/apis/v1/namespaces/default"


def serve_config(apps: str) -> str:
    """The seed's two applications, with our apps folder as working_dir."""
    sample = yaml.safe_load((REPO / "samples" / "ray-service.sample.yaml").read_text())
    config = yaml.safe_load(sample["spec"]["serveConfigV2"])
    for app in config["applications"]:
        app["runtime_env"]["working_dir"] = apps
    return yaml.safe_dump(config)


def test_seed_003_walkthrough(cli: Cli) -> None:
    assert "controller started" in cli.run("start").stdout
    api = httpx.Client(base_url=f"http://127.0.0.1:{cli.env['RAYSERVICE_API_PORT']}", timeout=60)
    try:
        _walk_through(cli, api)
    finally:  # a failed step must not leave the cluster running
        api.delete(f"{V1}/clusters/test-cluster")
        eventually(
            lambda: not (cli.home / "clusters" / "test-cluster").exists(),
            timeout=120,
            interval=1,
            message="test-cluster's processes stopped",
        )
        api.close()


def _walk_through(cli: Cli, api: httpx.Client) -> None:
    created = api.post(f"{V1}/compute_templates", json=TEMPLATE)
    assert created.status_code == 200, created.text
    assert api.post(f"{V1}/compute_templates", json=TEMPLATE).status_code == 409

    # the seed fixes the head's metrics and agent ports: honoured when free, else refused
    fixed = CLUSTER["clusterSpec"]["headGroupSpec"]["rayStartParams"]
    metrics_port = int(fixed["metrics-export-port"])
    free = all(port_is_free(int(fixed[o])) for o in FIXED_PORT_PARAMS)
    cluster = api.post(f"{V1}/clusters", json=CLUSTER)
    if not free:
        assert cluster.status_code == 400, cluster.text
        assert "is already in use" in cluster.json()["message"]
        body = copy.deepcopy(CLUSTER)
        for option in FIXED_PORT_PARAMS:
            del body["clusterSpec"]["headGroupSpec"]["rayStartParams"][option]
        cluster = api.post(f"{V1}/clusters", json=body)
    assert cluster.status_code == 200, cluster.text

    def ready() -> bool:
        cluster: dict[str, Any] = api.get(f"{V1}/clusters/test-cluster").json()
        return cluster.get("clusterState") == "ready"

    eventually(ready, timeout=180, interval=1, message="test-cluster ready")
    services = {item["metadata"]["name"] for item in get_json(cli, "get", "services")["items"]}
    assert {"test-cluster-head-svc", "test-cluster-serve-svc"} <= services
    endpoints = api.get(f"{V1}/clusters/test-cluster").json()["serviceEndpoint"]
    assert {"dashboard", "serve"} <= set(endpoints)
    if free:  # Ray's metrics agent of the head answers on the port the seed asked for
        metrics = eventually(
            lambda: _get_text(f"http://127.0.0.1:{metrics_port}/metrics"),
            timeout=60,
            interval=1,
            message=f"the head's metrics on port {metrics_port}",
        )
        assert "ray_" in metrics

    apps = str(cli.workdir / "samples" / "apps")
    body = {"configyaml": serve_config(apps)}
    submitted = api.post(f"{V1}/serveapplication/test-cluster", json=body)
    assert submitted.status_code == 200, submitted.text

    def running() -> dict[str, Any] | None:
        reply: dict[str, Any] = api.get(f"{V1}/serveapplication/test-cluster").json()
        statuses = {n: a.get("status") for n, a in (reply.get("applications") or {}).items()}
        if statuses == {"fruit_app": "RUNNING", "math_app": "RUNNING"}:
            return reply
        return None

    reply = eventually(running, timeout=240, interval=1, message="both apps RUNNING")
    assert reply is not None
    assert reply["applications"]["fruit_app"]["routePrefix"] == "/fruit"
    # the same cluster through the command line: its Serve apps, its pods, its logs
    serve_status = cli.run("serve", "status", "test-cluster").stdout
    assert "fruit_app" in serve_status and "RUNNING" in serve_status
    pods = cli.run("get", "pods").stdout
    assert "test-cluster-head-" in pods and "test-cluster-small-wg-worker-" in pods
    assert cli.run("logs", "test-cluster", "--tail", "5").stdout.strip()
    port = service_port(cli, "test-cluster-serve-svc")
    answer = eventually(
        lambda: _answer(port), timeout=60, interval=0.5, message="serve-svc answers"
    )
    assert answer == "6"
    assert post(port, "/calc", ["MUL", 3]) == "15 pizzas please!"

    deleted = api.delete(f"{V1}/serveapplication/test-cluster")
    assert deleted.status_code == 200, deleted.text
    eventually(
        lambda: not api.get(f"{V1}/serveapplication/test-cluster").json().get("applications"),
        timeout=120,
        interval=1,
        message="Serve applications gone",
    )

    assert api.delete(f"{V1}/clusters/test-cluster").status_code == 200
    eventually(
        lambda: api.get(f"{V1}/clusters/test-cluster").status_code == 404,
        timeout=120,
        interval=1,
        message="test-cluster deleted",
    )
    assert not (cli.home / "clusters" / "test-cluster").exists()
    assert api.delete(f"{V1}/compute_templates/default-template").status_code == 200
    assert api.delete(f"{V1}/compute_templates/default-template").status_code == 404


def _get_text(url: str) -> str:
    try:
        response = httpx.get(url, timeout=10)
    except httpx.HTTPError:
        return ""
    return response.text if response.status_code == 200 else ""


def _answer(port: int) -> str:
    try:
        response = httpx.post(f"http://127.0.0.1:{port}/fruit", json=["MANGO", 2], timeout=10)
    except httpx.HTTPError:
        return ""
    return response.text if response.status_code == 200 else ""
