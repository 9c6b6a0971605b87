"""Faults on a running service, through the CLI and its stable endpoint.

A head without GCS fault tolerance killed with its whole process session: the service answers
again by itself (its workers start again with the new head, the Serve config goes out again),
no request waits long on a worker that can no longer serve (it fails fast: 503), and the events
say what happened.

A head with GCS fault tolerance on Redis (rayservice's own, as the sample names a Kubernetes
Service) killed under load: not one request fails, the head restarts and serves again, and
deleting the service stops the Redis and leaves nothing running.

One of the two HAProxy processes of the stable endpoint killed under load: no connection is
refused (a request in flight on the killed process may be cut), the process is started again
and a Warning says so. A replica whose health check
fails: SERVICE STATUS says Unhealthy, the ApplicationsHealthy condition names the app, a
Warning tells it, and all of it turns back once the check passes.
"""

from __future__ import annotations

import json
import os
import re
import signal
import time

import httpx
import pytest
import yaml

from rayservice.host.processes import kill_session
from tests.e2e.conftest import Cli
from tests.e2e.steps import get_json, service_port
from tests.helpers import eventually
from tests.load import ConstantLoad

pytestmark = pytest.mark.e2e
SAMPLE = "samples/ray-service.sample.yaml"
HA_SAMPLE = "samples/ray-service.high-availability.yaml"
HA_ANNOTATION_SAMPLE = "samples/ray-service.high-availability.annotation.yaml"
# no request hangs while the cluster comes back: not on a worker that lost its head, not in
# a proxy waiting for replicas that are still starting (the front answers 503 meanwhile)
SLOWEST_REQUEST = 5.0


def _head(cli: Cli, cluster: str) -> dict[str, int | str]:
    record = json.loads((cli.home / "clusters" / cluster / "cluster.json").read_text())
    head: dict[str, int | str] = next(n for n in record["nodes"] if n["role"] == "head")
    return head


def _head_pid(cli: Cli, cluster: str) -> int:
    return int(_head(cli, cluster)["pid"])


def _active_cluster(cli: Cli) -> str:
    status = get_json(cli, "get", "rayservice")["items"][0]["status"]
    return str(status["activeServiceStatus"]["rayClusterName"])


def _pods_ready(cli: Cli) -> bool:
    pods = get_json(cli, "get", "pods")["items"]
    return len(pods) == 3 and all(p["status"]["containerStatuses"][0]["ready"] for p in pods)


def test_a_lost_head_without_fault_tolerance_comes_back_and_says_so(cli: Cli) -> None:
    cli.run("start")
    cli.run("apply", "-f", SAMPLE, "--wait", "--timeout", "240")
    cluster = get_json(cli, "get", "rayservice")["items"][0]["status"]["activeServiceStatus"][
        "rayClusterName"
    ]
    url = f"http://127.0.0.1:{service_port(cli, 'rayservice-sample-serve-svc')}/fruit"

    os.killpg(_head_pid(cli, cluster), signal.SIGKILL)
    killed_at = time.monotonic()
    slowest = 0.0

    def answers() -> bool:
        nonlocal slowest
        started = time.monotonic()
        try:
            response = httpx.post(url, json=["MANGO", 2], timeout=30)
            ok = response.status_code == 200 and response.text == "6"
        except httpx.HTTPError:
            ok = False
        slowest = max(slowest, time.monotonic() - started)
        return ok

    eventually(answers, timeout=180, interval=0.2, message="the service answers again")
    back_after = time.monotonic() - killed_at
    assert slowest < SLOWEST_REQUEST, f"a request took {slowest:.1f} s"
    events = cli.run("describe", "rayservice", "rayservice-sample").stdout
    assert "NodeLost" in events and "without GCS fault tolerance" in events
    assert "ServingAgain" in events
    print(f"answering again {back_after:.1f} s after the head was killed")


@pytest.mark.parametrize(
    ("sample", "name"),
    [
        (HA_SAMPLE, "rayservice-ha"),
        # the same, written as the RayService guide's snippet: the annotation on the head's
        # template, RAY_REDIS_ADDRESS "redis:6379" and a redis-password rayStartParam
        (HA_ANNOTATION_SAMPLE, "rayservice-ha-seed"),
    ],
)
def test_a_lost_head_with_fault_tolerance_fails_no_request(
    cli: Cli, sample: str, name: str
) -> None:
    cli.run("start")
    cli.run("apply", "-f", sample, "--wait", "--timeout", "300")
    cluster = _active_cluster(cli)
    redis = json.loads((cli.home / "redis" / "redis.json").read_text())
    url = f"http://127.0.0.1:{service_port(cli, f'{name}-serve-svc')}/fruit"
    eventually(lambda: _pods_ready(cli), timeout=120, interval=1, message="every node serves")
    head = _head(cli, cluster)

    with ConstantLoad(url, ["MANGO", 2], rate=20, threads=4, max_seconds=120) as load:
        time.sleep(2)
        kill_session(int(head["pid"]))  # every process of the node, as when its pod dies
        eventually(
            lambda: _head(cli, cluster)["pid"] != head["pid"] and _pods_ready(cli),
            timeout=90,
            interval=1,
            message="the head restarted and every node serves again",
        )
        time.sleep(2)

    assert load.failures() == []
    assert len(load.outcomes) >= 200 and set(load.answers()) == {"6"}
    assert _active_cluster(cli) == cluster  # the same cluster: its state came back from Redis
    events = cli.run("describe", "rayservice", name).stdout
    assert "with GCS fault tolerance the workers keep serving" in events

    cli.run("delete", "-f", sample)  # waits until everything is gone
    assert not os.path.exists(f"/proc/{redis['pid']}"), "the Redis outlived its last cluster"


def _with_pulse(cli: Cli, healthy: bool) -> str:
    """The sample with a third app whose health check fails when ``healthy`` is false."""
    manifest = yaml.safe_load((cli.workdir / SAMPLE).read_text())
    serve_config = yaml.safe_load(manifest["spec"]["serveConfigV2"])
    serve_config["applications"].append(
        {
            "name": "pulse_app",
            "import_path": "pulse:app",
            "route_prefix": "/pulse",
            "runtime_env": {"working_dir": "./apps"},
            "deployments": [
                {
                    "name": "Pulse",
                    "num_replicas": 1,
                    "health_check_period_s": 1,
                    "health_check_timeout_s": 1,
                    "user_config": {"healthy": healthy},
                    "ray_actor_options": {"num_cpus": 0.1},
                }
            ],
        }
    )
    manifest["spec"]["serveConfigV2"] = yaml.safe_dump(serve_config)
    path = cli.workdir / "samples" / "ray-service.pulse.yaml"
    path.write_text(yaml.safe_dump(manifest))
    return str(path)


def _service_state(cli: Cli) -> tuple[str, dict[str, str]]:
    status = get_json(cli, "get", "rayservice")["items"][0]["status"]
    health = next(c for c in status["conditions"] if c["type"] == "ApplicationsHealthy")
    return status["serviceStatus"], health


def _wait_for_service_state(cli: Cli, state: str) -> None:
    eventually(
        lambda: _service_state(cli)[0] == state,
        timeout=180,
        interval=0.5,
        message=f"SERVICE STATUS says {state}",
    )


def _front_pids(cli: Cli) -> list[int]:
    folder = cli.home / "fronts" / "default.rayservice-sample"
    records = [folder / "front.json", folder / "twin" / "front.json"]
    return [int(json.loads(r.read_text())["pid"]) for r in records if r.exists()]


def test_a_killed_front_process_and_a_failing_health_check_on_one_service(cli: Cli) -> None:
    cli.run("start")
    cli.run("apply", "-f", _with_pulse(cli, healthy=True), "--wait", "--timeout", "240")
    assert _service_state(cli)[0] == "Running"

    # one of the front's two HAProxy processes killed: the other takes every connection
    url = f"http://127.0.0.1:{service_port(cli, 'rayservice-sample-serve-svc')}/fruit"
    first, twin = _front_pids(cli)
    with ConstantLoad(url, ["MANGO", 2], rate=20, threads=4, max_seconds=60) as load:
        time.sleep(2)
        os.killpg(first, signal.SIGKILL)
        eventually(
            lambda: len(_front_pids(cli)) == 2 and _front_pids(cli)[0] != first,
            timeout=30,
            interval=0.5,
            message="the killed HAProxy is started again",
        )
        time.sleep(2)
    # no connection is refused; a request in flight on the killed process may be cut
    failures = load.failures()
    assert not [f for f in failures if "refused" in f.body.lower()], failures
    assert len(failures) <= 4 and len(load.outcomes) >= 50, failures  # one per load thread
    assert _front_pids(cli)[1] == twin
    assert "FrontProcessLost" in cli.run("describe", "rayservice", "rayservice-sample").stdout

    # a replica whose health check fails

    cli.run("apply", "-f", _with_pulse(cli, healthy=False))
    _wait_for_service_state(cli, "Unhealthy")
    health = _service_state(cli)[1]
    assert (health["status"], health["reason"]) == ("False", "ApplicationFailed")
    assert "pulse_app" in health["message"]
    described = cli.run("describe", "rayservice", "rayservice-sample").stdout
    assert re.search(r"Warning\s+(Application|Deployment)Unhealthy", described), described
    assert "fruit_app/MangoStand: every 10s, timeout 30s" in described
    assert "pulse_app/Pulse: every 1s, timeout 1s" in described

    cli.run("apply", "-f", _with_pulse(cli, healthy=True))
    _wait_for_service_state(cli, "Running")
    assert _service_state(cli)[1]["status"] == "True"
