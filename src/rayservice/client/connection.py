"""Where a client connects and how it proves who it is: shared by both clients.

The address follows the command line's convention (``api/settings.py``): ``RAYSERVICE_API_URL``
when set, else ``http://127.0.0.1:$RAYSERVICE_API_PORT`` (8888 by default). The names are
repeated here rather than imported because the client package stands beside the server
package and imports nothing of it; a unit test checks that both agree.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

API_URL_ENV = "RAYSERVICE_API_URL"
API_PORT_ENV = "RAYSERVICE_API_PORT"
API_HOST = "127.0.0.1"
DEFAULT_API_PORT = 8888
DEFAULT_TIMEOUT = 120.0  # seconds; an apply packages working_dirs before it answers
BEARER = "Bearer"


def resolve_base_url(base_url: str | None, environ: Mapping[str, str] = os.environ) -> str:
    """``base_url`` without a trailing slash, or the address the environment names."""
    if base_url:
        return base_url.rstrip("/")
    from_env = environ.get(API_URL_ENV, "").strip().rstrip("/")
    port = environ.get(API_PORT_ENV, "").strip() or str(DEFAULT_API_PORT)
    return from_env or f"http://{API_HOST}:{port}"


def auth_headers(token: str | None) -> dict[str, str]:
    """The headers that carry ``token`` (none without one)."""
    return {} if token is None else {"Authorization": f"{BEARER} {token}"}
