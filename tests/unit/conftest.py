"""Fixtures shared by the unit tests."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis.configuration import set_hypothesis_home_dir

from rayservice.store.sqlite import SqliteStore
from tests.unit.world import World, world_around

# Hypothesis keeps what it learns in .hypothesis under the working directory; a test run
# leaves the source tree as it was.
set_hypothesis_home_dir(Path(tempfile.gettempdir()) / "rayservice-hypothesis")


@pytest.fixture
def world(tmp_path: Path) -> World:
    world = world_around(SqliteStore(tmp_path / "store.db"))
    world.apply()
    return world
