"""Loopback or not: whether an address stays on this machine, and the rule that follows from it.

The controller's API trusts a caller on this machine more than one elsewhere: only a caller on
loopback may make it read a local folder, and a listener reachable beyond loopback must demand
a token. Both rules hinge on one question about an address, answered here once for the API
(about a caller) and for the command line and the controller process (about a listen address).
Anything that is not plainly loopback (a host name other than ``localhost``, an unknown
caller) counts as remote: the safe answer when in doubt.
"""

from __future__ import annotations

import ipaddress

from rayservice.spec.errors import RayServiceError

LOCALHOST_NAME = "localhost"
LOOPBACK_OF_VERSION = {4: "127.0.0.1", 6: "::1"}


class AccessSettingsError(RayServiceError):
    """The controller's listen address or token settings are unusable; it does not start."""


class ExposedWithoutToken(AccessSettingsError):
    """Listening beyond loopback was asked for without a token."""


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


def refuse_exposed_without_token(listen_host: str, token: str | None) -> None:
    """Raise :class:`ExposedWithoutToken` when ``listen_host`` is not loopback and no token is
    set: anyone who can reach the port could then run code through the controller."""
    if token is None and not is_loopback(listen_host):
        raise ExposedWithoutToken(
            f"refusing to listen on {listen_host} without a token: an address beyond loopback"
            " lets other machines drive the controller; pass --token-file PATH (a file only"
            " you can read, holding the token on its first line) or listen on 127.0.0.1"
        )
