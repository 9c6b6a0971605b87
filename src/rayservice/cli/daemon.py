"""``rayservice start`` and ``stop``: the controller as a background process.

Stopping the controller stops only the control plane: clusters and endpoints keep serving,
and the next controller adopts them. A controller that refuses to start (its home cannot be
made, its store is damaged) exits at once; ``start`` then repeats the end of what it wrote to
its log, which says why.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from rayservice.api.settings import pid_file
from rayservice.client import RayServiceClient
from rayservice.host.processes import is_alive

START_TIMEOUT = 30.0
STOP_TIMEOUT = 30.0
TOLD_LOG_LINES = 5  # of a controller that exited at start: its error is the last line


def running_pid(home: Path) -> int | None:
    try:
        pid = int(pid_file(home).read_text())
    except (OSError, ValueError):
        return None
    return pid if is_alive(pid, None) else None


def start(home: Path, client: RayServiceClient, controller_args: list[str]) -> str:
    """Start ``rayservice controller *controller_args`` in the background unless one answers
    at ``client`` already; wait until it answers."""
    pid = running_pid(home)
    if pid is not None and client.healthy():
        return f"controller already running (pid {pid}) at {client.base_url}"
    log = home / "controller.log"
    try:
        home.mkdir(parents=True, exist_ok=True)
        out = log.open("ab")
    except OSError as e:
        raise SystemExit(
            f"error: cannot create the controller's home {home} or its log"
            f" ({e.strerror or e}): make it a folder this user can write, or point"
            " RAYSERVICE_HOME at one"
        ) from e
    with out:
        written = out.tell()
        child = subprocess.Popen(
            [sys.executable, "-m", "rayservice.cli.main", "controller", *controller_args],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if client.healthy():
            return f"controller started (pid {child.pid}) at {client.base_url}; log: {log}"
        if child.poll() is not None:
            said = _written_since(log, written)
            raise SystemExit(
                f"the controller exited with code {child.returncode}"
                + (f":\n{said}\n(log: {log})" if said else f"; see {log}")
            )
        time.sleep(0.2)
    raise SystemExit(f"the controller did not answer within {START_TIMEOUT:.0f}s; see {log}")


def _written_since(log: Path, offset: int) -> str:
    """The last lines the controller wrote to its log after ``offset``."""
    try:
        with log.open("rb") as text:
            text.seek(offset)
            lines = text.read().decode(errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join([line for line in lines if line.strip()][-TOLD_LOG_LINES:])


def stop(home: Path) -> str:
    pid = running_pid(home)
    if pid is None:
        return "no controller is running"
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT
    while time.monotonic() < deadline:
        if not is_alive(pid, None):
            return f"controller stopped (pid {pid}); services keep serving"
        time.sleep(0.2)
    os.kill(pid, signal.SIGKILL)
    return f"controller killed after {STOP_TIMEOUT:.0f}s (pid {pid}); services keep serving"
