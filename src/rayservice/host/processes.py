"""Detached process sessions on Linux: start them, recognise them, stop them, reap them.

Everything the controller supervises (a Ray node's ``ray start --block``, an HAProxy master)
runs in its own process session, so it outlives the controller, and every process it spawns
stays in that session even when it moves to its own process group. So a supervised process is
identified by its pid plus its start time (``/proc/<pid>/stat`` field 22, to tell a reused pid
apart, never by process name), and it is stopped by signalling its whole session.

The processes this OS process started are its children: their exit status must be collected
or they linger as zombies until the controller exits. Their handles belong to the OS process,
not to one provider or front object, so they are kept here, and any caller may reap them.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import IO

_PROC = Path("/proc")
_GONE_STATES = ("Z", "X")  # zombie, dead: the process runs no more
_POLL_INTERVAL = 0.1
_KILL_ATTEMPTS = 50

_children: dict[int, subprocess.Popen[bytes]] = {}
_exits: dict[int, int] = {}  # pid -> returncode of a reaped child, the latest kept
_EXITS_KEPT = 1000
_children_lock = threading.Lock()


def _stat_fields(pid: int) -> list[str] | None:
    """Fields 3 onwards of /proc/<pid>/stat (state first), or None if there is no such pid."""
    try:
        text = (_PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    # the command name (field 2) may contain spaces and parentheses: split after its end
    return text[text.rindex(")") + 2 :].split()


def start_ticks(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (/proc/<pid>/stat field 22), or
    None if there is no such pid. A zombie still has one: it names the process that was."""
    fields = _stat_fields(pid)
    return None if fields is None else int(fields[19])


def is_alive(pid: int, ticks: int | None = None) -> bool:
    """True if ``pid`` runs, is not a zombie and (when given) started at ``ticks``."""
    fields = _stat_fields(pid)
    if fields is None or fields[0] in _GONE_STATES:
        return False
    return ticks is None or int(fields[19]) == ticks


def session_members(session_id: int) -> list[int]:
    """Pids of every live process in the session ``session_id``."""
    members = []
    for entry in _PROC.iterdir():
        if not entry.name.isdigit():
            continue
        fields = _stat_fields(int(entry.name))
        if fields is not None and fields[0] not in _GONE_STATES and int(fields[3]) == session_id:
            members.append(int(entry.name))
    return members


def start_session(
    command: list[str],
    output: IO[bytes],
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> int:
    """Start ``command`` as the leader of a new session, detached from this process (no
    stdin, stdout and stderr into ``output``) so it outlives it; return its pid."""
    child = subprocess.Popen(
        command,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=output,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    with _children_lock:
        _children[child.pid] = child
    return child.pid


def reap_children() -> None:
    """Collect the exit status of every started session leader that has exited (kept for
    :func:`exit_status`)."""
    with _children_lock:
        for pid, child in list(_children.items()):
            if child.poll() is not None:
                del _children[pid]
                _exits[pid] = child.returncode
                while len(_exits) > _EXITS_KEPT:
                    del _exits[next(iter(_exits))]


def exit_status(pid: int) -> int | None:
    """How the session leader ``pid`` started by this process ended: its exit code, or minus
    the signal that killed it; None when it is not known (still running, or started by
    another process, e.g. a controller before a restart)."""
    reap_children()
    with _children_lock:
        return _exits.get(pid)


def _signal_all(pids: Iterable[int], sig: signal.Signals) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def _members(session_ids: list[int]) -> list[int]:
    return [pid for sid in session_ids for pid in session_members(sid)]


def kill_session(session_id: int) -> None:
    """SIGKILL the session leader ``session_id`` and every live process of its session."""
    _signal_all({session_id, *session_members(session_id)}, signal.SIGKILL)


def stop_sessions(session_ids: Iterable[int], grace_seconds: float = 5.0) -> None:
    """SIGTERM every process of the sessions, wait up to ``grace_seconds``, then SIGKILL the
    rest. Waits until none is left (bounded) so ports are free when it returns."""
    sessions = list(session_ids)
    if not sessions:
        return
    _signal_all(_members(sessions), signal.SIGTERM)
    deadline = time.monotonic() + grace_seconds
    while time.monotonic() < deadline:
        if not _members(sessions):
            reap_children()
            return
        time.sleep(_POLL_INTERVAL)
    for _ in range(_KILL_ATTEMPTS):
        members = _members(sessions)
        if not members:
            break
        _signal_all(members, signal.SIGKILL)
        time.sleep(_POLL_INTERVAL)
    reap_children()
