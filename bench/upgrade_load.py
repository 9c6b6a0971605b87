"""Requests under change: a constant HTTP load (``hey``) on ``<name>-serve-svc`` while the
sample RayService is updated in place, upgraded to a new cluster, upgraded incrementally,
rolled back (A -> B -> A) and given a pending cluster that never gets ready.

For each scenario it prints the requests sent, non-2xx answers, connection errors, p50 and
p99 latency, the time from the new cluster answering on its own proxy to traffic reaching it
through the stable endpoint, and the scenario's total time. The goal is zero failed requests
of at least 2,000 in every scenario. It also compares the data path: the same unthrottled load
through ``<name>-serve-svc`` and straight at the head's Serve proxy (goal: ratio >= 0.95).

Usage: ``.venv/bin/python bench/upgrade_load.py`` (installs Debian's ``hey`` when missing).
Everything listens on loopback; the controller, clusters and fronts it starts are deleted and
stopped at the end, and the load is bounded in rate and time.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from rayservice.host.ports import next_free_port

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
RAYSERVICE = str(BIN / "rayservice")
NAME = "rayservice-sample"
MANGO = ["MANGO", 2]
RATE_WORKERS, RATE_PER_WORKER = 5, 10  # 50 requests per second in all
MIN_REQUESTS = 2000
DATA_PATH_SECONDS = 15
DATA_PATH_WORKERS = 8
SCENARIO_LIMIT_SECONDS = 420


@dataclass
class Load:
    """What ``hey`` reported for one run."""

    statuses: dict[int, int] = field(default_factory=dict)
    errors: int = 0
    p50: float = 0.0
    p99: float = 0.0
    rps: float = 0.0

    @property
    def sent(self) -> int:
        return sum(self.statuses.values()) + self.errors

    @property
    def non_2xx(self) -> int:
        return sum(n for code, n in self.statuses.items() if not 200 <= code < 300)


def parse_hey(report: str) -> Load:
    load = Load()
    section = ""
    for line in report.splitlines():
        text = line.strip()
        if text.endswith("distribution:"):
            section = text
            continue
        if match := re.match(r"\[(\d+)\]\s+(\d+) responses", text):
            load.statuses[int(match[1])] = int(match[2])
        elif section.startswith("Error") and (match := re.match(r"\[(\d+)\]", text)):
            load.errors += int(match[1])
        elif match := re.match(r"(50|99)% in ([\d.]+) secs", text):
            setattr(load, f"p{match[1]}", float(match[2]))
        elif match := re.match(r"Requests/sec:\s+([\d.]+)", text):
            load.rps = float(match[1])
    return load


def ensure_hey() -> str:
    found = shutil.which("hey")
    if found:
        return found
    print("installing hey (Debian package) ...", flush=True)
    subprocess.run(["apt-get", "install", "-y", "-q", "hey"], check=True, capture_output=True)
    return shutil.which("hey") or "hey"


@contextmanager
def hey_running(hey: str, url: str, args: list[str]) -> Iterator[Callable[[], Load]]:
    """``hey`` in the background; the yielded function stops it and returns its report."""
    command = [hey, *args, "-m", "POST", "-T", "application/json", "-d", json.dumps(MANGO), url]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    report: list[Load] = []

    def stop() -> Load:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
        out, _ = process.communicate(timeout=60)
        report.append(parse_hey(out))
        return report[0]

    try:
        yield stop
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


class Bench:
    def __init__(self, work: Path, hey: str) -> None:
        self.work = work
        self.hey = hey
        self.manifest = work / "samples" / "ray-service.sample.yaml"
        self.env = {**os.environ, "RAYSERVICE_HOME": str(work / "home")}
        self.env["RAYSERVICE_API_PORT"] = str(_free_port())
        self.api = f"http://127.0.0.1:{self.env['RAYSERVICE_API_PORT']}"
        self.serve_port = 0

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [RAYSERVICE, *args], env=self.env, capture_output=True, text=True,
            timeout=SCENARIO_LIMIT_SECONDS, check=check,
        )  # fmt: skip

    def edit(self, old: str, new: str) -> None:
        text = self.manifest.read_text()
        assert old in text, f"{old!r} not in the manifest"
        self.manifest.write_text(text.replace(old, new, 1))

    def status(self) -> dict[str, Any]:
        path = f"{self.api}/apis/ray.io/v1/namespaces/default/rayservices/{NAME}"
        response = httpx.get(path, timeout=10)
        if response.status_code != httpx.codes.OK:
            raise RuntimeError(f"GET {path}: HTTP {response.status_code}: {response.text}")
        result: dict[str, Any] = response.json()["status"]
        return result

    def cluster_name(self, which: str) -> str:
        return str(self.status()[f"{which}ServiceStatus"]["rayClusterName"])

    def head_proxy_port(self, cluster: str) -> int | None:
        record = self.work / "home" / "clusters" / cluster / "cluster.json"
        try:
            nodes = json.loads(record.read_text())["nodes"]
        except (OSError, ValueError, KeyError):
            return None
        return next((int(n["ports"]["serve_proxy"]) for n in nodes if n["role"] == "head"), None)

    def start(self) -> None:
        self.edit("spec:\n", "spec:\n  rayClusterDeletionDelaySeconds: 10\n")
        # room for a pending head that starts slowly on a busy machine; the scenario of a
        # pending cluster that never gets ready shortens it to 60 s
        self.edit("spec:\n", "spec:\n  pendingClusterTimeoutSeconds: 300\n")
        self.cli("start")
        self.cli("apply", "-f", str(self.manifest), "--wait", "--timeout", "300")
        services = json.loads(self.cli("get", "services", "-o", "json").stdout)["items"]
        [serve] = [s for s in services if s["metadata"]["name"] == f"{NAME}-serve-svc"]
        self.serve_port = int(serve["spec"]["ports"][0]["port"])

    def stop(self) -> None:
        self.cli("delete", "-f", str(self.manifest), check=False)
        self.cli("stop", check=False)

    # -- measurements -----------------------------------------------------------------------

    def data_path(self) -> None:
        head = self.head_proxy_port(self.cluster_name("active"))
        assert head is not None, "the active cluster's head proxy port is not on record"
        args = ["-z", f"{DATA_PATH_SECONDS}s", "-c", str(DATA_PATH_WORKERS)]
        results = {}
        for label, port in (("serve-svc (HAProxy)", self.serve_port), ("head proxy direct", head)):
            with hey_running(self.hey, f"http://127.0.0.1:{port}/fruit/", args) as stop:
                time.sleep(DATA_PATH_SECONDS + 1)
                results[label] = stop()
        print(f"\ndata path, unthrottled, {DATA_PATH_WORKERS} workers, {DATA_PATH_SECONDS} s each")
        for label, load in results.items():
            print(
                f"  {label:<20} {load.rps:8.1f} req/s  p50 {load.p50 * 1000:6.1f} ms"
                f"  p99 {load.p99 * 1000:6.1f} ms  failed {load.non_2xx + load.errors}"
            )
        svc, direct = results.values()
        print(f"  throughput ratio serve-svc / direct: {svc.rps / direct.rps:.3f} (goal >= 0.95)")

    def scenario(self, title: str, change: Callable[[], dict[str, float]]) -> None:
        url = f"http://127.0.0.1:{self.serve_port}/fruit/"
        args = ["-z", f"{SCENARIO_LIMIT_SECONDS}s", "-c", str(RATE_WORKERS)]
        args += ["-q", str(RATE_PER_WORKER)]
        started = time.monotonic()
        with hey_running(self.hey, url, args) as stop:
            timings = change()
            # hey paces a little under the asked rate: 10% more time keeps the count >= 2,000
            minimum = 1.1 * MIN_REQUESTS / (RATE_WORKERS * RATE_PER_WORKER)
            time.sleep(max(2.0, minimum - (time.monotonic() - started)))
            load = stop()
        print(f"\n{title}")
        print(
            f"  sent {load.sent}  non-2xx {load.non_2xx}  connection errors {load.errors}"
            f"  p50 {load.p50 * 1000:.1f} ms  p99 {load.p99 * 1000:.1f} ms"
        )
        for label, seconds in timings.items():
            print(f"  {label}: {seconds:.1f} s")

    def watch_answers(self, expected: str) -> Callable[[], dict[str, float]]:
        """Start timing an upgrade: when the new cluster first answers ``expected`` on its own
        head proxy, and when ``<name>-serve-svc`` first does. Returns a function that waits
        for the upgrade to end and gives the times."""
        started = time.monotonic()
        seen: dict[str, float] = {}
        done = threading.Event()
        old = self.cluster_name("active")

        def poll() -> None:
            with httpx.Client(timeout=5) as client:
                while not done.is_set():
                    try:
                        pending = self.cluster_name("pending")
                    except (RuntimeError, httpx.HTTPError) as e:  # say so, and keep watching
                        print(f"  (status unreadable: {e})", flush=True)
                        time.sleep(0.5)
                        continue
                    port = self.head_proxy_port(pending) if pending else None
                    if port and "ready" not in seen and _answers(client, port, expected):
                        seen["ready"] = time.monotonic() - started
                    if "traffic" not in seen and _answers(client, self.serve_port, expected):
                        seen["traffic"] = time.monotonic() - started
                    time.sleep(0.1)

        watcher = threading.Thread(target=poll, daemon=True)
        watcher.start()

        def finish() -> dict[str, float]:
            _wait(lambda: self.cluster_name("active") != old and not self.cluster_name("pending"))
            total = time.monotonic() - started
            _wait(lambda: "traffic" in seen, timeout=30)
            done.set()
            watcher.join(timeout=10)
            timings = {"upgrade total (apply to all traffic on the new cluster)": total}
            if "ready" in seen:
                timings["new cluster answering -> traffic on it"] = seen["traffic"] - seen["ready"]
            return timings

        return finish

    def in_place(self) -> dict[str, float]:
        started = time.monotonic()
        self.edit("price: 3", "price: 4")
        self.cli("apply", "-f", str(self.manifest), "--wait", "--timeout", "120")
        with httpx.Client(timeout=5) as client:
            _wait(lambda: _answers(client, self.serve_port, "8"))
        return {"apply to new answer": time.monotonic() - started}

    def new_cluster(self) -> dict[str, float]:
        self.edit('        num-cpus: "1"', '        num-cpus: "2"')
        self.edit("price: 4", "price: 5")
        finish = self.watch_answers("10")
        self.cli("apply", "-f", str(self.manifest))
        return finish()

    def incremental(self) -> dict[str, float]:
        self.edit(
            "spec:\n",
            "spec:\n  upgradeStrategy:\n    type: NewClusterWithIncrementalUpgrade\n"
            "    clusterUpgradeOptions:\n      maxSurgePercent: 50\n      stepSizePercent: 25\n"
            "      intervalSeconds: 3\n",
        )
        self.edit('        num-cpus: "2"', '        num-cpus: "1"')
        self.edit("price: 5", "price: 6")
        finish = self.watch_answers("12")
        self.cli("apply", "-f", str(self.manifest))
        return finish()

    def rollback(self) -> dict[str, float]:
        active = self.cluster_name("active")
        self.edit('        num-cpus: "1"', '        num-cpus: "2"')
        self.cli("apply", "-f", str(self.manifest))
        _wait(lambda: (self.status()["pendingServiceStatus"].get("trafficRoutedPercent") or 0) > 0)
        self.edit('        num-cpus: "2"', '        num-cpus: "1"')
        started = time.monotonic()
        self.cli("apply", "-f", str(self.manifest))
        _wait(lambda: not self.cluster_name("pending") and self.cluster_name("active") == active)
        back = time.monotonic() - started
        _wait(lambda: self._clusters() == [active])
        return {
            "revert to all traffic back": back,
            "revert to pending deleted": time.monotonic() - started,
        }

    def failing_pending(self) -> dict[str, float]:
        active = self.cluster_name("active")
        self.edit("import_path: fruit:app", "import_path: fruit:no_such_app")
        self.edit("pendingClusterTimeoutSeconds: 300", "pendingClusterTimeoutSeconds: 60")
        self.edit('        num-cpus: "1"', '        num-cpus: "2"')
        started = time.monotonic()
        result = self.cli(
            "apply", "-f", str(self.manifest), "--wait", "--timeout", "300", check=False
        )
        assert result.returncode != 0, "apply --wait should fail when the upgrade is given up"
        _wait(lambda: self._clusters() == [active])
        return {"apply to pending given up and deleted (timeout 60 s)": time.monotonic() - started}

    def _clusters(self) -> list[str]:
        items = json.loads(self.cli("get", "raycluster", "-o", "json").stdout)["items"]
        return sorted(i["metadata"]["name"] for i in items)


def _answers(client: httpx.Client, port: int, expected: str) -> bool:
    try:
        response = client.post(f"http://127.0.0.1:{port}/fruit/", json=MANGO)
    except httpx.HTTPError:
        return False
    return response.status_code == 200 and response.text.strip() == expected


def _wait(check: Callable[[], bool], timeout: float = SCENARIO_LIMIT_SECONDS) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except (httpx.HTTPError, KeyError):
            pass
        time.sleep(0.2)
    raise TimeoutError("the scenario did not reach its end state in time")


def _free_port() -> int:
    return next_free_port(18990, set())


def main() -> None:
    hey = ensure_hey()
    work = Path(tempfile.mkdtemp(prefix="rsu-"))
    shutil.copytree(REPO / "samples", work / "samples")
    bench = Bench(work, hey)
    try:
        bench.start()
        print(f"sample up; load {RATE_WORKERS * RATE_PER_WORKER} req/s on serve-svc per scenario")
        bench.data_path()
        bench.scenario("in-place user_config update (price 3 -> 4)", bench.in_place)
        bench.scenario("NewCluster upgrade (head num-cpus 1 -> 2, price 4 -> 5)", bench.new_cluster)
        bench.scenario(
            "incremental upgrade (step 25%, every 3 s, surge 50%; price 5 -> 6)", bench.incremental
        )
        bench.scenario("A -> B -> A rollback after traffic started moving", bench.rollback)
        bench.scenario(
            "pending cluster that never gets ready (bad import_path)", bench.failing_pending
        )
    finally:
        bench.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
