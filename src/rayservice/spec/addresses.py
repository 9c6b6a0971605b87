"""Addresses in words: whether one stays on this machine, and where a local client reaches a
listener. Pure (no sockets): the API (about a caller), the command line and the controller
(about a listen address) and the Services' exposure all ask the same questions. Anything that is
not plainly loopback (a host name other than ``localhost``, an unknown caller) counts as remote:
the safe answer when in doubt.
"""

from __future__ import annotations

import ipaddress

LOCALHOST_NAME = "localhost"
LOOPBACK_OF_VERSION = {4: "127.0.0.1", 6: "::1"}


def is_loopback(address: str | None) -> bool:
    """True when ``address`` (an IP literal, or ``localhost``) is on this machine's loopback.

    IPv4-mapped IPv6 addresses (``::ffff:127.0.0.1``, as a dual-stack listener reports an IPv4
    caller) count as their IPv4 address. None, other host names and garbage count as remote.
    """
    if address is None:
        return False
    if address.lower() == LOCALHOST_NAME:
        return True
    try:
        ip = ipaddress.ip_address(address.strip("[]"))
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped.is_loopback
    return ip.is_loopback


def reachable_from_here(listen_host: str) -> str:
    """The address a client on this machine connects to for a listener on ``listen_host``:
    the loopback address of its family for a wildcard (``0.0.0.0``, ``::``), else itself."""
    try:
        ip = ipaddress.ip_address(listen_host.strip("[]"))
    except ValueError:
        return listen_host
    if ip.is_unspecified:
        return LOOPBACK_OF_VERSION[ip.version]
    return listen_host
