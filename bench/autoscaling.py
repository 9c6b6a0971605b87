"""Autoscaling times: how long from a load burst to a new worker serving, and from the end of
the load to the idle worker's removal, for ``samples/ray-service.autoscaling.yaml``.

The sample runs Ray's own autoscaler with short delays (Serve: upscale 2 s, downscale 10 s,
load averaged over 5 s; the autoscaler: idle 15 s, checked every 5 s). Each run sends a
bounded load (25 requests/s of 0.2 s each, at most 240 s) and prints:

- scale-up: from the first request of the burst to the second worker registered with Ray, and
  to its Serve proxy answering (the pod ready 1/1, so the front sends it traffic);
- scale-down: from the last request to the idle worker removed;
- requests sent and failed during the burst (goal: 0 failed).

Usage: ``.venv/bin/python bench/autoscaling.py [--runs N]``. Everything listens on loopback; the
controller and the cluster it starts are deleted and stopped at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from rayservice.host.ports import next_free_port

REPO = Path(__file__).resolve().parents[1]
RAYSERVICE = str(Path(sys.executable).parent / "rayservice")
NAME = "rayservice-autoscaling"
RATE = 25.0  # requests per second, all threads together
THREADS = 8
LOAD_LIMIT_SECONDS = 240.0
WAIT_LIMIT_SECONDS = 240.0


class Burst:
    """A constant-rate load in threads, counting sent and failed requests."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.sent = self.failed = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(THREADS)]

    def start(self) -> float:
        for thread in self._threads:
            thread.start()
        return time.monotonic()

    def stop(self) -> float:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)
        return time.monotonic()

    def _run(self) -> None:
        period = THREADS / RATE
        next_at = time.monotonic()
        deadline = next_at + LOAD_LIMIT_SECONDS
        with httpx.Client(timeout=30) as client:
            while not self._stop.wait(max(0.0, next_at - time.monotonic())):
                if time.monotonic() >= deadline:
                    return
                next_at += period
                try:
                    ok = client.get(self.url).status_code == httpx.codes.OK
                except httpx.HTTPError:
                    ok = False
                with self._lock:
                    self.sent += 1
                    self.failed += not ok


class Run:
    def __init__(self, work: Path) -> None:
        self.manifest = work / "samples" / "ray-service.autoscaling.yaml"
        port = next_free_port(18991, set())
        self.env = {**os.environ, "RAYSERVICE_HOME": str(work / "home")}
        self.env["RAYSERVICE_API_PORT"] = str(port)

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [RAYSERVICE, *args], env=self.env, capture_output=True, text=True,
            timeout=WAIT_LIMIT_SECONDS + 60, check=check,
        )  # fmt: skip

    def delete(self) -> None:
        """Delete the service and wait until its nodes are stopped (the controller does it)."""
        self.cli("delete", "-f", str(self.manifest), check=False)
        _seconds_until(
            lambda: not json.loads(self.cli("get", "pods", "-o", "json").stdout)["items"],
            time.monotonic(),
        )

    def workers(self) -> list[dict[str, Any]]:
        pods = json.loads(self.cli("get", "pods", "-o", "json").stdout)["items"]
        return [p for p in pods if p["metadata"]["labels"]["ray.io/node-type"] == "worker"]

    def measure(self) -> dict[str, float]:
        self.cli("apply", "-f", str(self.manifest), "--wait", "--timeout", "300")
        services = json.loads(self.cli("get", "services", "-o", "json").stdout)["items"]
        [serve] = [s for s in services if s["metadata"]["name"] == f"{NAME}-serve-svc"]
        burst = Burst(f"http://127.0.0.1:{serve['spec']['ports'][0]['port']}/")
        started = burst.start()
        registered = _seconds_until(lambda: _count(self.workers(), "Running") == 2, started)
        serving = _seconds_until(lambda: _count(self.workers(), "ready") == 2, started)
        stopped = burst.stop()
        removed = _seconds_until(lambda: len(self.workers()) == 1, stopped)
        self.delete()
        return {
            "second worker registered": registered,
            "second worker serving": serving,
            "idle worker removed": removed,
            "requests sent": burst.sent,
            "requests failed": burst.failed,
        }


def _count(workers: list[dict[str, Any]], state: str) -> int:
    """Workers that run (``Running``) or whose Serve proxy answers (``ready``)."""
    if state == "ready":
        return sum(p["status"]["containerStatuses"][0]["ready"] for p in workers)
    return sum(p["status"]["phase"] == state for p in workers)


def _seconds_until(check: Callable[[], bool], since: float) -> float:
    deadline = time.monotonic() + WAIT_LIMIT_SECONDS
    while time.monotonic() < deadline:
        if check():
            return time.monotonic() - since
        time.sleep(0.5)
    raise TimeoutError("the cluster did not scale in time")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1)
    runs = parser.parse_args().runs
    work = Path(tempfile.mkdtemp(prefix="rsa-"))
    shutil.copytree(REPO / "samples", work / "samples")
    run = Run(work)
    try:
        run.cli("start")
        for index in range(runs):
            results = run.measure()
            print(f"run {index + 1}:")
            for label, value in results.items():
                shown = f"{value:7.1f} s" if isinstance(value, float) else f"{value:7d}"
                print(f"  {label:<26}{shown}")
    finally:
        run.delete()
        run.cli("stop", check=False)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
