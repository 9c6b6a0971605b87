"""A RayService that takes values from a Secret, through the controller: it waits for a missing
Secret with a condition, starts once it is applied, replaces its cluster when a value it takes
changes, keeps serving when the Secret goes, and a steady pass notices all of this. A
standalone RayCluster waits the same way."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest

from rayservice.cli.waiting import summarize
from rayservice.planner.actions import EnsureCluster
from rayservice.planner.record import ServiceRecord
from rayservice.planner.standalone import DesiredCluster, plan_cluster
from rayservice.spec.config_objects import load_config_object
from rayservice.spec.events import ObjectKind
from rayservice.spec.manifest import RayCluster
from rayservice.spec.observed import Observed
from rayservice.spec.references import NOTHING_FOUND, Found, Source, resolve
from rayservice.spec.status import RayClusterStatus
from rayservice.store.sqlite import SqliteStore
from tests.unit.test_upgrades import (
    bring_up_pending,
    clusters,
    condition,
    events,
    manifest,
    name_of_generation,
    record,
    start,
    status,
)
from tests.unit.world import NAME, NAMESPACE, World, world_around

SECRET = "app-secret"


def takes_password(cluster: dict[str, Any]) -> None:
    head = cluster["headGroupSpec"]["template"]["spec"]["containers"][0]
    reference = {"secretKeyRef": {"name": SECRET, "key": "password"}}
    head["env"] = [{"name": "APP_PASSWORD", "valueFrom": reference}]


def apply_secret(world: World, password: str, **other_keys: str) -> None:
    values = {"password": password, **other_keys}
    document = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": SECRET, "namespace": NAMESPACE},
        "data": {k: base64.b64encode(v.encode()).decode() for k, v in values.items()},
    }
    stored = load_config_object(document, "secret.yaml")
    world.store.apply(ObjectKind.SECRET, stored, "secret.yaml", world.clock())


def head_env(world: World, cluster: str) -> dict[str, str]:
    return dict(world.provider.request_of(cluster).head.env)


@pytest.fixture
def world(tmp_path: Path) -> World:
    """The reconciler's world with nothing applied yet."""
    return world_around(SqliteStore(tmp_path / "store.db"))


def test_a_missing_secret_holds_the_cluster_back_until_it_is_applied(world: World) -> None:
    world.apply(manifest(edit=takes_password))

    world.reconcile()
    world.reconcile()

    assert clusters(world) == []
    ready = next(c for c in status(world)["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "ReferenceNotFound")
    assert f"Secret {NAMESPACE}/{SECRET} not found" in ready["message"]
    assert "containers[0].env[0].valueFrom.secretKeyRef" in ready["message"]
    [warning] = events(world, "ReferenceNotFound")  # once, not on every pass
    assert warning.type == "Warning"
    assert world.front.observe(f"{NAMESPACE}.{NAME}") is not None, "the ports are kept"
    _, outcome = summarize({"status": status(world)}, world.resource().generation)
    assert outcome is not None and not outcome.ok, "apply --wait says so instead of waiting"
    assert outcome.message.endswith("(it starts once that is applied)")

    apply_secret(world, "s3cret")
    name = start(world, manifest(edit=takes_password))

    assert head_env(world, name) == {"APP_PASSWORD": "s3cret"}
    assert record(world)["missing_references"] == []


def test_a_changed_value_replaces_the_cluster_and_the_old_one_keeps_its_value(
    world: World,
) -> None:
    apply_secret(world, "s3cret")
    old = start(world, manifest(edit=takes_password))
    generation = world.resource().generation

    apply_secret(world, "s3cret", unused="a key no one takes")
    world.reconcile()
    assert clusters(world) == [old], "a key the spec does not take changes nothing"

    apply_secret(world, "rotated")
    world.reconcile()

    [new] = [c for c in clusters(world) if c != old]
    assert new != name_of_generation(world, generation), "same generation, new values"
    assert world.resource().generation == generation
    assert head_env(world, new) == {"APP_PASSWORD": "rotated"}
    assert head_env(world, old) == {"APP_PASSWORD": "s3cret"}
    assert condition(world, "UpgradeInProgress") == ("True", "BothActivePendingClustersExist")
    [started] = events(world, "UpgradeStarted")
    assert "rotated" not in started.message and "s3cret" not in started.message


def test_a_deleted_secret_leaves_the_running_cluster_as_it_is(world: World) -> None:
    apply_secret(world, "s3cret")
    name = start(world, manifest(edit=takes_password))

    world.store.remove(ObjectKind.SECRET, NAMESPACE, SECRET)
    world.reconcile()

    assert clusters(world) == [name]
    assert condition(world, "Ready") == ("True", "NonZeroServeEndpoints")
    assert condition(world, "UpgradeInProgress") == ("False", "ReferenceNotFound")
    assert head_env(world, name) == {"APP_PASSWORD": "s3cret"}
    assert len(events(world, "ReferenceNotFound")) == 1


def test_a_steady_pass_notices_a_changed_secret(world: World) -> None:
    apply_secret(world, "s3cret")
    start(world, manifest(edit=takes_password))
    world.reconcile()
    reconciler = world.reconciler
    assert reconciler.settled(ObjectKind.RAY_SERVICE, NAMESPACE, NAME) is not None

    apply_secret(world, "rotated")

    assert reconciler.settled(ObjectKind.RAY_SERVICE, NAMESPACE, NAME) is None
    world.reconcile()
    assert len(clusters(world)) == 2, "the pass it asked for starts the new cluster"


def test_a_steady_pass_notices_a_secret_deleted_and_applied_again(world: World) -> None:
    apply_secret(world, "s3cret")
    start(world, manifest(edit=takes_password))
    world.reconcile()
    version = world.store.resource_version(ObjectKind.SECRET, NAMESPACE, SECRET)

    world.store.remove(ObjectKind.SECRET, NAMESPACE, SECRET)
    apply_secret(world, "rotated")

    assert world.store.resource_version(ObjectKind.SECRET, NAMESPACE, SECRET) == version
    assert world.reconciler.settled(ObjectKind.RAY_SERVICE, NAMESPACE, NAME) is None


def test_a_standalone_cluster_starts_no_node_while_its_secret_is_missing() -> None:
    document: dict[str, Any] = {
        "apiVersion": "ray.io/v1",
        "kind": "RayCluster",
        "metadata": {"name": "raycluster-kuberay", "namespace": NAMESPACE},
        "spec": manifest(edit=takes_password)["spec"]["rayClusterConfig"],
    }
    cluster = RayCluster.model_validate(document)

    def planned(found: Found) -> Any:
        resolution = resolve(cluster.spec, found, NAMESPACE, "spec")
        desired = DesiredCluster(cluster, 1, False, resolution)
        return plan_cluster(
            desired, Observed({}, {}, None), ServiceRecord(), RayClusterStatus(), 0.0
        )

    waiting = planned(NOTHING_FOUND)

    assert not [a for a in waiting.actions if isinstance(a, EnsureCluster)]
    head = next(c for c in waiting.status.conditions if c.type == "HeadPodReady")
    assert head.reason == "ReferenceNotFound"
    assert "spec.headGroupSpec.template.spec.containers[0].env[0]" in head.message
    assert [e.reason for e in waiting.events] == ["ReferenceNotFound"]

    found = {Source(ObjectKind.SECRET, SECRET): {"password": b"s3cret"}}
    [ensure] = [a for a in planned(found).actions if isinstance(a, EnsureCluster)]
    assert dict(ensure.request.head.env) == {"APP_PASSWORD": "s3cret"}


def rotated(world: World) -> tuple[str, str]:
    """Started with password "first", then the Secret says "second": the running cluster and
    the pending one that takes the new value."""
    apply_secret(world, "first")
    active = start(world, manifest(edit=takes_password))
    apply_secret(world, "second")
    world.reconcile()
    [pending] = [c for c in clusters(world) if c != active]
    return active, pending


def test_a_value_back_within_the_deletion_delay_gets_a_cluster_of_its_own(world: World) -> None:
    first, second = rotated(world)
    bring_up_pending(world, second)
    world.reconcile()
    assert record(world)["active"]["name"] == second
    assert [r["name"] for r in record(world)["retiring"]] == [first]

    apply_secret(world, "first")  # the first cluster's value, while it is still retiring
    world.reconcile()

    third = record(world)["pending"]["name"]
    assert third not in (first, second)
    assert head_env(world, third) == {"APP_PASSWORD": "first"}
    assert sorted(clusters(world)) == sorted([first, second, third])
    assert condition(world, "Ready") == ("True", "NonZeroServeEndpoints")


def test_an_upgrade_waits_while_its_secret_is_missing(world: World) -> None:
    active, pending = rotated(world)

    world.store.remove(ObjectKind.SECRET, NAMESPACE, SECRET)
    bring_up_pending(world, pending)
    world.reconcile()
    world.reconcile()

    assert (record(world)["active"]["name"], record(world)["pending"]["name"]) == (active, pending)
    status_, reason = condition(world, "UpgradeInProgress")
    assert (status_, reason) == ("False", "ReferenceNotFound")
    message = next(c for c in status(world)["conditions"] if c["type"] == "UpgradeInProgress")
    assert f"clusters {active} and {pending} keep running" in message["message"]

    apply_secret(world, "second")
    world.reconcile()

    assert record(world)["active"]["name"] == pending, "the upgrade goes on"
