"""The API token: where the controller and the command line get it, and when it is required.

A controller listening beyond loopback must demand a token (``rayservice controller --host
0.0.0.0 --token-file PATH``); one on loopback demands it when given a file. The token lives in
a file only its owner can read, so it never appears in a process list or a shell history; the
command line reads it from ``RAYSERVICE_TOKEN`` or the file named by ``RAYSERVICE_TOKEN_FILE``.

Kept apart from the middleware (``api/auth.py``) because the command line reads it on every
call and must not import the web framework for that.
"""

from __future__ import annotations

import stat
from collections.abc import Mapping
from pathlib import Path

from rayservice.host.addresses import AccessSettingsError, refuse_exposed_without_token
from rayservice.spec.vocabulary import API_TOKEN_ENV

TOKEN_ENV = API_TOKEN_ENV
TOKEN_FILE_ENV = "RAYSERVICE_TOKEN_FILE"
BEARER = "Bearer"  # the Authorization scheme the command line sends
_PRIVATE_BITS = stat.S_IRWXG | stat.S_IRWXO  # nothing for group and others, as ssh asks of keys
_FIRST_VISIBLE, _LAST_VISIBLE = "!", "~"  # printable ASCII without spaces: safe in a header


class TokenFileError(AccessSettingsError):
    """A token file that cannot be used: missing, unreadable, open to others, or empty."""


def read_token_file(path: Path) -> str:
    """The token in ``path``: its first line without surrounding whitespace.

    Refuses a file that group or others may access (its token would not be a secret), an empty
    first line, and characters that cannot travel in an HTTP header.
    """
    try:
        mode = path.stat().st_mode
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as e:
        raise TokenFileError(f"cannot read the token file {path}: {e.strerror}") from e
    except UnicodeDecodeError as e:
        raise TokenFileError(f"the token file {path} is not UTF-8 text") from e
    if mode & _PRIVATE_BITS:
        raise TokenFileError(
            f"the token file {path} can be accessed by group or others (mode"
            f" {stat.S_IMODE(mode):04o}); make it private with `chmod 600 {path}`"
        )
    token = lines[0].strip() if lines else ""
    if not token:
        raise TokenFileError(f"the token file {path} is empty; put the token on its first line")
    if not all(_FIRST_VISIBLE <= char <= _LAST_VISIBLE for char in token):
        raise TokenFileError(
            f"the token in {path} must be printable ASCII without spaces (e.g. the output of"
            " `openssl rand -hex 32`)"
        )
    return token


def listen_token(host: str, token_file: Path | None) -> str | None:
    """The token a controller listening on ``host`` demands, or None when it demands none.

    Raises :class:`AccessSettingsError` for an unusable file, or for an address beyond
    loopback without a file: the controller must not start then.
    """
    token = None if token_file is None else read_token_file(token_file)
    refuse_exposed_without_token(host, token)
    return token


def client_token(environ: Mapping[str, str]) -> str | None:
    """The token the command line sends: ``RAYSERVICE_TOKEN``, else the first line of the file
    ``RAYSERVICE_TOKEN_FILE`` names, else none."""
    token = environ.get(TOKEN_ENV, "").strip()
    if token:
        return token
    path = environ.get(TOKEN_FILE_ENV, "").strip()
    return read_token_file(Path(path).expanduser()) if path else None
