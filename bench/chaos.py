"""Faults under load: a constant HTTP load on ``<name>-serve-svc`` while one fault after another
is injected, each measured on its own, then a random sequence of them (fixed seed).

The service is ``samples/ray-service.high-availability.yaml`` (GCS fault tolerance on the Redis
rayservice runs, replicas on two workers); the head kill without fault tolerance and the
machine-wide kill ("as after a reboot") run on ``samples/ray-service.sample.yaml`` afterwards.
Faults, each the SIGKILL of a whole process session as when a pod dies: the head's, a worker's,
one of the two HAProxy processes of the front, the managed Redis; and the controller (then
started again).

For each fault it prints: requests, failed, the longest request, the time from the fault until
the service answers again (0 when nothing failed), until it is Ready again (every pod ready,
SERVICE STATUS Running), and leftovers (node, HAProxy and Redis processes beyond what the
records name). After the run it checks that no process of the run is left and that the stored
spec is the one applied.

Usage: ``.venv/bin/python bench/chaos.py [--sequence N] [--seed S] [--only TEXT]
[--ha-sample FILE]``. Everything listens on loopback; the load is bounded (LOAD_RATE requests
per second, at most SCENARIO_LIMIT seconds a fault) and every process the run started is
stopped by pid at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

from rayservice.host.ports import next_free_port
from rayservice.host.processes import kill_session
from rayservice.providers.local import runtime_root

REPO = Path(__file__).resolve().parents[1]
RAYSERVICE = str(Path(sys.executable).parent / "rayservice")
HA_SAMPLE = "ray-service.high-availability.yaml"
PLAIN_SAMPLE = "ray-service.sample.yaml"
MANGO = ["MANGO", 2]
LOAD_RATE = 40.0  # requests per second, all threads together
LOAD_THREADS = 8
REQUEST_TIMEOUT = 30.0
MIN_SECONDS = 50.0  # 2,000 requests at LOAD_RATE
SETTLE_SECONDS = 3.0
SCENARIO_LIMIT = 240.0


@dataclass
class Outcome:
    sent_at: float  # monotonic
    seconds: float
    ok: bool


@dataclass
class Load:
    """A constant POST load from a few threads, keeping every request's outcome."""

    url: str
    outcomes: list[Outcome] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(LOAD_THREADS)
        ]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=REQUEST_TIMEOUT + 5)

    def _run(self, index: int) -> None:
        period = LOAD_THREADS / LOAD_RATE
        next_at = time.monotonic() + index * period / LOAD_THREADS
        deadline = time.monotonic() + SCENARIO_LIMIT + MIN_SECONDS
        with httpx.Client(timeout=REQUEST_TIMEOUT) as client:
            while not self._stop.is_set() and time.monotonic() < deadline:
                delay = next_at - time.monotonic()
                if delay > 0 and self._stop.wait(delay):
                    break
                sent = time.monotonic()
                try:
                    response = client.post(self.url, json=MANGO)
                    ok = response.status_code == 200 and response.text == "6"
                except httpx.HTTPError:
                    ok = False
                with self._lock:
                    self.outcomes.append(Outcome(sent, time.monotonic() - sent, ok))
                next_at += period


@dataclass
class Result:
    fault: str
    requests: int
    failed: int
    longest: float
    answering_again: float
    ready_again: float
    leftovers: int


class Chaos:
    def __init__(self, work: Path) -> None:
        self.work = work
        self.home = work / "home"
        port = next_free_port(18990, set())
        self.env = {**os.environ, "RAYSERVICE_HOME": str(self.home)}
        self.env["RAYSERVICE_API_PORT"] = str(port)
        self.api = f"http://127.0.0.1:{port}"
        self.name = ""
        self.manifest = Path()

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [RAYSERVICE, *args], env=self.env, capture_output=True, text=True,
            timeout=SCENARIO_LIMIT + 120, check=check,
        )  # fmt: skip

    def apply(self, sample: str) -> None:
        self.manifest = self.work / "samples" / sample
        self.name = self.service()["metadata"]["name"]
        self.cli("apply", "-f", str(self.manifest), "--wait", "--timeout", "300")
        _wait(self.ready)

    def service(self) -> dict[str, Any]:
        """The RayService of the applied file (its first document; a Secret may follow)."""
        document: dict[str, Any] = next(yaml.safe_load_all(self.manifest.read_text()))
        return document

    def delete(self) -> None:
        self.cli("delete", "-f", str(self.manifest), check=False)

    # -- what is running -------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        path = f"{self.api}/apis/ray.io/v1/namespaces/default/rayservices/{self.name}"
        response = httpx.get(path, timeout=5)
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    def cluster_record(self) -> dict[str, Any]:
        cluster = self.status()["status"]["activeServiceStatus"]["rayClusterName"]
        record: dict[str, Any] = json.loads(
            (self.home / "clusters" / cluster / "cluster.json").read_text()
        )
        return record

    def ready(self) -> bool:
        try:
            status = self.status()["status"]
            pods = json.loads(self.cli("get", "pods", "-o", "json").stdout)["items"]
        except (httpx.HTTPError, KeyError, subprocess.CalledProcessError):
            return False
        nodes = self.cluster_record()["nodes"]
        ready = [p for p in pods if p["status"]["containerStatuses"][0]["ready"]]
        return (
            status.get("serviceStatus") == "Running"
            and len(ready) >= len(nodes)
            and all(_alive(int(n["pid"])) for n in nodes)  # a killed node runs again
            and len(self.front_pids()) == 2
            and all(_alive(pid) for pid in self.front_pids())
            and _alive(_controller_pid(self.home))
            and self.redis_running()
        )

    def redis_running(self) -> bool:
        """The managed Redis runs, where the service uses it."""
        record = self.home / "redis" / "redis.json"
        if not record.exists():
            return True
        return _alive(int(json.loads(record.read_text())["pid"]))

    def serve_url(self) -> str:
        services = json.loads(self.cli("get", "services", "-o", "json").stdout)["items"]
        [serve] = [s for s in services if s["metadata"]["name"] == f"{self.name}-serve-svc"]
        return f"http://127.0.0.1:{serve['spec']['ports'][0]['port']}/fruit"

    def front_pids(self) -> list[int]:
        folder = self.home / "fronts" / f"default.{self.name}"
        records = [folder / "front.json", folder / "twin" / "front.json"]
        return [int(json.loads(r.read_text())["pid"]) for r in records if r.exists()]

    def leftovers(self) -> int:
        """Node, HAProxy and Redis processes beyond the ones the records name."""
        expected = len(self.cluster_record()["nodes"]) + len(self.front_pids())
        expected += 1 if (self.home / "redis" / "redis.json").exists() else 0
        found = [
            pid
            for pid in _processes_mentioning(str(self.home), str(runtime_root(self.home)))
            if _is_session_leader(pid) and pid != _controller_pid(self.home)
        ]
        return max(0, len(found) - expected)

    # -- faults ----------------------------------------------------------------------------

    def kill_head(self) -> None:
        head = next(n for n in self.cluster_record()["nodes"] if n["role"] == "head")
        kill_session(int(head["pid"]))  # every process of the node, as when its pod dies

    def kill_worker(self) -> None:
        worker = next(n for n in self.cluster_record()["nodes"] if n["role"] == "worker")
        kill_session(int(worker["pid"]))

    def kill_front_process(self) -> None:
        kill_session(self.front_pids()[0])

    def kill_controller(self) -> None:
        os.kill(_controller_pid(self.home), signal.SIGKILL)
        time.sleep(1)
        self.cli("start")

    def kill_redis(self) -> None:
        record = json.loads((self.home / "redis" / "redis.json").read_text())
        kill_session(int(record["pid"]))

    def kill_everything(self) -> None:
        """As after a reboot: every process of the home, then ``rayservice start``."""
        pids = _processes_mentioning(str(self.home), str(runtime_root(self.home)))
        _kill([_controller_pid(self.home), *pids])
        time.sleep(1)
        self.cli("start")

    def measure(self, title: str, fault: Callable[[], None]) -> Result:
        load = Load(self.serve_url())
        load.start()
        time.sleep(SETTLE_SECONDS)
        began = time.monotonic()
        fault()
        _wait(self.ready, timeout=SCENARIO_LIMIT)
        ready_again = time.monotonic() - began
        time.sleep(max(SETTLE_SECONDS, MIN_SECONDS - (time.monotonic() - began)))
        load.stop()
        outcomes = sorted(load.outcomes, key=lambda o: o.sent_at)
        failed = [o for o in outcomes if not o.ok]
        answering = 0.0
        if failed:
            after = [o for o in outcomes if o.ok and o.sent_at > failed[-1].sent_at]
            answering = (after[0].sent_at + after[0].seconds - began) if after else float("inf")
        result = Result(
            fault=title,
            requests=len(outcomes),
            failed=len(failed),
            longest=max((o.seconds for o in outcomes), default=0.0),
            answering_again=answering,
            ready_again=ready_again,
            leftovers=self.leftovers(),
        )
        _print_row(result)
        return result


def _wait(check: Callable[[], bool], timeout: float = SCENARIO_LIMIT) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except (httpx.HTTPError, KeyError, OSError, ValueError):
            pass
        time.sleep(0.5)
    raise TimeoutError("the service did not get ready again in time")


def _kill(pids: list[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            if pid:
                os.kill(pid, signal.SIGKILL)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return pid > 0 and state != "Z"


def _controller_pid(home: Path) -> int:
    try:
        return int((home / "controller.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 0


def _processes_mentioning(*markers: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (
                (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8", "replace")
            )
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z" and any(marker in cmdline for marker in markers):
            found.append(int(entry.name))
    return found


def _is_session_leader(pid: int) -> bool:
    try:
        return os.getsid(pid) == pid
    except ProcessLookupError:
        return False


HEADER = (
    f"{'fault':<44} {'requests':>8} {'failed':>6} {'longest':>8} "
    f"{'answering':>9} {'ready':>7} {'leftover':>8}"
)


def _print_row(result: Result) -> None:
    answering = (
        "never" if result.answering_again == float("inf") else f"{result.answering_again:.1f}s"
    )
    print(
        f"{result.fault:<44} {result.requests:>8} {result.failed:>6} {result.longest:>7.2f}s "
        f"{answering:>9} {result.ready_again:>6.1f}s {result.leftovers:>8}",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sequence", type=int, default=4, help="random faults in a row")
    parser.add_argument("--seed", type=int, default=8)
    parser.add_argument(
        "--only", default="", help="run only the faults whose title contains this text"
    )
    parser.add_argument(
        "--ha-sample", default=HA_SAMPLE, help="the fault-tolerant manifest, from samples/"
    )
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="rsc-"))
    shutil.copytree(REPO / "samples", work / "samples")
    chaos = Chaos(work)
    faults: dict[str, Callable[[], None]] = {
        "head killed (GCS fault tolerance on Redis)": chaos.kill_head,
        "worker killed": chaos.kill_worker,
        "one HAProxy process of the front killed": chaos.kill_front_process,
        "controller killed, then started again": chaos.kill_controller,
        "managed Redis killed": chaos.kill_redis,
    }
    applied: dict[str, Any] = {}
    try:
        chaos.cli("start")
        chaos.apply(args.ha_sample)
        applied = chaos.service()["spec"]
        print(f"{args.ha_sample} up; {LOAD_RATE:.0f} req/s on its serve-svc during each fault\n")
        print(HEADER)
        for title, fault in faults.items():
            if args.only in title:
                chaos.measure(title, fault)
        rng = random.Random(args.seed)
        for step in range(args.sequence if not args.only else 0):
            title = rng.choice(sorted(faults))
            chaos.measure(f"random {step + 1}/{args.sequence}: {title}"[:44], faults[title])
        same = chaos.status()["spec"]["rayClusterConfig"] == applied["rayClusterConfig"]
        print(f"\nstored rayClusterConfig equals the applied one: {same}")
        chaos.delete()
        plain = {
            "head killed (no fault tolerance)": chaos.kill_head,
            "everything killed, then rayservice start": chaos.kill_everything,
        }
        plain = {title: fault for title, fault in plain.items() if args.only in title}
        if plain:
            chaos.apply(PLAIN_SAMPLE)
            print(f"\n{PLAIN_SAMPLE} up (no GCS fault tolerance)\n")
            print(HEADER)
            for title, fault in plain.items():
                chaos.measure(title, fault)
            chaos.delete()
    finally:
        chaos.cli("delete", "-f", str(chaos.manifest), check=False)
        chaos.cli("stop", check=False)
        left = _processes_mentioning(str(chaos.home), str(runtime_root(chaos.home)))
        _kill(left)
        print(f"\norphan processes after the run: {len(left)}")
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
