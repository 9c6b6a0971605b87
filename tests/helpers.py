"""Helpers shared by the test suites.

Tests wait for conditions with ``eventually`` rather than fixed sleeps: they finish as soon
as the system is ready and fail with a message saying what never happened.
"""

from __future__ import annotations

import time
from collections.abc import Callable
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
