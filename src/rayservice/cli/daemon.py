"""``rayservice start`` and ``stop``: the controller as a background process.

Stopping the controller stops only the control plane: clusters and endpoints keep serving,
and the next controller adopts them.
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
    home.mkdir(parents=True, exist_ok=True)
    log = home / "controller.log"
    with log.open("ab") as out:
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
            raise SystemExit(f"the controller exited with code {child.returncode}; see {log}")
        time.sleep(0.2)
    raise SystemExit(f"the controller did not answer within {START_TIMEOUT:.0f}s; see {log}")


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
