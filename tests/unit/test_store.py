"""SqliteStore: generations, status writes, events, views and ports, on a file in tmp_path."""

from __future__ import annotations

import contextlib
import copy
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from rayservice.spec.events import ObjectKind, ObjectRef
from rayservice.store.base import View
from rayservice.store.sqlite import MAX_EVENTS_PER_OWNER, MAX_REVISIONS_PER_OBJECT, SqliteStore

KIND = "RayService"
T0 = 1_714_557_600.0
FIXTURES = Path(__file__).parent / "fixtures"


def manifest(name: str = "demo", replicas: int = 1, namespace: str = "default") -> dict[str, Any]:
    return {
        "apiVersion": "ray.io/v1",
        "kind": KIND,
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "serveConfigV2": "applications: []\n",
            "rayClusterConfig": {
                "headGroupSpec": {"rayStartParams": {}},
                "workerGroupSpecs": [{"groupName": "small", "replicas": replicas}],
            },
        },
    }


def view(kind: str, name: str, owner: str, namespace: str = "default") -> View:
    return View(kind, namespace, name, owner, {"kind": kind, "metadata": {"name": name}})


@pytest.fixture
def store(tmp_path: Path) -> SqliteStore:
    return SqliteStore(tmp_path / "state" / "store.db")


def test_first_apply_creates_generation_one(store: SqliteStore) -> None:
    stored = store.apply(KIND, manifest(), "demo.yaml", T0)

    assert (stored.namespace, stored.name, stored.key) == ("default", "demo", "default/demo")
    assert (stored.generation, stored.resource_version) == (1, 1)
    assert stored.created_at == T0
    assert stored.source == "demo.yaml"
    assert stored.uid
    assert stored.manifest == manifest()
    assert (stored.status, stored.record, stored.deleting) == ({}, {}, False)
    assert store.get(KIND, "default", "demo") == stored


def test_reapplying_the_same_spec_keeps_generation_but_bumps_resource_version(
    store: SqliteStore,
) -> None:
    first = store.apply(KIND, manifest(), "demo.yaml", T0)
    relabelled = manifest()
    relabelled["metadata"]["labels"] = {"team": "a"}  # metadata is not spec

    again = store.apply(KIND, relabelled, "demo.yaml", T0 + 10)

    assert again.generation == 1
    assert again.resource_version == first.resource_version + 1
    assert again.uid == first.uid
    assert again.created_at == T0
    assert again.manifest["metadata"]["labels"] == {"team": "a"}


def test_a_changed_spec_bumps_generation(store: SqliteStore) -> None:
    store.apply(KIND, manifest(replicas=1), "demo.yaml", T0)

    changed = store.apply(KIND, manifest(replicas=3), "other.yaml", T0 + 10)

    assert changed.generation == 2
    assert changed.resource_version == 2
    assert changed.source == "other.yaml"
    assert changed.manifest["spec"]["rayClusterConfig"]["workerGroupSpecs"][0]["replicas"] == 3


def test_spec_key_order_does_not_count_as_a_change(store: SqliteStore) -> None:
    store.apply(KIND, manifest(), "demo.yaml", T0)
    reordered = manifest()
    reordered["spec"] = dict(reversed(list(reordered["spec"].items())))

    assert store.apply(KIND, reordered, "demo.yaml", T0).generation == 1


def test_write_status_reports_whether_it_wrote(store: SqliteStore) -> None:
    stored = store.apply(KIND, manifest(), "demo.yaml", T0)
    status = {"numServeEndpoints": 2, "conditions": [{"type": "Ready", "status": "True"}]}

    assert store.write_status(KIND, "default", "demo", status) is True
    after_first = store.get(KIND, "default", "demo")
    assert store.write_status(KIND, "default", "demo", copy.deepcopy(status)) is False
    after_second = store.get(KIND, "default", "demo")

    assert after_first is not None and after_second is not None
    assert after_first.status == status
    assert after_first.resource_version == stored.resource_version + 1
    assert after_second.resource_version == after_first.resource_version
    assert store.write_status(KIND, "default", "missing", status) is False


def test_write_record_checkpoints_without_touching_the_spec(store: SqliteStore) -> None:
    stored = store.apply(KIND, manifest(), "demo.yaml", T0)

    store.write_record(KIND, "default", "demo", {"active": {"name": "demo-raycluster-bbbbb"}})

    after = store.get(KIND, "default", "demo")
    assert after is not None
    assert after.record == {"active": {"name": "demo-raycluster-bbbbb"}}
    assert after.generation == stored.generation
    assert after.manifest == stored.manifest


def test_a_repeat_of_any_stored_event_is_counted_not_repeated(store: SqliteStore) -> None:
    store.add_event("default", "demo", "Normal", "ClusterCreated", "creating", T0)
    store.add_event("default", "demo", "Normal", "ClusterCreated", "creating", T0 + 5)
    store.add_event("default", "demo", "Warning", "ServeConfigRejected", "bad", T0 + 6)
    store.add_event("default", "demo", "Normal", "ClusterCreated", "creating", T0 + 7)
    store.add_event("default", "other", "Normal", "ClusterCreated", "creating", T0 + 8)

    events = store.events("default", "demo")

    assert [(e.reason, e.count) for e in events] == [
        ("ServeConfigRejected", 1),
        ("ClusterCreated", 3),  # repeated after another event: still the same one
    ]
    assert (events[1].first_seen, events[1].last_seen) == (T0, T0 + 7)
    assert (events[0].type, events[1].type) == ("Warning", "Normal")
    assert [(e.name, e.count) for e in store.events("default", "other")] == [("other", 1)]


def test_an_event_is_about_the_service_unless_it_names_another_object(
    store: SqliteStore,
) -> None:
    cluster = ObjectRef(ObjectKind.RAY_CLUSTER, "demo-raycluster-bbbbb")
    other_cluster = ObjectRef(ObjectKind.RAY_CLUSTER, "demo-raycluster-ccccc")
    store.add_event("default", "demo", "Warning", "Unhealthy", "not ready", T0)
    store.add_event("default", "demo", "Warning", "Unhealthy", "not ready", T0 + 1, cluster)
    store.add_event("default", "demo", "Warning", "Unhealthy", "not ready", T0 + 2, other_cluster)
    store.add_event("default", "demo", "Warning", "Unhealthy", "not ready", T0 + 3, cluster)
    pod = ObjectRef(ObjectKind.POD, "demo-raycluster-bbbbb")  # a pod named like the cluster
    store.add_event("default", "demo", "Warning", "Unhealthy", "not ready", T0 + 4, pod)

    events = store.events("default", "demo")

    assert [(e.involved_kind, e.involved_name, e.count) for e in events] == [
        ("RayService", "demo", 1),
        ("RayCluster", "demo-raycluster-ccccc", 1),
        ("RayCluster", "demo-raycluster-bbbbb", 2),
        ("Pod", "demo-raycluster-bbbbb", 1),
    ]
    assert {(e.namespace, e.name) for e in events} == {("default", "demo")}


def test_events_are_listed_by_when_they_were_last_seen(store: SqliteStore) -> None:
    store.add_event("default", "demo", "Normal", "A", "a", T0)
    store.add_event("default", "demo", "Normal", "B", "b", T0 + 1)
    store.add_event("default", "demo", "Normal", "C", "c", T0 + 1)
    store.add_event("default", "demo", "Normal", "A", "a", T0 + 2)

    assert [e.reason for e in store.events("default", "demo")] == ["B", "C", "A"]


def test_only_the_most_recently_seen_events_of_a_service_are_kept(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "store.db", max_events_per_owner=3)
    store.add_event("default", "demo", "Normal", "Old", "first", T0)
    store.add_event("default", "demo", "Normal", "Kept", "seen again", T0 + 1)
    store.add_event("default", "demo", "Normal", "Dropped", "second", T0 + 2)
    store.add_event("default", "demo", "Normal", "Kept", "seen again", T0 + 3)  # a repeat
    store.add_event("default", "other", "Normal", "Theirs", "not counted for demo", T0 + 4)
    store.add_event("default", "demo", "Normal", "New", "third", T0 + 5)
    store.add_event("default", "demo", "Normal", "Newer", "fourth", T0 + 6)

    assert [(e.reason, e.count) for e in store.events("default", "demo")] == [
        ("Kept", 2),
        ("New", 1),
        ("Newer", 1),
    ]
    assert [e.reason for e in store.events("default", "other")] == ["Theirs"]


def test_the_default_cap_bounds_a_flood_of_distinct_events(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "store.db")
    for i in range(MAX_EVENTS_PER_OWNER + 5):
        store.add_event("default", "demo", "Warning", "Flood", f"message {i}", T0 + i)

    events = store.events("default", "demo")

    assert len(events) == MAX_EVENTS_PER_OWNER
    assert events[0].message == "message 5"


def test_replace_views_replaces_only_the_owners_views(store: SqliteStore) -> None:
    store.replace_views(
        "default/a", [view("Pod", "a-head", "default/a"), view("Pod", "a-worker", "default/a")]
    )
    store.replace_views("default/b", [view("Pod", "b-head", "default/b")])

    store.replace_views(
        "default/a",
        [view("Pod", "a-head-2", "default/a"), view("RayCluster", "a-cluster", "default/a")],
    )

    assert [v.name for v in store.views("Pod")] == ["a-head-2", "b-head"]
    assert [v.name for v in store.views("RayCluster")] == ["a-cluster"]
    store.replace_views("default/a", [])
    assert [(v.name, v.owner) for v in store.views("Pod")] == [("b-head", "default/b")]
    assert store.views("RayCluster") == []


def test_views_keep_their_document_and_filter_by_namespace(store: SqliteStore) -> None:
    doc_view = View("Service", "prod", "a-serve-svc", "prod/a", {"spec": {"ports": [8000]}})
    store.replace_views("prod/a", [doc_view])
    store.replace_views("default/b", [view("Service", "b-serve-svc", "default/b")])

    assert store.views("Service", "prod") == [doc_view]
    assert [v.name for v in store.views("Service")] == ["b-serve-svc", "a-serve-svc"]


def test_allocate_port_is_stable_per_owner_and_purpose(store: SqliteStore) -> None:
    serve = store.allocate_port("default/a", "serve", 8000, lambda p: True)
    dashboard = store.allocate_port("default/a", "dashboard", 8000, lambda p: True)

    assert serve == 8000
    assert dashboard == 8001  # 8000 is held by (default/a, serve)
    assert store.allocate_port("default/a", "serve", 9000, lambda p: False) == 8000


def test_allocate_port_skips_ports_of_others_and_ports_usable_rejects(store: SqliteStore) -> None:
    store.allocate_port("default/a", "serve", 8000, lambda p: True)
    busy = {8001, 8002}

    port = store.allocate_port("default/b", "serve", 8000, lambda p: p not in busy)

    assert port == 8003


def test_release_ports_frees_only_the_owners_ports(store: SqliteStore) -> None:
    store.allocate_port("default/a", "serve", 8000, lambda p: True)
    store.allocate_port("default/b", "serve", 8000, lambda p: True)  # 8001

    store.release_ports("default/a")

    assert store.allocate_port("default/c", "serve", 8000, lambda p: True) == 8000
    assert store.allocate_port("default/b", "serve", 8000, lambda p: True) == 8001


def test_release_ports_of_one_purpose_keeps_the_others(store: SqliteStore) -> None:
    store.allocate_port("default/a", "serve", 8000, lambda p: True)
    store.allocate_port("default/a", "dashboard", 8265, lambda p: True)

    store.release_ports("default/a", "serve")

    assert store.allocate_port("default/a", "serve", 9000, lambda p: True) == 9000
    assert store.allocate_port("default/a", "dashboard", 9000, lambda p: True) == 8265


def test_an_annotation_only_apply_keeps_the_generations_first_revision(
    store: SqliteStore,
) -> None:
    store.apply(KIND, manifest(), "demo.yaml", T0)
    annotated = manifest()
    annotated["metadata"]["annotations"] = {"rayservice.io/rollout-paused": "true"}

    again = store.apply(KIND, annotated, "rollout pause", T0 + 10)
    changed = store.apply(KIND, manifest(replicas=3), "other.yaml", T0 + 20)

    assert (again.generation, changed.generation) == (1, 2)
    revisions = store.revisions(KIND, "default", "demo")
    assert [(r.generation, r.source, r.applied_at) for r in revisions] == [
        (1, "demo.yaml", T0),
        (2, "other.yaml", T0 + 20),
    ]
    assert revisions[0].manifest == manifest()


def test_mark_deleting_then_remove(store: SqliteStore) -> None:
    stored = store.apply(KIND, manifest(), "demo.yaml", T0)

    marked = store.mark_deleting(KIND, "default", "demo")

    assert marked is not None and marked.deleting is True
    assert marked.resource_version == stored.resource_version + 1
    assert marked.generation == stored.generation
    assert store.mark_deleting(KIND, "default", "missing") is None
    store.remove(KIND, "default", "demo")
    assert store.get(KIND, "default", "demo") is None
    assert store.list_resources(KIND) == []


def test_a_removed_resource_takes_its_events_along(store: SqliteStore) -> None:
    store.apply(KIND, manifest(), "demo.yaml", T0)
    store.add_event("default", "demo", "Normal", "ClusterCreated", "old cluster", T0)
    store.add_event("default", "other", "Normal", "ClusterCreated", "their cluster", T0)

    store.remove(KIND, "default", "demo")
    store.apply(KIND, manifest(), "demo.yaml", T0 + 10)

    assert store.events("default", "demo") == [], "a re-created service starts with no events"
    assert [e.message for e in store.events("default", "other")] == ["their cluster"]


def test_list_resources_filters_by_kind_and_namespace(store: SqliteStore) -> None:
    store.apply(KIND, manifest("b"), "b.yaml", T0)
    store.apply(KIND, manifest("a", namespace="prod"), "a.yaml", T0)
    store.apply(KIND, manifest("a"), "a.yaml", T0)

    assert [r.key for r in store.list_resources(KIND)] == ["default/a", "default/b", "prod/a"]
    assert [r.key for r in store.list_resources(KIND, "prod")] == ["prod/a"]
    assert store.list_resources("RayCluster") == []


def test_everything_survives_reopening_the_store(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    first = SqliteStore(path)
    stored = first.apply(KIND, manifest(), "demo.yaml", T0)
    first.write_status(KIND, "default", "demo", {"numServeEndpoints": 1})
    first.write_record(KIND, "default", "demo", {"serve_port": 8000})
    first.add_event("default", "demo", "Normal", "ClusterCreated", "creating", T0)
    first.replace_views("default/demo", [view("Pod", "demo-head", "default/demo")])
    port = first.allocate_port("default/demo", "serve", 8000, lambda p: True)

    reopened = SqliteStore(path)

    again = reopened.get(KIND, "default", "demo")
    assert again is not None
    assert (again.uid, again.generation) == (stored.uid, 1)
    assert again.status == {"numServeEndpoints": 1}
    assert again.record == {"serve_port": 8000}
    assert [e.reason for e in reopened.events("default", "demo")] == ["ClusterCreated"]
    assert [v.name for v in reopened.views("Pod")] == ["demo-head"]
    assert reopened.allocate_port("default/demo", "serve", 9000, lambda p: True) == port
    assert reopened.apply(KIND, manifest(replicas=2), "demo.yaml", T0).generation == 2


def test_a_store_of_release_0_1_0_keeps_its_events_and_takes_new_ones(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.executescript((FIXTURES / "store-0.1.0-steady.sql").read_text())

    store = SqliteStore(path)
    old = store.events("default", "rayservice-sample")

    assert len(old) == 8
    assert old[0].reason == "ClusterCreated" and old[0].first_seen == 1714557601.0
    assert {(e.involved_kind, e.involved_name, e.count) for e in old} == {
        ("RayService", "rayservice-sample", 1)
    }
    later = old[-1].last_seen + 60
    cluster = ObjectRef(ObjectKind.RAY_CLUSTER, "rayservice-sample-raycluster-wcjg8")
    store.add_event(
        "default", "rayservice-sample", "Warning", "Unhealthy", "head down", later, cluster
    )
    store.add_event(
        "default", "rayservice-sample", old[0].type, old[0].reason, old[0].message, later + 1
    )
    new = store.events("default", "rayservice-sample")
    assert [(e.reason, e.involved_kind, e.count) for e in new[-2:]] == [
        ("Unhealthy", "RayCluster", 1),
        ("ClusterCreated", "RayService", 2),  # an old row counts a repeat
    ]
    assert len(new) == 9
    assert _indexed_prefixes(path, "events") >= {
        ("namespace", "name", "involved_kind", "involved_name")
    }, "a repeat is found through an index"
    assert SqliteStore(path).events("default", "rayservice-sample") == new, "reopens as is"
    store.remove(KIND, "default", "rayservice-sample")
    assert store.events("default", "rayservice-sample") == []


def _indexed_prefixes(path: Path, table: str) -> set[tuple[str, ...]]:
    """The first four columns of each index on ``table``."""
    with contextlib.closing(sqlite3.connect(path)) as db:
        indexes = [row[1] for row in db.execute(f"PRAGMA index_list({table})")]
        return {
            tuple(row[2] for row in db.execute(f"PRAGMA index_info({index})"))[:4]
            for index in indexes
        }


def test_only_the_newest_revisions_are_kept(store: SqliteStore) -> None:
    applies = MAX_REVISIONS_PER_OBJECT + 7
    for replicas in range(1, applies + 1):
        store.apply(KIND, manifest(replicas=replicas), f"v{replicas}.yaml", T0 + replicas)
    store.apply(KIND, manifest(name="other"), "other.yaml", T0)

    revisions = store.revisions(KIND, "default", "demo")

    assert [r.generation for r in revisions] == list(range(8, applies + 1))
    assert revisions[-1].source == f"v{applies}.yaml"
    assert len(store.revisions(KIND, "default", "other")) == 1


def test_the_store_and_its_backup_are_for_their_owner_only(tmp_path: Path) -> None:
    """It holds Secrets' values."""
    path = tmp_path / "state.db"
    store = SqliteStore(path)
    store.apply("Secret", {"metadata": {"name": "pw"}, "data": {"p": "cHc="}}, "s.yaml", 0.0)
    backup = store.back_up()

    assert backup is not None
    for file in (path, path.with_name("state.db-wal"), path.with_name("state.db-shm"), backup):
        assert file.stat().st_mode & 0o777 == 0o600, file
