"""ManagedRedis: the Redis that keeps the GCS state of fault-tolerant clusters whose manifest
names no Redis of its own (:func:`rayservice.spec.fault_tolerance.redis_is_managed` decides).

One ``redis-server`` (Debian's package) per rayservice home, on loopback only, with a password,
its data in an append-only file under ``<home>/redis``. Like the nodes it runs in its own
session and outlives the controller; ``redis.json`` (port, password, pid and start ticks) lets
a restarted controller adopt it. Found dead, it is started again on the same port with the same
data, so a head restarting afterwards finds its state. It stops when the last cluster using it
is deleted. Each cluster keeps its state under its own storage namespace; the keys of one are
removed with Ray's own helper when it is deleted or created anew.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ValidationError

from rayservice.host.ports import LOOPBACK, next_free_port
from rayservice.host.processes import (
    is_alive,
    reap_children,
    start_session,
    start_ticks,
    stop_sessions,
)
from rayservice.spec.errors import PermanentError, TemporaryError
from rayservice.spec.fault_tolerance import redacted, redis_location

PORT_SEARCH_START = 16379  # never Redis' default 6379, which a system Redis may hold
START_TIMEOUT_SECONDS = 10.0
STOP_GRACE_SECONDS = 5.0
INSTALL_HINT = "install Debian's redis-server package (apt-get install redis-server)"


class RedisRecord(BaseModel):
    port: int
    password: str
    pid: int = 0
    ticks: int | None = None


@dataclass(frozen=True)
class RedisEndpoint:
    host: str
    port: int
    password: str

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


def _config(folder: Path, port: int, password: str) -> str:
    return "\n".join(
        [
            f"bind {LOOPBACK}",
            f"port {port}",
            "protected-mode yes",
            f'requirepass "{password}"',
            f'dir "{folder / "data"}"',
            "appendonly yes",
            "appendfsync everysec",
            'save ""',
            "daemonize no",
            'logfile ""',
            # the config file's path in the process title: tests find what a home left running
            'proc-title-template "{title} {listen-addr} {config-file}"',
            "",
        ]
    )


class ManagedRedis:
    """The supervised Redis of one rayservice home."""

    def __init__(self, home: Path, binary: str | None = None) -> None:
        self._folder = (home / "redis").absolute()
        self._record_path = self._folder / "redis.json"
        self._binary = binary
        self._lock = threading.Lock()

    def ensure(self) -> RedisEndpoint:
        """The running Redis, started (or started again) when it is not running."""
        with self._lock:
            record = self._load()
            if record is None:
                record = RedisRecord(
                    port=next_free_port(PORT_SEARCH_START, set()), password=secrets.token_hex(24)
                )
            if not is_alive(record.pid, record.ticks):
                self._start(record)
            return RedisEndpoint(LOOPBACK, record.port, record.password)

    def running(self) -> RedisEndpoint | None:
        """The Redis when it runs now, without starting it."""
        reap_children()
        record = self._load()
        if record is None or not is_alive(record.pid, record.ticks):
            return None
        return RedisEndpoint(LOOPBACK, record.port, record.password)

    def stop(self) -> None:
        """Stop the Redis and remove its data: no cluster needs it any more."""
        with self._lock:
            record = self._load()
            if record is not None and is_alive(record.pid, record.ticks):
                stop_sessions([record.pid], STOP_GRACE_SECONDS)
            shutil.rmtree(self._folder, ignore_errors=True)

    def _load(self) -> RedisRecord | None:
        try:
            return RedisRecord.model_validate_json(self._record_path.read_text())
        except (OSError, ValidationError):
            return None

    def _save(self, record: RedisRecord) -> None:
        self._folder.mkdir(parents=True, exist_ok=True)
        temporary = self._record_path.with_suffix(".tmp")
        temporary.write_text(record.model_dump_json())
        os.chmod(temporary, 0o600)  # it holds the password
        temporary.replace(self._record_path)

    def _start(self, record: RedisRecord) -> None:
        binary = self._binary or shutil.which("redis-server")
        if binary is None:
            raise PermanentError(f"GCS fault tolerance needs redis-server: {INSTALL_HINT}")
        reap_children()
        if record.pid:
            stop_sessions([record.pid], STOP_GRACE_SECONDS)  # what is left of the last one
        (self._folder / "data").mkdir(parents=True, exist_ok=True)
        config = self._folder / "redis.conf"
        config.write_text(_config(self._folder, record.port, record.password))
        os.chmod(config, 0o600)
        with (self._folder / "redis.log").open("ab") as log:
            record.pid = start_session([binary, str(config)], log, cwd=self._folder)
        record.ticks = start_ticks(record.pid)
        self._save(record)
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if not is_alive(record.pid, record.ticks):
                break
            if _accepts(record.port):
                return
            time.sleep(0.05)
        raise TemporaryError(f"Redis on {LOOPBACK}:{record.port} did not start: {self._log_tail()}")

    def _log_tail(self) -> str:
        try:
            lines = (self._folder / "redis.log").read_text(errors="replace").splitlines()
        except OSError:
            return "no log"
        return lines[-1] if lines else "no log"


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection((LOOPBACK, port), timeout=0.5):
            return True
    except OSError:
        return False


def reachable(address: str, timeout: float = 0.5) -> str | None:
    """Why a Redis at ``host:port`` (or a redis:// URI) cannot be reached, or None."""
    try:
        with socket.create_connection(redis_location(address), timeout=timeout):
            return None
    except (OSError, ValueError) as error:
        return f"Redis at {redacted(address)} is unreachable: {error}"


CLEANUP_TIMEOUT_SECONDS = 30.0
# Ray's helper aborts the whole process when it cannot reach Redis, so it runs in a child;
# the password travels in its environment, never on a command line
_CLEANUP = (
    "import os, sys\n"
    "from ray._private.gcs_utils import cleanup_redis_storage\n"
    "cleanup_redis_storage(sys.argv[1], int(sys.argv[2]), os.environ['REDIS_CLEANUP_PASSWORD'],"
    " False, sys.argv[3])\n"
)


def delete_namespace(endpoint: RedisEndpoint, namespace: str) -> None:
    """Remove every key a cluster's GCS kept under ``namespace`` (Ray's own helper)."""
    problem = reachable(endpoint.address)
    if problem is not None:
        raise TemporaryError(f"could not remove GCS state {namespace!r}: {problem}")
    command = [sys.executable, "-c", _CLEANUP, endpoint.host, str(endpoint.port), namespace]
    environment = {**os.environ, "REDIS_CLEANUP_PASSWORD": endpoint.password}
    try:
        done = subprocess.run(
            command,
            env=environment,
            capture_output=True,
            text=True,
            timeout=CLEANUP_TIMEOUT_SECONDS,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise TemporaryError(f"could not remove GCS state {namespace!r}: {error}") from error
    if done.returncode != 0:
        lines = (done.stderr or done.stdout).strip().splitlines()
        reason = lines[-1] if lines else f"exit code {done.returncode}"
        raise TemporaryError(f"could not remove GCS state {namespace!r} from Redis: {reason}")
