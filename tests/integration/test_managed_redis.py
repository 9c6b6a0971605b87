"""ManagedRedis with Debian's real redis-server: loopback only, a password, data that outlives
a killed process, a cluster's keys removed with Ray's own helper, and nothing left after stop."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from rayservice.host.processes import kill_session
from rayservice.providers.redis import ManagedRedis, RedisEndpoint, delete_namespace
from tests.helpers import eventually

pytestmark = pytest.mark.skipif(
    shutil.which("redis-server") is None, reason="redis-server is installed by scripts/setup"
)


def command(endpoint: RedisEndpoint, *args: str, password: str | None = None) -> str:
    """One Redis command over RESP, answered as text (errors too)."""

    def bulk(word: str) -> bytes:
        data = word.encode()
        return b"$%d\r\n%s\r\n" % (len(data), data)

    with socket.create_connection((endpoint.host, endpoint.port), timeout=5) as connection:
        key = endpoint.password if password is None else password
        if key:
            connection.sendall(b"*2\r\n" + bulk("AUTH") + bulk(key))
            connection.recv(1024)
        connection.sendall(b"*%d\r\n" % len(args) + b"".join(bulk(a) for a in args))
        return connection.recv(65536).decode()


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[ManagedRedis]:
    managed = ManagedRedis(tmp_path / "home")
    FOLDERS[id(managed)] = tmp_path / "home" / "redis"
    yield managed
    record = tmp_path / "home" / "redis" / "redis.json"
    pid = json.loads(record.read_text())["pid"] if record.exists() else 0
    managed.stop()
    if pid:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)


def test_it_listens_on_loopback_with_a_password_and_never_on_6379(redis: ManagedRedis) -> None:
    endpoint = redis.ensure()

    assert endpoint.host == "127.0.0.1" and endpoint.port != 6379
    assert command(endpoint, "PING").strip() == "+PONG"
    assert "NOAUTH" in command(endpoint, "PING", password="")
    assert redis.running() == endpoint
    assert redis.ensure() == endpoint  # adopted, not started twice


def test_a_killed_redis_starts_again_on_its_port_with_its_data(redis: ManagedRedis) -> None:
    endpoint = redis.ensure()
    command(endpoint, "SET", "kept", "yes")
    command(endpoint, "BGREWRITEAOF")
    pid = json.loads((redis_folder(redis) / "redis.json").read_text())["pid"]

    kill_session(pid)
    eventually(lambda: redis.running() is None, message="the killed Redis is seen gone")
    again = redis.ensure()

    assert again == endpoint
    assert command(again, "GET", "kept").endswith("yes\r\n")


def test_a_clusters_keys_go_and_the_others_stay(redis: ManagedRedis) -> None:
    endpoint = redis.ensure()
    command(endpoint, "SET", "RAYcluster-a@KV", "1")
    command(endpoint, "SET", "RAYcluster-b@KV", "1")

    delete_namespace(endpoint, "cluster-a")

    assert command(endpoint, "EXISTS", "RAYcluster-a@KV").strip() == ":0"
    assert command(endpoint, "EXISTS", "RAYcluster-b@KV").strip() == ":1"


def test_stop_ends_the_process_and_removes_its_data(redis: ManagedRedis) -> None:
    redis.ensure()
    pid = json.loads((redis_folder(redis) / "redis.json").read_text())["pid"]

    redis.stop()

    assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text()
    assert not redis_folder(redis).exists()


def redis_folder(redis: ManagedRedis) -> Path:
    """Where the Redis of the fixture's home keeps its files."""
    return FOLDERS[id(redis)]


FOLDERS: dict[int, Path] = {}
