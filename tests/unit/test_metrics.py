"""The controller's Prometheus metrics, counted against the reconciler's world (fakes, real
SQLite, a fake clock that moves one second per pass) and read back as a scraper would, through
``GET /metrics`` of the REST app."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from rayservice.api.app import create_app
from rayservice.controller.loop import ControlLoop
from rayservice.controller.metrics import ControllerMetrics
from rayservice.planner.actions import Plan
from rayservice.serve_client.fake import running_state
from rayservice.spec.errors import PermanentError, TemporaryError
from rayservice.spec.status import RayServiceStatus
from rayservice.spec.vocabulary import KIND, EventReason
from tests.unit.world import NAME, NAMESPACE, World, new_reconciler, sample_manifest

Labels = tuple[tuple[str, str], ...]


@pytest.fixture
def scrape(world: World, tmp_path: Path) -> Iterator[TestClient]:
    registry = world.reconciler.metrics.registry
    app = create_app(
        world.store, world.provider, tmp_path / "packages", lambda: None, metrics_registry=registry
    )
    with TestClient(app) as client:
        yield client


def samples(client: TestClient) -> dict[tuple[str, Labels], float]:
    """Every sample of ``GET /metrics`` by name and labels."""
    response = client.get("/metrics")
    assert response.status_code == 200
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


def value(client: TestClient, name: str, **labels: str) -> float:
    return samples(client)[(name, tuple(sorted(labels.items())))]


def states(client: TestClient) -> dict[str, float]:
    return {
        dict(labels)["state"]: v
        for (name, labels), v in samples(client).items()
        if name == "rayservice_services"
    }


def actions(plans: list[Plan[RayServiceStatus]]) -> dict[str, int]:
    counted: dict[str, int] = {}
    for plan in plans:
        for action in plan.actions:
            counted[type(action).__name__] = counted.get(type(action).__name__, 0) + 1
    return counted


def succeeded(client: TestClient) -> dict[str, float]:
    return {
        dict(labels)["action"]: v
        for (name, labels), v in samples(client).items()
        if name == "rayservice_actions_total" and dict(labels)["outcome"] == "succeeded" and v
    }


def upgrades(client: TestClient) -> dict[str, float]:
    return {
        dict(labels)["event"]: v
        for (name, labels), v in samples(client).items()
        if name == "rayservice_upgrades_total"
    }


def variant_b() -> dict[str, Any]:
    """The sample with a head container env of its own: a cluster change (a new cluster)."""
    document = sample_manifest()
    head = document["spec"]["rayClusterConfig"]["headGroupSpec"]["template"]["spec"]
    head["containers"][0]["env"] = [{"name": "UPGRADE_MARK", "value": "b"}]
    return document


def bring_up(world: World, name: str) -> list[Plan[RayServiceStatus]]:
    """The cluster ``name`` answers, takes its Serve config, runs it with healthy proxies."""
    world.provider.make_head_ready(name)
    plans = [world.reconcile()]
    url = world.provider.observe(name)
    assert url is not None
    deployed = world.serve.last_deployed(url.dashboard_url)
    assert deployed is not None
    world.serve.set_state(url.dashboard_url, running_state(deployed))
    world.provider.mark_proxies_ready(name)
    return [*plans, world.reconcile()]


def test_create_ready_and_upgrade_are_counted(world: World, scrape: TestClient) -> None:
    assert states(scrape) == {
        "Ready": 0,
        "NotReady": 1,
        "Upgrading": 0,
        "Failing": 0,
        "Deleting": 0,
    }
    assert succeeded(scrape) == {}
    assert value(scrape, "rayservice_time_to_ready_seconds_count") == 0

    plans = [world.reconcile()]  # T0 + 1: creates the cluster
    plans += bring_up(world, world.cluster().name)  # T0 + 3: serves

    assert actions(plans) == {"EnsureCluster": 1, "EnsureFront": 2, "DeployServeConfig": 1}
    assert succeeded(scrape) == actions(plans)
    assert states(scrape)["Ready"] == 1 and states(scrape)["NotReady"] == 0
    assert value(scrape, "rayservice_time_to_ready_seconds_count") == 1
    assert value(scrape, "rayservice_time_to_ready_seconds_sum") == 3.0
    assert value(scrape, "rayservice_time_to_ready_seconds_bucket", le="5.0") == 1
    assert value(scrape, "rayservice_time_to_ready_seconds_bucket", le="+Inf") == 1
    assert upgrades(scrape) == {
        "started": 0,
        "completed": 0,
        "rolled_back": 0,
        "rollback_cancelled": 0,
        "given_up": 0,
    }

    world.apply(variant_b())
    plans.append(world.reconcile())  # the pending cluster is created
    assert world.event_reasons().count(EventReason.UPGRADE_STARTED) == 1
    assert upgrades(scrape)["started"] == 1
    assert states(scrape)["Upgrading"] == 1 and states(scrape)["Ready"] == 0

    plans += bring_up(world, world.resource().record["pending"]["name"])  # traffic switches

    assert world.event_reasons().count(EventReason.UPGRADE_COMPLETED) == 1
    assert actions(plans) == {"EnsureCluster": 2, "EnsureFront": 3, "DeployServeConfig": 2}
    assert succeeded(scrape) == actions(plans)
    assert upgrades(scrape) == {
        "started": 1,
        "completed": 1,
        "rolled_back": 0,
        "rollback_cancelled": 0,
        "given_up": 0,
    }
    assert states(scrape)["Ready"] == 1 and states(scrape)["Upgrading"] == 0
    assert value(scrape, "rayservice_time_to_ready_seconds_count") == 1, "first readiness only"
    text = scrape.get("/metrics").text.splitlines()
    assert 'rayservice_upgrades_total{event="completed"} 1.0' in text
    assert 'rayservice_actions_total{action="EnsureCluster",outcome="succeeded"} 2.0' in text
    assert 'rayservice_services{state="Ready"} 1.0' in text
    assert "rayservice_time_to_ready_seconds_sum 3.0" in text


def test_readiness_regained_is_not_a_time_to_ready(world: World, scrape: TestClient) -> None:
    world.reconcile()
    name = world.cluster().name
    bring_up(world, name)
    world.provider.mark_proxies_ready(name, ready=False)
    world.reconcile()
    [ready] = [c for c in world.resource().status["conditions"] if c["type"] == "Ready"]
    assert (ready["status"], ready["reason"]) == ("False", "ZeroServeEndpoints")
    assert states(scrape)["NotReady"] == 1

    world.provider.mark_proxies_ready(name)
    world.reconcile()

    assert states(scrape)["Ready"] == 1
    assert value(scrape, "rayservice_time_to_ready_seconds_count") == 1
    assert value(scrape, "rayservice_time_to_ready_seconds_sum") == 3.0


def test_failed_actions_are_counted_by_kind(world: World, scrape: TestClient) -> None:
    world.reconcile()
    world.provider.make_head_ready(world.cluster().name)
    world.serve.fail("deploy", TemporaryError("HTTP 503: Serve is starting"))
    world.reconcile()  # the first PUT fails for now: retried after a second

    assert (
        value(scrape, "rayservice_actions_total", action="DeployServeConfig", outcome="failed") == 1
    )

    world.serve.fail("deploy", PermanentError("HTTP 401: token refused"))
    world.reconcile()  # the retry fails for good (status shows the failure filed before)

    assert states(scrape)["Failing"] == 1

    failures = {
        labels: v
        for (name, labels), v in samples(scrape).items()
        if name == "rayservice_action_failures_total"
    }
    assert failures == {
        (("action", "DeployServeConfig"), ("kind", "Temporary")): 1,
        (("action", "DeployServeConfig"), ("kind", "Permanent")): 1,
    }
    assert (
        value(scrape, "rayservice_actions_total", action="DeployServeConfig", outcome="failed") == 2
    )
    assert (
        value(scrape, "rayservice_actions_total", action="DeployServeConfig", outcome="succeeded")
        == 0
    )
    assert world.deploys() == 2


def test_rollback_and_given_up_upgrades_are_counted(world: World, scrape: TestClient) -> None:
    world.reconcile()
    bring_up(world, world.cluster().name)

    world.apply(variant_b())
    world.reconcile()  # UpgradeStarted
    world.apply(sample_manifest())
    world.reconcile()  # back to the active cluster's spec: the pending cluster is dropped
    world.apply(variant_b())
    world.reconcile()  # UpgradeStarted
    world.clock.now += 601  # past the default pendingClusterTimeoutSeconds (600)
    world.reconcile()  # UpgradeTimedOut

    assert [r for r in world.event_reasons() if "Upgrade" in r or "Rollback" in r] == [
        EventReason.UPGRADE_STARTED,
        EventReason.ROLLBACK_STARTED,
        EventReason.UPGRADE_STARTED,
        EventReason.UPGRADE_TIMED_OUT,
    ]
    assert upgrades(scrape) == {
        "started": 2,
        "completed": 0,
        "rolled_back": 1,
        "rollback_cancelled": 0,
        "given_up": 1,
    }


def test_a_rollback_that_steps_back_is_counted_once(world: World) -> None:
    metrics = ControllerMetrics(world.store)
    for reason in (
        EventReason.UPGRADE_STARTED,
        EventReason.ROLLBACK_STARTED,
        EventReason.ROLLBACK_CANCELLED,
        EventReason.ROLLBACK_STARTED,
        EventReason.ROLLBACK_COMPLETED,
        EventReason.CLUSTER_DELETED,
    ):
        metrics.event_recorded(reason)

    counted = {
        event: metrics.registry.get_sample_value("rayservice_upgrades_total", {"event": event})
        for event in ("started", "completed", "rolled_back", "rollback_cancelled", "given_up")
    }
    assert counted == {
        "started": 1,
        "completed": 0,
        "rolled_back": 2,
        "rollback_cancelled": 1,
        "given_up": 0,
    }


def test_the_loop_counts_planned_settled_and_failed_passes(
    world: World, scrape: TestClient
) -> None:
    world.reconcile()
    bring_up(world, world.cluster().name)
    loop = ControlLoop(world.reconciler, monotonic=world.clock)

    def passes() -> dict[str, float]:
        return {
            dict(labels)["result"]: v
            for (name, labels), v in samples(scrape).items()
            if name == "rayservice_reconcile_passes_total"
        }

    loop.run_once()  # a full pass that does nothing: remembered
    loop.wake()
    loop.run_once()  # nothing changed since: settled
    loop.wake()
    loop.run_once()
    assert passes() == {"planned": 1, "settled": 2, "error": 0}

    def scale(config: dict[str, Any]) -> None:
        config["workerGroupSpecs"][0]["replicas"] = 2

    document = sample_manifest()
    scale(document["spec"]["rayClusterConfig"])
    world.apply(document)
    world.provider.fail_next_ensure(RuntimeError("disk full"))  # not an error the reconciler knows
    loop.wake()
    loop.run_once()

    assert passes() == {"planned": 1, "settled": 2, "error": 1}
    assert value(scrape, "rayservice_reconcile_duration_seconds_count") == 2, "full passes"
    assert world.event_reasons()[-1] == EventReason.RECONCILE_FAILED


def test_deleting_services_are_counted_as_deleting(world: World, scrape: TestClient) -> None:
    world.store.mark_deleting(KIND, NAMESPACE, NAME)

    assert states(scrape)["Deleting"] == 1
    assert sum(states(scrape).values()) == 1


def test_every_controller_has_a_registry_of_its_own(world: World) -> None:
    other = new_reconciler(world.store, world.provider, world.serve, world.front, world.clock)
    world.reconcile()

    def ensured(registry_of: ControllerMetrics) -> float | None:
        return registry_of.registry.get_sample_value(
            "rayservice_actions_total", {"action": "EnsureCluster", "outcome": "succeeded"}
        )

    assert ensured(world.reconciler.metrics) == 1
    assert ensured(other.metrics) == 0


def test_an_app_without_a_registry_serves_empty_metrics(world: World, tmp_path: Path) -> None:
    with TestClient(create_app(world.store, world.provider, tmp_path, lambda: None)) as client:
        response = client.get("/metrics")

    assert response.status_code == 200
    assert response.text == ""
    assert response.headers["content-type"].startswith("text/plain")
