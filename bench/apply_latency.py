"""Apply latency: time from ``rayservice apply`` to the first 200 from ``<name>-serve-svc``,
next to a floor measured in the same run.

The floor is the same cluster and Serve config brought up by hand: ``ray start`` for the head,
``ray start`` for the worker as soon as the head's GCS accepts connections, one PUT of the
Serve config to the dashboard, then polling the head's Serve proxy for a 200. Everything
rayservice adds on top (admission, the store, the control loop, status, HAProxy) shows up as
the ratio between the two; the goal is a ratio of at most 1.15.

Usage: ``.venv/bin/python bench/apply_latency.py [--runs N]``. Every process the benchmark
starts is stopped by pid (process session) before it exits; everything listens on loopback.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import yaml

from rayservice.api.packaging import resolve_working_dirs
from rayservice.host.ports import next_free_port
from rayservice.host.processes import stop_sessions
from rayservice.planner.readiness import deployable_config

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "samples" / "ray-service.sample.yaml"
BIN = Path(sys.executable).parent
RAY = str(BIN / "ray")
RAYSERVICE = str(BIN / "rayservice")
NODE_IP = "127.0.0.2"
PROBE_BODY = ["MANGO", 2]
PROBE_ANSWER = "6"
DEADLINE_SECONDS = 180.0
CONTROLLER_SETTLE_SECONDS = 3.0  # a controller is long up when a user applies: not timed
PROBE_TIMEOUT = 30.0  # a request sent while replicas start waits for them: let it


def first_answer(url: str, started: float) -> float:
    """Poll ``url`` until it answers the fruit probe correctly; seconds since ``started``."""
    deadline = started + DEADLINE_SECONDS
    with httpx.Client(timeout=PROBE_TIMEOUT) as client:
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                response = client.post(url, json=PROBE_BODY)
                if response.status_code == 200 and response.text.strip() == PROBE_ANSWER:
                    return time.monotonic() - started
            time.sleep(0.05)
    raise TimeoutError(f"{url} did not answer {PROBE_ANSWER} within {DEADLINE_SECONDS:.0f} s")


def wait_until(check: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise TimeoutError(f"timed out waiting for {what}")


def accepts(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def free_ports(count: int, start: int = 33000) -> list[int]:
    taken: set[int] = set()
    for _ in range(count):
        taken.add(next_free_port(start, taken))
    return sorted(taken)


def stop_session(process: subprocess.Popen[bytes]) -> None:
    """Stop a node's whole process session: ``ray start --block`` and every Ray process it
    started share it (the same stop the local provider uses)."""
    stop_sessions([process.pid], grace_seconds=15)
    process.wait(timeout=15)


def floor_config(work: Path, proxy_port: int) -> dict[str, Any]:
    """The sample's Serve config exactly as rayservice deploys it (packaged working_dir,
    loopback proxy on ``proxy_port``), built without any of rayservice's control plane."""
    manifest = yaml.safe_load(SAMPLE.read_text())
    raw = yaml.safe_load(manifest["spec"]["serveConfigV2"])
    packaged = resolve_working_dirs(
        raw, SAMPLE.parent, work / "packages", str(SAMPLE), may_read_local_paths=True
    )
    return deployable_config(packaged, proxy_port)


@contextlib.contextmanager
def hand_cluster(work: Path) -> Iterator[tuple[int, str]]:
    """Head and one worker started with ``ray start``; yields the dashboard port and the
    cluster's auth token."""
    gcs, dashboard, client, worker_proxy = free_ports(4)
    token = secrets.token_hex(16)
    env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token}
    env["RAY_USAGE_STATS_ENABLED"] = "0"
    common = ["--block", "--disable-usage-stats", f"--node-ip-address={NODE_IP}", "--num-cpus=1"]
    common.append(f"--memory={2 * 1024**3}")
    nodes: list[subprocess.Popen[bytes]] = []
    try:
        head_args = [
            "--head", f"--port={gcs}", "--dashboard-host=127.0.0.1",
            f"--dashboard-port={dashboard}", f"--ray-client-server-port={client}",
            f"--temp-dir={work / 'head'}",
        ]  # fmt: skip
        nodes.append(_start_node([RAY, "start", *common, *head_args], env, work / "head.log"))
        wait_until(lambda: accepts(NODE_IP, gcs), "the head's GCS")
        worker_env = {**env, "RAY_SERVE_WORKER_PROXY_HTTP_PORT": str(worker_proxy)}
        worker_args = [f"--address={NODE_IP}:{gcs}", f"--temp-dir={work / 'worker'}"]
        nodes.append(
            _start_node([RAY, "start", *common, *worker_args], worker_env, work / "worker.log")
        )
        yield dashboard, token
    finally:
        for node in reversed(nodes):
            stop_session(node)


def _start_node(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            args, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip


def measure_floor(work: Path) -> float:
    started = time.monotonic()
    config_port = free_ports(1, 34000)[0]
    config = floor_config(work, config_port)
    with hand_cluster(work) as (dashboard, token):
        base = f"http://127.0.0.1:{dashboard}"
        headers = {"x-ray-authorization": f"Bearer {token}"}
        wait_until(lambda: _dashboard_up(base, headers), "the dashboard", timeout=120)
        dashboard_up = time.monotonic() - started
        response = httpx.put(
            f"{base}/api/serve/applications/", json=config, headers=headers, timeout=30
        )
        response.raise_for_status()
        accepted = time.monotonic() - started
        print(f"  floor: dashboard up {dashboard_up:.2f} s, config accepted {accepted:.2f} s")
        return first_answer(f"http://127.0.0.1:{config_port}/fruit/", started)


def _dashboard_up(base: str, headers: dict[str, str]) -> bool:
    with contextlib.suppress(httpx.HTTPError):
        return httpx.get(f"{base}/api/version", headers=headers, timeout=1).status_code == 200
    return False


def measure_rayservice(work: Path) -> float:
    home = work / "home"
    env = {
        **os.environ,
        "RAYSERVICE_HOME": str(home),
        "RAYSERVICE_API_PORT": str(free_ports(1, 18950)[0]),
    }

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [RAYSERVICE, *args], env=env, capture_output=True, text=True, timeout=300,
            check=True,
        )  # fmt: skip

    cli("start")
    time.sleep(CONTROLLER_SETTLE_SECONDS)
    try:
        started = time.monotonic()
        cli("apply", "-f", str(SAMPLE))
        print(f"  rayservice: apply returned {time.monotonic() - started:.2f} s")
        port = _serve_svc_port(cli)
        return first_answer(f"http://127.0.0.1:{port}/fruit/", started)
    finally:
        subprocess.run([RAYSERVICE, "delete", "-f", str(SAMPLE)], env=env, timeout=300)
        subprocess.run([RAYSERVICE, "stop"], env=env, timeout=60)


def _serve_svc_port(cli: Callable[..., subprocess.CompletedProcess[str]]) -> int:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        result = cli("get", "services", "-o", "json")
        for item in json.loads(result.stdout)["items"]:
            if item["metadata"]["name"] == "rayservice-sample-serve-svc":
                return int(item["spec"]["ports"][0]["port"])
        time.sleep(0.1)
    raise TimeoutError("rayservice-sample-serve-svc never appeared")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2, help="measurements of each (default 2)")
    runs = parser.parse_args().runs
    floors: list[float] = []
    ours: list[float] = []
    for run in range(1, runs + 1):
        for label, measure, results in (
            ("floor (ray start + PUT)", measure_floor, floors),
            ("rayservice apply", measure_rayservice, ours),
        ):
            work = Path(tempfile.mkdtemp(prefix="rsb-"))
            try:
                seconds = measure(work)
            finally:
                shutil.rmtree(work, ignore_errors=True)
            results.append(seconds)
            print(f"run {run}: {label:<24} first 200 after {seconds:6.2f} s", flush=True)
    floor, apply = statistics.median(floors), statistics.median(ours)
    print(f"median floor            {floor:6.2f} s")
    print(f"median rayservice apply {apply:6.2f} s")
    print(f"ratio                   {apply / floor:6.3f}  (goal <= 1.15)")


if __name__ == "__main__":
    main()
