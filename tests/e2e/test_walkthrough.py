"""The seed walkthroughs, typed through the CLI exactly as a user would (issue steps 1-8).

One test, in order, because each step builds on the cluster the previous one started and a
Ray cluster takes seconds to start on this machine.
"""

from __future__ import annotations

import json

import httpx
import pytest

from tests.e2e.conftest import Cli
from tests.e2e.steps import edit, get_json, post, service_port
from tests.helpers import eventually

pytestmark = pytest.mark.e2e
SAMPLE = "samples/ray-service.sample.yaml"
NO_REPLICA = "samples/ray-service.no-ray-serve-replica.yaml"


def _replica_ids(cli: Cli, cluster: str, app: str, deployment: str) -> list[str]:
    record = json.loads((cli.home / "clusters" / cluster / "cluster.json").read_text())
    head = next(n for n in record["nodes"] if n["role"] == "head")
    response = httpx.get(
        f"http://127.0.0.1:{head['ports']['dashboard']}/api/serve/applications/",
        headers={"x-ray-authorization": f"Bearer {record['token']}"},
        timeout=10,
    )
    deployments = response.json()["applications"][app]["deployments"]
    return sorted(r["replica_id"] for r in deployments[deployment]["replicas"])


def _ready_pods(cli: Cli, cluster: str) -> list[str]:
    lines = cli.run("get", "pods").stdout.splitlines()[1:]
    return [line.split()[1] for line in lines if line.startswith(cluster) and "worker" in line]


def _worker(cli: Cli, cluster: str, *, ready: bool) -> str:
    """A worker pod of ``cluster`` that is (not) ready."""
    lines = cli.run("get", "pods").stdout.splitlines()[1:]
    wanted = "1/1" if ready else "0/1"
    return next(
        line.split()[0]
        for line in lines
        if line.startswith(cluster) and "worker" in line and line.split()[1] == wanted
    )


def test_sample_walkthrough(cli: Cli) -> None:
    # without a controller the CLI says how to start one
    refused = cli.run("apply", "-f", SAMPLE, check=False)
    assert refused.returncode == 1
    assert "rayservice start" in refused.stderr

    # 1. the controller in the background
    assert "controller started" in cli.run("start").stdout

    # 2. apply --wait shows progress and ends Ready
    applied = cli.run("apply", "-f", SAMPLE, "--wait", "--timeout", "240")
    assert "waiting for the head" in applied.stdout
    assert "Ready:" in applied.stdout

    # 3. get, in tables and kubectl-shaped JSON
    services = get_json(cli, "get", "rayservice")
    assert services["kind"] == "List"
    status = services["items"][0]["status"]
    assert status["numServeEndpoints"] >= 1
    assert any(c["type"] == "Ready" and c["status"] == "True" for c in status["conditions"])
    cluster = status["activeServiceStatus"]["rayClusterName"]
    assert cluster.startswith("rayservice-sample-raycluster-")
    assert set(status["activeServiceStatus"]["applicationStatuses"]) == {"fruit_app", "math_app"}
    header = cli.run("get", "raycluster").stdout.splitlines()[0].split()
    assert header[:3] == ["NAME", "DESIRED", "WORKERS"]
    pods = get_json(cli, "get", "pods")["items"]
    assert {c["type"] for p in pods for c in p["status"]["conditions"]} == {"Ready"}
    assert len(pods) == 2
    svc_names = {s["metadata"]["name"] for s in get_json(cli, "get", "svc")["items"]}
    assert svc_names == {"rayservice-sample-serve-svc", "rayservice-sample-head-svc"}

    # 4. describe tells the whole story
    described = cli.run("describe", "rayservice", "rayservice-sample").stdout
    for expected in ("Active Service Status", "Application Statuses", "fruit_app",
                     "Serve Deployment Statuses", "MangoStand", "Serve Endpoints",
                     "Ignored Fields", "containers[0].image", "ClusterCreated",
                     "ServeConfigSubmitted", "ApplicationRunning", "EndpointAdded"):  # fmt: skip
        assert expected in described, expected

    # 5. the stable endpoints answer exactly as the seed shows
    serve_port = service_port(cli, "rayservice-sample-serve-svc")
    assert post(serve_port, "/fruit/", ["MANGO", 2]) == "6"
    assert post(serve_port, "/calc/", ["MUL", 3]) == "15 pizzas please!"
    head_port = service_port(cli, "rayservice-sample-head-svc")
    # the dashboard behind head-svc demands the cluster's token
    assert httpx.get(f"http://127.0.0.1:{head_port}/api/version", timeout=10).status_code == 401

    # 6. in-place update: same cluster, the replica is reconfigured, not restarted
    before = _replica_ids(cli, cluster, "fruit_app", "MangoStand")
    edit(cli.workdir / SAMPLE, "price: 3", "price: 4")
    cli.run("apply", "-f", SAMPLE, "--wait", "--timeout", "120")
    assert post(serve_port, "/fruit/", ["MANGO", 2]) == "8"
    assert [c["metadata"]["name"] for c in get_json(cli, "get", "raycluster")["items"]] == [cluster]
    assert _replica_ids(cli, cluster, "fruit_app", "MangoStand") == before
    described = cli.run("describe", "rayservice", "rayservice-sample").stdout
    assert "serveConfigV2 changed" in described
    # Ray's UPDATING lasts a few hundred milliseconds; the controller looks right after a deploy
    assert "deployment MangoStand of fruit_app is UPDATING (was HEALTHY)" in described
    assert "deployment MangoStand of fruit_app is HEALTHY (was UPDATING)" in described

    # bad input is refused with file, field and what is valid, and changes nothing
    generation = get_json(cli, "get", "rayservice", "rayservice-sample")["metadata"]["generation"]
    edit(cli.workdir / SAMPLE, "        replicas: 1", "        replicas: -1")
    bad = cli.run("apply", "-f", SAMPLE, check=False)
    assert bad.returncode == 2
    assert SAMPLE in bad.stderr and "workerGroupSpecs[0].replicas" in bad.stderr
    edit(cli.workdir / SAMPLE, "        replicas: -1", "        replicas: 1")
    after = get_json(cli, "get", "rayservice", "rayservice-sample")["metadata"]["generation"]
    assert after == generation

    # the data plane outlives the control plane; a new controller adopts, not duplicates
    assert "services keep serving" in cli.run("stop").stdout
    eventually(lambda: not (cli.home / "controller.pid").exists(), timeout=10)
    assert post(serve_port, "/fruit/", ["MANGO", 2]) == "8"
    cli.run("start")
    assert [c["metadata"]["name"] for c in get_json(cli, "get", "raycluster")["items"]] == [cluster]
    assert post(serve_port, "/calc/", ["ADD", 1]) == "4 pizzas please!"

    # 8. logs of the head
    assert "Ray runtime started" in cli.run("logs", "rayservice-sample").stdout

    # 7. the no-serve-replica walkthrough, next to the first service
    cli.run("apply", "-f", NO_REPLICA, "--wait", "--timeout", "240")
    second = get_json(cli, "get", "rayservice", "rayservice-no-ray-serve-replica")["status"]
    second_cluster = second["activeServiceStatus"]["rayClusterName"]
    basic_port = service_port(cli, "rayservice-no-ray-serve-replica-serve-svc")
    assert basic_port == serve_port + 1
    eventually(lambda: sorted(_ready_pods(cli, second_cluster)) == ["0/1", "1/1"], timeout=60,
               message="one worker ready, one without a proxy")  # fmt: skip
    # the head always runs a Serve proxy, as in the seed's "NUM SERVE ENDPOINTS 2"
    second_endpoints = get_json(cli, "get", "rayservice", "rayservice-no-ray-serve-replica")
    assert second_endpoints["status"]["numServeEndpoints"] == 2
    assert post(basic_port, "/basic", None) == "hello world"
    # why is that worker 0/1? describe pod says it, with the readiness event
    idle = _worker(cli, second_cluster, ready=False)

    # the Unhealthy Warning comes once the reason held 10 s (UNHEALTHY_AFTER_SECONDS)
    def page_with_warning() -> str:
        text = cli.run("describe", "pod", idle).stdout
        return text if "Readiness probe failed" in text else ""

    page = eventually(page_with_warning, timeout=30, message="the readiness Warning is recorded")
    assert "no Serve replica on this node, so Ray Serve runs no proxy here" in page
    assert "Serve Replicas:  <none>" in page
    edit(cli.workdir / NO_REPLICA, "num_replicas: 1", "num_replicas: 2")
    cli.run("apply", "-f", NO_REPLICA, "--wait", "--timeout", "120")
    eventually(lambda: _ready_pods(cli, second_cluster) == ["1/1", "1/1"], timeout=90,
               message="the second worker got a replica and a proxy")  # fmt: skip
    page = cli.run("describe", "pod", idle).stdout
    assert "  Status:   True" in page and "simple_app/BaseService  RUNNING" in page
    eventually(
        lambda: (
            get_json(cli, "get", "rayservice", "rayservice-no-ray-serve-replica")["status"][
                "numServeEndpoints"
            ]
            == 3
        ),
        timeout=30,
    )

    # an import_path that fails inside Ray: DEPLOY_FAILED with Ray's message, nothing else moves
    edit(cli.workdir / NO_REPLICA, "import_path: hello:app", "import_path: hello:no_such_app")
    failed = cli.run("apply", "-f", NO_REPLICA, "--wait", "--timeout", "120", check=False)
    assert failed.returncode != 0
    assert "simple_app DEPLOY_FAILED" in failed.stderr + failed.stdout
    described = cli.run("describe", "rayservice", "rayservice-no-ray-serve-replica").stdout
    assert "DEPLOY_FAILED" in described and "no_such_app" in described
    assert [c["metadata"]["name"] for c in get_json(cli, "get", "raycluster")["items"]] == sorted(
        [cluster, second_cluster]
    )
    assert post(serve_port, "/fruit/", ["MANGO", 2]) == "8", "the other service is untouched"

    # 8. delete removes everything (the fixture asserts no process is left)
    cli.run("delete", "-f", NO_REPLICA)
    cli.run("delete", "rayservice", "rayservice-sample")
    assert get_json(cli, "get", "rayservice")["items"] == []
    assert get_json(cli, "get", "pods")["items"] == []
