"""Fixtures shared by the unit tests."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis.configuration import set_hypothesis_home_dir

from rayservice.providers.fake import FakeProvider
from rayservice.serve_client.fake import FakeServeClient
from rayservice.store.sqlite import SqliteStore
from rayservice.traffic.fake import FakeFront
from tests.unit.world import FakeClock, World, new_reconciler

# Hypothesis keeps what it learns in .hypothesis under the working directory; a test run
# leaves the source tree as it was.
set_hypothesis_home_dir(Path(tempfile.gettempdir()) / "rayservice-hypothesis")


@pytest.fixture
def world(tmp_path: Path) -> World:
    store = SqliteStore(tmp_path / "store.db")
    clock = FakeClock()
    provider, serve, front = FakeProvider(clock=clock), FakeServeClient(), FakeFront()
    world = World(
        store, provider, serve, front, clock, new_reconciler(store, provider, serve, front, clock)
    )
    world.apply()
    return world
