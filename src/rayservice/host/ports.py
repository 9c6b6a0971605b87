"""Port checks: can a listener bind here (loopback unless told otherwise) right now?

Ports are chosen by the controller (Ray node port blocks, the stable endpoints), and a port
held by an unrelated process must be noticed before anything is started on it, and reported by
number instead of surfacing as an opaque start failure. The checks bind and release at once:
they never keep the port.
"""

from __future__ import annotations

import socket

from rayservice.spec.errors import TemporaryError

LOOPBACK = "127.0.0.1"
HIGHEST_PORT = 65535


class PortInUse(TemporaryError):
    """A port something must listen on is held by another process.

    Temporary because the other process may release it; ``port`` lets the caller pick a
    different one instead of waiting.
    """

    def __init__(self, port: int, detail: str = "", *, address: str = LOOPBACK) -> None:
        self.port = port
        message = f"port {port} on {address} is already in use by another process"
        super().__init__(f"{message}: {detail}" if detail else message)


def port_is_free(
    port: int, host: str = LOOPBACK, *, reuse_address: bool = True, reuse_port: bool = False
) -> bool:
    """True when a listener could bind ``host:port`` now.

    With ``reuse_address`` (SO_REUSEADDR) connections lingering in TIME_WAIT do not count as
    "taken", exactly as for a listener that sets it too (HAProxy does), while a live listener
    still makes the bind fail. Without it, the port counts as taken until they are gone, which
    is the safe answer for a listener that may not set it. With ``reuse_port``
    (SO_REUSEPORT, which HAProxy sets) a listener of this user that sets it too does not count:
    only for a port one of our fronts holds on another address.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        if reuse_address:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def address_is_local(host: str) -> bool:
    """True when a listener can bind ``host`` (an address of this machine, or a wildcard)."""
    return port_is_free(0, host)


def next_free_port(start: int, taken: set[int]) -> int:
    """The lowest port >= ``start`` that is neither in ``taken`` nor bound on loopback."""
    for port in range(start, HIGHEST_PORT + 1):
        if port not in taken and port_is_free(port):
            return port
    raise TemporaryError(f"no free port on {LOOPBACK} between {start} and {HIGHEST_PORT}")
