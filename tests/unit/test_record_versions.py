"""Upgrading rayservice never rebuilds a running cluster.

The cluster hash is taken over the model with its defaults, so a release that models one more
field would hash every stored spec differently and start a new cluster for each service. Each
stored hash therefore carries the release that computed it, and a record written by another
release is hashed again on load (:func:`rayservice.planner.record.load_record`). These tests
start the controller of this release on stores written by release 0.1.0 (``fixtures/``, dumps of
real SQLite stores) and on records stamped by a release with other hashing.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from rayservice import __version__
from rayservice.planner.cluster import cluster_request
from rayservice.planner.record import load_record
from rayservice.serve_client.fake import running_state
from rayservice.spec.manifest import RayClusterSpec
from rayservice.spec.vocabulary import KIND, RolloutPhase
from rayservice.store.sqlite import SqliteStore
from tests.unit.world import NAME, NAMESPACE, FakeClock, World, world_around

FIXTURES = Path(__file__).parent / "fixtures"


def world_on(tmp_path: Path, dump: str, edit: Any = None) -> World:
    """A controller of this release on the store of ``dump``, its clusters running as the
    record says (the processes outlive any controller, so they are still there)."""
    path = tmp_path / "state.db"
    with sqlite3.connect(path) as connection:
        connection.executescript((FIXTURES / dump).read_text())
    store = SqliteStore(path)
    resource = store.get(KIND, NAMESPACE, NAME)
    assert resource is not None
    if edit is not None:
        store.write_record(KIND, NAMESPACE, NAME, edit(dict(resource.record)))
    world = world_around(store, FakeClock(now=resource.created_at + 100))
    provider = world.provider
    for field in ("active", "pending"):
        slot = resource.record.get(field)
        if slot is None:
            continue
        spec = RayClusterSpec.model_validate(slot["cluster_spec"])
        provider.ensure(
            cluster_request(slot["name"], resource.key, spec, slot["spec_hash"], annotations={})
        )
        provider.make_head_ready(slot["name"])
        provider.mark_proxies_ready(slot["name"])
        cluster = provider.observe(slot["name"])
        assert cluster is not None
        world.serve.set_state(cluster.dashboard_url, running_state(slot["serve_config"]))
    return world


def upgrades_started(world: World) -> int:
    return sum(1 for e in world.store.events(NAMESPACE, NAME) if e.reason == "UpgradeStarted")


def test_a_steady_service_of_release_0_1_0_keeps_its_cluster(tmp_path: Path) -> None:
    world = world_on(tmp_path, "store-0.1.0-steady.sql")
    before = world.resource().record["active"]
    started = upgrades_started(world)

    for _ in range(3):
        world.reconcile()

    after = world.resource().record
    assert upgrades_started(world) == started
    assert after["pending"] is None and after["phase"] == RolloutPhase.STEADY
    assert world.provider.clusters() == [before["name"]]
    assert (after["active"]["spec_hash"], after["active"]["hashed_by"]) == (
        before["spec_hash"],
        __version__,
    )


def stamped(release: str, spec_hash: str) -> Any:
    def edit(record: dict[str, Any]) -> dict[str, Any]:
        active = dict(record["active"], hashed_by=release, spec_hash=spec_hash)
        return dict(record, active=active)

    return edit


def test_a_hash_from_a_release_that_hashed_differently_is_computed_again(
    tmp_path: Path,
) -> None:
    # as if release 0.0.9 had modelled the cluster with fewer fields: another hash, same spec
    world = world_on(tmp_path, "store-0.1.0-steady.sql", stamped("0.0.9", "f00dfeedf00dfeed"))

    world.reconcile()

    record = world.resource().record
    assert record["pending"] is None, "no new cluster for a controller upgrade"
    assert record["active"]["hashed_by"] == __version__
    assert record["active"]["spec_hash"] != "f00dfeedf00dfeed"


def test_a_different_hash_from_this_release_is_a_real_change(tmp_path: Path) -> None:
    # the control: the same stored difference, stamped by this release, means the spec changed
    world = world_on(tmp_path, "store-0.1.0-steady.sql", stamped(__version__, "f00dfeedf00dfeed"))

    world.reconcile()

    assert upgrades_started(world) == 1


def test_an_incremental_rollback_of_release_0_1_0_goes_on_where_it_was(tmp_path: Path) -> None:
    world = world_on(tmp_path, "store-0.1.0-rollback.sql")
    stored = world.resource().record
    assert stored["pending"]["rolling_back"] is True  # the 0.1.0 shape

    record = load_record(stored)

    assert record.phase is RolloutPhase.ROLLING_BACK
    assert record.pending is not None and record.pending.name == stored["pending"]["name"]
    assert (record.pending.traffic_percent, record.pending.capacity) == (50, 50)
    world.reconcile()
    after = world.resource().record
    assert after["phase"] == RolloutPhase.ROLLING_BACK
    assert upgrades_started(world) == sum(
        1 for e in world.store.events(NAMESPACE, NAME) if e.reason == "UpgradeStarted"
    )
    assert after["pending"]["name"] == stored["pending"]["name"], "the same cluster, not a new one"


@pytest.mark.parametrize("dump", ["store-0.1.0-steady.sql", "store-0.1.0-rollback.sql"])
def test_records_of_release_0_1_0_load(tmp_path: Path, dump: str) -> None:
    path = tmp_path / "state.db"
    with sqlite3.connect(path) as connection:
        connection.executescript((FIXTURES / dump).read_text())
    resource = SqliteStore(path).get(KIND, NAMESPACE, NAME)
    assert resource is not None

    record = load_record(resource.record)

    assert record.active is not None and record.active.hashed_by == __version__
    assert record.failures == {}
