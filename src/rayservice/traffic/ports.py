"""Loopback port checks for the stable endpoints.

The caller picks the ports a front listens on, and a port held by an unrelated process must
be reported by number instead of surfacing as an opaque HAProxy start failure. These helpers
answer "can a listener bind here right now?" without keeping the port.
"""

from __future__ import annotations

import socket

from rayservice.spec.errors import TemporaryError

HIGHEST_PORT = 65535


class PortInUse(TemporaryError):
    """A port a front must listen on is held by another process.

    Temporary because the other process may release it; ``port`` lets the caller pick a
    different one instead of waiting.
    """

    def __init__(self, port: int, detail: str = "") -> None:
        self.port = port
        message = f"port {port} on 127.0.0.1 is already in use by another process"
        super().__init__(f"{message}: {detail}" if detail else message)


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """True when a listener could bind ``host:port`` now.

    SO_REUSEADDR makes connections lingering in TIME_WAIT not count as "taken", exactly as
    for HAProxy's own listeners, while a live listener still makes the bind fail.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def next_free_port(start: int, taken: set[int]) -> int:
    """The lowest port >= ``start`` that is neither in ``taken`` nor bound on loopback."""
    for port in range(start, HIGHEST_PORT + 1):
        if port not in taken and port_is_free(port):
            return port
    raise TemporaryError(f"no free port on 127.0.0.1 between {start} and {HIGHEST_PORT}")
