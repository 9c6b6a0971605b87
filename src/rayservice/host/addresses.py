"""The rule that follows from an address beyond loopback: the controller's API must demand a token.

The controller's API trusts a caller on this machine more than one elsewhere: only a caller on
loopback may make it read a local folder (``api/auth.py``), and a listener reachable beyond
loopback must demand a token (here). Whether an address is loopback is answered once, in
:mod:`rayservice.spec.addresses`.
"""

from __future__ import annotations

from rayservice.spec.addresses import is_loopback
from rayservice.spec.errors import RayServiceError


class AccessSettingsError(RayServiceError):
    """The controller's listen address or token settings are unusable; it does not start."""


class ExposedWithoutToken(AccessSettingsError):
    """Listening beyond loopback was asked for without a token."""


def refuse_exposed_without_token(listen_host: str, token: str | None) -> None:
    """Raise :class:`ExposedWithoutToken` when ``listen_host`` is not loopback and no token is
    set: anyone who can reach the port could then run code through the controller."""
    if token is None and not is_loopback(listen_host):
        raise ExposedWithoutToken(
            f"refusing to listen on {listen_host} without a token: an address beyond loopback"
            " lets other machines drive the controller; pass --token-file PATH (a file only"
            " you can read, holding the token on its first line) or listen on 127.0.0.1"
        )
