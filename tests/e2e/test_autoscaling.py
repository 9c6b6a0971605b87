"""Nodes that follow the load, through the CLI: ``samples/ray-service.autoscaling.yaml``.

Ray's own autoscaler runs beside the cluster. The head offers no CPU and every Busy replica needs
a whole one, so the autoscaler starts the first worker as soon as the app is deployed; a burst of
load makes Serve ask for a second replica and the autoscaler adds the second worker; once the
load stops Serve drops back to one replica and the idle worker is removed (the sample's delays
are short: upscale 2 s, downscale 10 s, idle 15 s). Not one request fails throughout.
"""

from __future__ import annotations

import re

import pytest

from tests.e2e.conftest import Cli
from tests.e2e.steps import get_json, service_port
from tests.helpers import eventually
from tests.load import ConstantLoad

pytestmark = pytest.mark.e2e
SAMPLE = "samples/ray-service.autoscaling.yaml"
NAME = "rayservice-autoscaling"


def ready_workers(cli: Cli) -> int:
    pods = get_json(cli, "get", "pods")["items"]
    return sum(
        1
        for pod in pods
        if pod["metadata"]["labels"]["ray.io/node-type"] == "worker"
        and pod["status"]["phase"] == "Running"
    )


def workers(cli: Cli) -> int:
    pods = get_json(cli, "get", "pods")["items"]
    return sum(1 for pod in pods if pod["metadata"]["labels"]["ray.io/node-type"] == "worker")


def test_the_autoscaler_adds_a_worker_under_load_and_removes_it_when_idle(cli: Cli) -> None:
    cli.run("start")

    cli.run("apply", "-f", SAMPLE, "--wait", "--timeout", "300")

    assert workers(cli) == 1, "the first replica's worker, started by the autoscaler"
    port = service_port(cli, f"{NAME}-serve-svc")
    url = f"http://127.0.0.1:{port}/"
    with ConstantLoad(url, None, rate=25, threads=8, max_seconds=240) as load:
        eventually(lambda: ready_workers(cli) == 2, timeout=150, interval=1,
                   message="a second worker for the second replica")  # fmt: skip
        cluster = get_json(cli, "get", "rayservice", NAME)["status"]["activeServiceStatus"]
        served = load.answers()["done"]
        eventually(lambda: load.answers()["done"] >= served + 50, timeout=30,
                   message="requests go on after the scale-up")  # fmt: skip
    assert load.failures() == [], load.failures()[:3]
    eventually(lambda: workers(cli) == 1, timeout=150, interval=1,
               message="the idle worker is removed")  # fmt: skip
    status = get_json(cli, "get", "raycluster", cluster["rayClusterName"])["status"]
    assert (status["desiredWorkerReplicas"], status["availableWorkerReplicas"]) == (1, 1)
    page = cli.run("describe", "raycluster", cluster["rayClusterName"]).stdout
    assert "Autoscaler:\n  State:          running" in page
    assert "Last Request:   workers: small-group 1" in page
    assert "  Ray Status:" in page and "Pending Demands:" in page, page
    events = cli.run("describe", "rayservice", NAME).stdout
    assert "Ray's autoscaler asks for 2 worker(s) of group small-group (has 1)" in events
    assert re.search(
        r"removing rayservice-autoscaling-\S+-worker-\S+ as Ray's autoscaler asks", events
    )
    cli.run("delete", "-f", SAMPLE)
