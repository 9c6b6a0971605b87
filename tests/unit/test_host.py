"""Facts about this machine: process identity from /proc, session stop and reaping, ports."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from rayservice.host.ports import PortInUse, next_free_port, port_is_free
from rayservice.host.processes import (
    exit_status,
    is_alive,
    kill_session,
    reap_children,
    session_members,
    start_session,
    start_ticks,
    stop_sessions,
)

# a session leader that starts one child of its own and then waits: a two-process session
SESSION_SCRIPT = "import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', "
SESSION_SCRIPT += "'import time; time.sleep(60)']); time.sleep(60)"


def eventually(condition: Callable[[], bool], message: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{message}: not within {timeout}s"
        time.sleep(0.05)


@pytest.fixture
def session(tmp_path: Path) -> Iterator[int]:
    with (tmp_path / "out.log").open("wb") as out:
        leader = start_session([sys.executable, "-c", SESSION_SCRIPT], out)
    eventually(lambda: len(session_members(leader)) == 2, message="two session members")
    yield leader
    stop_sessions([leader], grace_seconds=0)


def test_a_process_is_known_by_its_pid_and_start_time() -> None:
    ticks = start_ticks(os.getpid())

    assert ticks is not None
    assert is_alive(os.getpid()) and is_alive(os.getpid(), ticks)
    assert not is_alive(os.getpid(), ticks + 1)  # a reused pid started at another time


def test_a_zombie_is_not_alive_but_keeps_its_start_time() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    eventually(lambda: not is_alive(child.pid), message="the child exits")

    assert start_ticks(child.pid) is not None  # not reaped yet: still names that process
    child.wait()
    assert start_ticks(child.pid) is None and not is_alive(child.pid)


def test_a_started_session_runs_apart_and_is_stopped_and_reaped(session: int) -> None:
    assert os.getsid(session) == session != os.getsid(0)  # its own session, apart from ours

    stop_sessions([session], grace_seconds=5)

    assert session_members(session) == []
    assert start_ticks(session) is None  # reaped: no zombie left behind


def test_kill_session_kills_every_member(session: int) -> None:
    kill_session(session)

    eventually(lambda: session_members(session) == [], message="the session is gone")
    reap_children()
    assert start_ticks(session) is None


def test_a_port_with_a_listener_is_not_free() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]

        assert not port_is_free(port)
        assert not port_is_free(port, reuse_address=False)
        assert next_free_port(port, set()) != port
    assert port_is_free(port)


def test_next_free_port_skips_the_ports_already_taken() -> None:
    first = next_free_port(20000, set())

    assert next_free_port(first, {first}) > first


def test_port_in_use_names_the_port() -> None:
    assert "port 8000 on 127.0.0.1" in str(PortInUse(8000, "haproxy could not bind it"))


@pytest.mark.parametrize(("script", "status"), [("exit 3", 3), ("kill -9 $$", -9)])
def test_how_a_started_session_ended_is_kept_once_reaped(
    tmp_path: Path, script: str, status: int
) -> None:
    with (tmp_path / "out.log").open("wb") as out:
        leader = start_session(["sh", "-c", script], out)

    eventually(lambda: exit_status(leader) is not None, message="the leader is reaped")

    assert exit_status(leader) == status
    assert exit_status(os.getpid()) is None  # not one this process started
