"""A failing action is retried as its error says, never on every 50 ms pass.

Against the reconciler's world (fakes, real SQLite, a fake clock that moves one second per
pass, no jitter): a Serve config PUT refused for good (401) waits until what it would send
changes; one that fails for now (503) is retried after 1, 2, 4 ... seconds, up to 60; either way
status says so in the ``ReconcileFailed`` condition and the events count the attempts instead
of repeating them.
"""

from __future__ import annotations

import pytest

from rayservice.controller.outcomes import MAX_BACKOFF, backoff, kind_of
from rayservice.planner.plan import DEPLOY_FOLLOW_UP
from rayservice.serve_client.base import ServeConfigRejected
from rayservice.spec.errors import InvalidSpec, PermanentError, TemporaryError
from rayservice.spec.vocabulary import FailureKind
from tests.unit.world import NAME, NAMESPACE, World, sample_manifest

REFUSED = PermanentError("HTTP 401 from the dashboard: token refused")
UNAVAILABLE = TemporaryError("HTTP 503 from the dashboard: Serve is starting")


def reconcile_to_first_deploy(world: World) -> float:
    """Create the cluster, make its head answer and reach the first PUT; its requeue."""
    world.reconcile()
    world.provider.make_head_ready(world.cluster().name)
    return world.reconcile().requeue_after


def failed_condition(world: World) -> dict[str, object]:
    [found] = [c for c in world.resource().status["conditions"] if c["type"] == "ReconcileFailed"]
    return dict(found)


def warnings(world: World) -> list[tuple[str, int]]:
    return [(e.reason, e.count) for e in world.store.events(NAMESPACE, NAME) if e.type == "Warning"]


def test_a_refused_put_waits_for_a_change_instead_of_going_out_every_pass(world: World) -> None:
    world.serve.fail("deploy", REFUSED)

    first = reconcile_to_first_deploy(world)
    requeues = [world.reconcile().requeue_after for _ in range(10)]

    assert world.deploys() == 1, "one attempt, not one per pass"
    assert first >= 1.0, "the pass that failed looks again no sooner than a second"
    assert DEPLOY_FOLLOW_UP not in requeues, "no 50 ms follow-up after a failure"
    assert warnings(world) == [("ServeConfigSubmittedFailed", 1)]
    condition = failed_condition(world)
    assert (condition["status"], condition["reason"]) == ("True", "PermanentError")
    assert "token refused" in str(condition["message"])
    assert "not retried until it changes" in str(condition["message"])
    # refused for good on the cluster meant to run it: the generation is observed, so
    # apply --wait ends with the failure instead of waiting forever
    assert world.resource().status["observedGeneration"] == 1

    def new_price(config: dict[str, object]) -> None:
        config["applications"][0]["deployments"][0]["user_config"]["price"] = 4  # type: ignore[index]

    world.serve.clear_failures()
    world.apply(sample_manifest(new_price))
    world.reconcile()

    assert world.deploys() == 2, "a changed config is tried at once"
    assert world.resource().record["failures"] == {}
    condition = failed_condition(world)
    assert (condition["status"], condition["reason"]) == ("False", "NoFailure")


def test_a_temporary_failure_is_retried_after_a_doubling_back_off(world: World) -> None:
    world.serve.fail("deploy", UNAVAILABLE)
    start = world.clock.now + 2  # the pass of the first PUT

    reconcile_to_first_deploy(world)
    requeues = [world.reconcile().requeue_after for _ in range(12)]

    attempts = [c for c in world.serve.calls if c.operation == "deploy"]
    assert len(attempts) == 4  # at +0, +1, +3 and +7 s: back-offs of 1, 2 and 4 s
    assert DEPLOY_FOLLOW_UP not in requeues
    assert warnings(world) == [("ServeConfigSubmittedFailed", 4)], "one event, counted"
    failure = world.resource().record["failures"][f"DeployServeConfig/{world.cluster().name}"]
    assert (failure["kind"], failure["attempts"]) == ("Temporary", 4)
    assert failure["retry_at"] == start + 7 + 8
    condition = failed_condition(world)
    assert (condition["status"], condition["reason"]) == ("True", "TemporaryError")
    assert "attempt 4" in str(condition["message"])
    assert world.resource().status["observedGeneration"] == 0, "not observed while retrying"

    world.serve.clear_failures()
    for _ in range(8):
        world.reconcile()
        if world.deploys() == 5:
            break

    assert world.clock.now == start + 15, "the fifth attempt came when its back-off ended"
    world.reconcile()
    assert world.resource().record["failures"] == {}
    assert failed_condition(world)["status"] == "False"


def test_a_failed_provider_call_is_held_back_for_its_back_off(world: World) -> None:
    world.provider.fail_next_ensure(TemporaryError("no free port block"))

    world.reconcile()
    held = world.reconciler.reconcile(world.resource())  # within the 1 s back-off

    assert [type(a).__name__ for a in held.actions] == ["EnsureFront"]
    assert world.provider.clusters() == []
    world.reconcile()
    assert world.provider.clusters() != [], "tried again once the back-off is over"


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (UNAVAILABLE, FailureKind.TEMPORARY),
        (REFUSED, FailureKind.PERMANENT),
        (ServeConfigRejected("bad import_path"), FailureKind.REJECTED),
        (InvalidSpec([]), FailureKind.PERMANENT),
    ],
)
def test_each_error_type_has_one_meaning(error: Exception, kind: FailureKind) -> None:
    assert kind_of(error) is kind  # type: ignore[arg-type]


def test_back_off_starts_at_a_second_doubles_and_stops_at_a_minute() -> None:
    assert [backoff(n, 0.0) for n in range(1, 8)] == [1, 2, 4, 8, 16, 32, MAX_BACKOFF]
    assert backoff(30, 0.99) == MAX_BACKOFF
    assert 1.0 <= backoff(1, 0.5) <= 1.25, "jitter spreads retries but never below a second"
