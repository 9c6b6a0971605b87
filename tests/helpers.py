"""Helpers shared by the test suites.

Tests wait for conditions with ``eventually`` rather than fixed sleeps: they finish as soon
as the system is ready and fail with a message saying what never happened.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")


def eventually(
    predicate: Callable[[], T], timeout: float = 10.0, interval: float = 0.05, message: str = ""
) -> T:
    """Poll ``predicate`` until it returns something truthy and return that value.

    Raises AssertionError with ``message`` (and the last falsy value) after ``timeout`` s.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(
                f"{message or 'condition not met'} within {timeout}s (last value: {value!r})"
            )
        time.sleep(interval)


def listening_addresses(port: int) -> set[str]:
    """The IPv4 addresses (dotted) with a socket listening on ``port``, from /proc/net/tcp."""
    found = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        address, hex_port = fields[1].split(":")
        if fields[3] == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
            found.add(socket.inet_ntoa(bytes.fromhex(address)[::-1]))
    return found
