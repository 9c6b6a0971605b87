"""Faults on a running service, through the CLI and its stable endpoint.

A head without GCS fault tolerance killed with its whole process session: the service answers
again by itself (its workers start again with the new head, the Serve config goes out again),
no request waits long on a worker that can no longer serve (it fails fast: 503), and the events
say what happened.
"""

from __future__ import annotations

import json
import os
import signal
import time

import httpx
import pytest

from tests.e2e.conftest import Cli
from tests.e2e.steps import get_json, service_port
from tests.helpers import eventually

pytestmark = pytest.mark.e2e
SAMPLE = "samples/ray-service.sample.yaml"
# a request must never hang on a worker that lost its head: failures come fast (a request
# that succeeds may wait for the replicas to come up again, as Serve's proxy queues it)
SLOWEST_FAILURE = 5.0


def _head_pid(cli: Cli, cluster: str) -> int:
    record = json.loads((cli.home / "clusters" / cluster / "cluster.json").read_text())
    return int(next(n for n in record["nodes"] if n["role"] == "head")["pid"])


def test_a_lost_head_without_fault_tolerance_comes_back_and_says_so(cli: Cli) -> None:
    cli.run("start")
    cli.run("apply", "-f", SAMPLE, "--wait", "--timeout", "240")
    cluster = get_json(cli, "get", "rayservice")["items"][0]["status"]["activeServiceStatus"][
        "rayClusterName"
    ]
    url = f"http://127.0.0.1:{service_port(cli, 'rayservice-sample-serve-svc')}/fruit"

    os.killpg(_head_pid(cli, cluster), signal.SIGKILL)
    killed_at = time.monotonic()
    slowest_failure = 0.0

    def answers() -> bool:
        nonlocal slowest_failure
        started = time.monotonic()
        try:
            response = httpx.post(url, json=["MANGO", 2], timeout=30)
            ok = response.status_code == 200 and response.text == "6"
        except httpx.HTTPError:
            ok = False
        if not ok:
            slowest_failure = max(slowest_failure, time.monotonic() - started)
        return ok

    eventually(answers, timeout=180, interval=0.2, message="the service answers again")
    back_after = time.monotonic() - killed_at
    assert slowest_failure < SLOWEST_FAILURE, f"a failed request took {slowest_failure:.1f} s"
    events = cli.run("describe", "rayservice", "rayservice-sample").stdout
    assert "NodeLost" in events and "without GCS fault tolerance" in events
    print(f"answering again {back_after:.1f} s after the head was killed")
