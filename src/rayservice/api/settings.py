"""Where the controller lives: its home folder, API address and pid file.

Kept apart from the server so the command line can find the controller without importing
the web framework and the control loop (every CLI call would pay for that import).
"""

from __future__ import annotations

import os
from pathlib import Path

API_HOST = "127.0.0.1"
DEFAULT_API_PORT = 8888


def home_dir() -> Path:
    return Path(os.environ.get("RAYSERVICE_HOME", Path.home() / ".rayservice")).expanduser()


def api_port() -> int:
    return int(os.environ.get("RAYSERVICE_API_PORT", DEFAULT_API_PORT))


def pid_file(home: Path) -> Path:
    return home / "controller.pid"
