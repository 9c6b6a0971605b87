"""Process-session helpers for node supervision on Linux.

Every Ray node runs as ``ray start --block`` in its own process session, and every process Ray
spawns for that node (raylet, GCS, dashboard, actors) stays in that session even when it moves
to its own process group. So a node is identified by its session leader's pid plus that
process's start time (to tell a reused pid apart), and it is stopped by signalling the whole
session.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterable
from pathlib import Path

_PROC = Path("/proc")


def _stat_fields(pid: int) -> list[str] | None:
    try:
        text = (_PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    # the command name (field 2) may contain spaces and parentheses: split after its end
    return text[text.rindex(")") + 2 :].split()


def start_ticks(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (/proc/<pid>/stat field 22)."""
    fields = _stat_fields(pid)
    return None if fields is None else int(fields[19])


def is_alive(pid: int, ticks: int | None) -> bool:
    """True if ``pid`` runs, is not a zombie and (when given) started at ``ticks``."""
    fields = _stat_fields(pid)
    if fields is None or fields[0] in ("Z", "X"):
        return False
    return ticks is None or int(fields[19]) == ticks


def session_members(session_id: int) -> list[int]:
    """Pids of every live process in the session ``session_id``."""
    members = []
    for entry in _PROC.iterdir():
        if not entry.name.isdigit():
            continue
        fields = _stat_fields(int(entry.name))
        if fields is not None and fields[0] not in ("Z", "X") and int(fields[3]) == session_id:
            members.append(int(entry.name))
    return members


def _signal_all(pids: Iterable[int], sig: signal.Signals) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def stop_sessions(session_ids: Iterable[int], grace_seconds: float = 5.0) -> None:
    """SIGTERM every process of the sessions, wait up to ``grace_seconds``, then SIGKILL the
    rest. Waits until none is left (bounded) so ports are free when it returns."""
    sessions = list(session_ids)
    if not sessions:
        return
    members = [pid for sid in sessions for pid in session_members(sid)]
    _signal_all(members, signal.SIGTERM)
    deadline = time.monotonic() + grace_seconds
    while time.monotonic() < deadline:
        members = [pid for sid in sessions for pid in session_members(sid)]
        if not members:
            return
        time.sleep(0.1)
    for _ in range(50):
        members = [pid for sid in sessions for pid in session_members(sid)]
        if not members:
            return
        _signal_all(members, signal.SIGKILL)
        time.sleep(0.1)
