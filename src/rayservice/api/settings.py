"""Where the controller lives: its home folder, API address and pid file.

The command line talks to ``http://127.0.0.1:$RAYSERVICE_API_PORT`` unless
``RAYSERVICE_API_URL`` names another controller (one listening beyond loopback, with a token).

Kept apart from the server so the command line can find the controller without importing
the web framework and the control loop (every CLI call would pay for that import).
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path

from rayservice.spec.addresses import reachable_from_here

API_HOST = "127.0.0.1"
DEFAULT_API_PORT = 8888
API_URL_ENV = "RAYSERVICE_API_URL"


def home_dir() -> Path:
    return Path(os.environ.get("RAYSERVICE_HOME", Path.home() / ".rayservice")).expanduser()


def api_port() -> int:
    return int(os.environ.get("RAYSERVICE_API_PORT", DEFAULT_API_PORT))


def api_url() -> str:
    """The URL of the controller the command line talks to."""
    return os.environ.get(API_URL_ENV, "").strip().rstrip("/") or local_api_url(API_HOST)


def local_api_url(listen_host: str) -> str:
    """The URL a client on this machine reaches a controller listening on ``listen_host`` at."""
    host = reachable_from_here(listen_host).strip("[]")
    try:
        bracketed = ipaddress.ip_address(host).version == 6
    except ValueError:
        bracketed = False
    return f"http://{f'[{host}]' if bracketed else host}:{api_port()}"


def pid_file(home: Path) -> Path:
    return home / "controller.pid"
