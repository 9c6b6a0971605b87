"""What every test run shares: the temporary folders the local backend keeps beside each home
(``/tmp/rs-<hash>``, where Ray's and HAProxy's sockets live) that appeared during the run and
are empty at its end are removed, so a run leaves no empty folders behind in /tmp. (An empty one
that another process made meanwhile goes too; its owner makes it again when it needs it.)"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

RUNTIME_ROOTS = "rs-*"


@pytest.fixture(scope="session", autouse=True)
def no_runtime_roots_left() -> Iterator[None]:
    temp = Path(tempfile.gettempdir())
    before = set(temp.glob(RUNTIME_ROOTS))
    yield
    for made in set(temp.glob(RUNTIME_ROOTS)) - before:
        with contextlib.suppress(OSError):  # not empty, or a directory of someone else's
            made.rmdir()
