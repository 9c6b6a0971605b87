"""KubeRay's ``ray.io/initializing-timeout`` as a table: one row per story of a service.

Each row applies the sample RayService with the annotation (or without it), drives the
reconciler's world through steps (a cluster created, its head answering, Serve apps deploying,
the service serving and losing its endpoints, time passing, a controller restart, a new spec)
and states where the service ends: the Ready reason, what its message names, how many clusters
are left and how many timeout events were recorded. Admission of the annotation and the
durations it reads come last.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from rayservice.planner.record import load_record
from rayservice.serve_client.fake import running_state
from rayservice.spec.durations import parse_duration
from rayservice.spec.errors import InvalidSpec
from rayservice.spec.loader import load_manifest
from rayservice.spec.observed import AppState, ServeState
from rayservice.spec.status import RayServiceStatus
from rayservice.spec.vocabulary import (
    AnnotationKey,
    ApplicationStatus,
    ConditionReason,
    ConditionStatus,
    ConditionType,
    EventReason,
    EventType,
)
from tests.unit.world import OWNER, World, sample_manifest

Step = Callable[[World], None]
TIMED_OUT = ConditionReason.INITIALIZING_TIMEOUT
INITIALIZING = ConditionReason.INITIALIZING
READY = ConditionReason.NON_ZERO_SERVE_ENDPOINTS
LOST = ConditionReason.ZERO_SERVE_ENDPOINTS


def manifest(timeout: str | None, price: int = 3) -> dict[str, Any]:
    """The sample, MangoStand at ``price``, with the annotation when ``timeout`` is set."""

    def set_price(config: dict[str, Any]) -> None:
        config["applications"][0]["deployments"][0]["user_config"]["price"] = price

    document = sample_manifest(set_price)
    if timeout is not None:
        annotations = document["metadata"].setdefault("annotations", {})
        annotations[AnnotationKey.INITIALIZING_TIMEOUT] = timeout
    return document


# -- steps ----------------------------------------------------------------------------------


def create(world: World) -> None:
    """The first pass: the cluster is asked for (the clock starts)."""
    world.reconcile()


def head_ready(world: World) -> None:
    """The head answers: the Serve config goes out."""
    world.provider.make_head_ready(world.cluster().name)
    world.reconcile()


def apps_deploying(world: World) -> None:
    """Serve reports fruit_app RUNNING and math_app still DEPLOYING."""
    url = world.cluster().dashboard_url
    running = running_state(world.serve.last_deployed(url) or {})
    apps = tuple(
        a if a.name == "fruit_app" else AppState(a.name, ApplicationStatus.DEPLOYING)
        for a in running.apps
    )
    world.serve.set_state(url, ServeState(apps=apps))
    world.reconcile()


def serve(world: World) -> None:
    """Every app RUNNING and every proxy healthy: the service has serve endpoints."""
    name = world.cluster().name
    world.provider.make_head_ready(name)
    world.reconcile()
    url = world.cluster().dashboard_url
    world.serve.set_state(url, running_state(world.serve.last_deployed(url) or {}))
    world.provider.mark_proxies_ready(name)
    world.reconcile()


def lose_endpoints(world: World) -> None:
    """Every Serve proxy fails its health check."""
    world.provider.mark_proxies_ready(world.cluster().name, ready=False)
    world.reconcile()


def wait(seconds: float) -> Step:
    def step(world: World) -> None:
        world.clock.now += seconds
        world.reconcile()

    step.__name__ = f"wait({seconds})"
    return step


def restart(world: World) -> None:
    """A new controller on the same store, then a pass."""
    world.restart_controller()
    world.reconcile()


def new_spec(world: World) -> None:
    """A changed Serve config (a new generation), annotation kept, then a pass."""
    timeout = world.resource().manifest["metadata"]["annotations"][
        AnnotationKey.INITIALIZING_TIMEOUT
    ]
    world.apply(manifest(timeout, price=4))
    world.reconcile()


# -- the table ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    timeout: str | None  # the annotation (None: none)
    steps: tuple[Step, ...]
    reason: ConditionReason  # of Ready at the end
    clusters: int  # clusters of the service left at the end
    timeout_events: int = 0  # RayServiceInitializingTimeout events (repeats counted)
    says: tuple[str, ...] = ()  # parts of the Ready message


ROWS = [
    # the head never answers: after 10 minutes the cluster goes, with a Warning
    pytest.param(
        Row("10m", (create, wait(600)), TIMED_OUT, 0, 1, ("10m", "waiting for the head")),
        id="head-never-ready",
    ),
    # Serve is up but an app is still DEPLOYING when the 90 seconds are over
    pytest.param(
        Row(
            "90s",
            (create, head_ready, apps_deploying, wait(90)),
            TIMED_OUT,
            0,
            1,
            ("1m33s", "90s", "math_app DEPLOYING"),
        ),
        id="apps-not-running",
    ),
    # plain seconds are a timeout too
    pytest.param(
        Row("600", (create, wait(600)), TIMED_OUT, 0, 1, ("600",)),
        id="plain-seconds",
    ),
    # one second short of the timeout: still initializing, the cluster stays
    pytest.param(
        Row("10m", (create, wait(598)), INITIALIZING, 1),
        id="not-yet",
    ),
    # ready in time: the clock stops for good
    pytest.param(
        Row("10m", (create, wait(300), serve, wait(3600)), READY, 1),
        id="ready-in-time",
    ),
    # a service that served and lost its endpoints is not initializing: no timeout
    pytest.param(
        Row("10m", (create, serve, lose_endpoints, wait(3600)), LOST, 1),
        id="ready-then-lost",
    ),
    # timed out: passes later try nothing again and repeat no event
    pytest.param(
        Row("10m", (create, wait(600), wait(3600), wait(60)), TIMED_OUT, 0, 1),
        id="stays-timed-out",
    ),
    # a restarted controller reads the verdict from the record
    pytest.param(
        Row("10m", (create, wait(600), restart, wait(3600)), TIMED_OUT, 0, 1),
        id="restart-keeps-timed-out",
    ),
    # ... and the clock: a restart half way does not start it over
    pytest.param(
        Row("10m", (create, wait(300), restart, wait(300)), TIMED_OUT, 0, 1),
        id="restart-keeps-the-clock",
    ),
    # a new spec starts over: a new cluster and a new clock
    pytest.param(
        Row("10m", (create, wait(600), new_spec, wait(500)), INITIALIZING, 1, 1),
        id="new-spec-starts-over",
    ),
    # ... which runs out like the first one
    pytest.param(
        Row("10m", (create, wait(600), new_spec, wait(600)), TIMED_OUT, 0, 2),
        id="new-spec-times-out-again",
    ),
    # ... and serves when it gets ready in time
    pytest.param(
        Row("10m", (create, wait(600), new_spec, serve), READY, 1, 1),
        id="new-spec-serves",
    ),
    # a new spec while initializing gives the full time again
    pytest.param(
        Row("10m", (create, wait(500), new_spec, wait(500)), INITIALIZING, 1),
        id="new-spec-while-initializing",
    ),
    # no annotation: no timeout however long it takes
    pytest.param(
        Row(None, (create, wait(10**6)), INITIALIZING, 1),
        id="no-annotation",
    ),
    # an empty annotation is none (as KubeRay reads it)
    pytest.param(
        Row("", (create, wait(10**6)), INITIALIZING, 1),
        id="empty-annotation",
    ),
]


def timeout_events(world: World) -> list[Any]:
    return [
        e
        for e in world.store.events("default", "rayservice-sample")
        if e.reason == EventReason.INITIALIZING_TIMEOUT
    ]


@pytest.mark.parametrize("row", ROWS)
def test_initializing_timeout(world: World, row: Row) -> None:
    world.apply(manifest(row.timeout))
    for step in row.steps:
        step(world)
    status = RayServiceStatus.model_validate(world.resource().status)
    ready = status.condition(ConditionType.READY)
    assert ready is not None
    assert (ready.status, ready.reason) == (
        ConditionStatus.TRUE if row.reason is READY else ConditionStatus.FALSE,
        row.reason,
    )
    for part in row.says:
        assert part in ready.message
    assert len(world.provider.clusters(OWNER)) == row.clusters
    events = timeout_events(world)
    assert sum(e.count for e in events) == row.timeout_events
    assert all(e.type == EventType.WARNING for e in events)
    if row.reason is TIMED_OUT:
        assert events[-1].message == ready.message
        assert status.activeServiceStatus.rayClusterName == ""
        assert status.numServeEndpoints == 0
        record = load_record(world.resource().record)
        assert record.active is None and record.initializing is not None
        assert record.initializing.timed_out == ready.message
        assert record.initializing.generation == world.resource().generation


def test_the_pass_wakes_when_the_clock_runs_out(world: World) -> None:
    world.apply(manifest("10m"))
    plan = world.reconcile()
    record = load_record(world.resource().record)
    assert record.initializing is not None
    assert plan.wake_at == record.initializing.since + 600
    assert record.initializing.since == world.clock.now  # when the cluster was asked for


def test_nothing_is_created_again_after_the_timeout(world: World) -> None:
    world.apply(manifest("1h30m"))
    create(world)
    wait(5400)(world)
    ensures = len(world.provider.calls_to("ensure"))
    for step in (wait(60), restart, wait(7200)):
        step(world)
    assert len(world.provider.calls_to("ensure")) == ensures
    assert world.deploys() == 0


def test_a_served_service_stays_served_in_the_record(world: World) -> None:
    world.apply(manifest("10m"))
    for step in (create, serve, lose_endpoints, restart):
        step(world)
    record = load_record(world.resource().record)
    assert record.served and record.initializing is None


# -- admission ------------------------------------------------------------------------------

PATH = "metadata.annotations.ray.io/initializing-timeout"


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("10 minutes", "is not a duration"),
        ("1d", "is not a duration"),
        ("ten", "is not a duration"),
        ("1h-5m", "is not a duration"),
        ("0", "positive"),
        ("0s", "positive"),
        ("-5m", "positive"),
        ("-30", "positive"),
        ("3000000h", "longer than"),
    ],
)
def test_a_bad_annotation_is_refused(value: str, says: str) -> None:
    with pytest.raises(InvalidSpec) as refused:
        load_manifest(manifest(value), "svc.yaml")
    [problem] = refused.value.problems
    assert problem.field == PATH
    assert says in problem.message
    assert "Go duration" in problem.valid


@pytest.mark.parametrize("value", ["10m", "90s", "1h30m", "600", "1.5h", "", "+5m"])
def test_a_good_annotation_is_admitted(value: str) -> None:
    load_manifest(manifest(value), "svc.yaml")


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("10m", 600),
        ("90s", 90),
        ("1h30m", 5400),
        ("1.5h", 5400),
        ("600", 600),
        ("300ms", 0.3),
        (".5s", 0.5),
        ("2m30s", 150),
    ],
)
def test_durations_read_as_go_does(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)
