"""ControlLoop.run_once: one failing service neither stops the loop nor the other services,
it backs off, and what belongs to no stored service is cleaned up."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from rayservice.controller.loop import BATCH_WINDOW, IDLE_WAIT, ORPHAN_SCAN_SECONDS, ControlLoop
from rayservice.controller.reconciler import AnyPlan, Reconciler
from rayservice.providers.fake import FakeProvider
from rayservice.serve_client.fake import FakeServeClient
from rayservice.spec.cluster_request import ClusterRequest, NodeGroupRequest
from rayservice.spec.errors import TemporaryError
from rayservice.spec.observed import FrontSpec
from rayservice.spec.vocabulary import KIND
from rayservice.store.base import StoredResource
from rayservice.store.sqlite import SqliteStore
from rayservice.traffic.fake import FakeFront

T0 = 1_714_557_600.0
SERVE_CONFIG = "applications:\n- name: app1\n  import_path: hello:app\n  route_prefix: /\n"


def manifest(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "ray.io/v1",
        "kind": "RayService",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "serveConfigV2": SERVE_CONFIG,
            "rayClusterConfig": {
                "headGroupSpec": {"rayStartParams": {}, "template": {}},
                "workerGroupSpecs": [{"groupName": "small", "replicas": 1}],
            },
        },
    }


class FailingReconciler(Reconciler):
    """Reconciles normally, except services in ``failing`` whose reconcile raises."""

    def __init__(self, *args: Any, failing: dict[str, Exception], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.failing = failing
        self.attempts: list[str] = []

    def reconcile(self, resource: StoredResource) -> AnyPlan:
        self.attempts.append(resource.key)
        error = self.failing.get(resource.key)
        if error is not None:
            raise error
        return super().reconcile(resource)


def make_loop(
    tmp_path: Path, failing: dict[str, Exception] | None = None
) -> tuple[ControlLoop, FailingReconciler, FakeProvider, FakeFront]:
    store = SqliteStore(tmp_path / "store.db")
    provider, front = FakeProvider(clock=lambda: T0), FakeFront()
    reconciler = FailingReconciler(
        store,
        provider,
        FakeServeClient(),
        front,
        lambda port, address: True,
        lambda: T0,
        failing=failing or {},
    )
    return ControlLoop(reconciler, monotonic=TICKS), reconciler, provider, front


class Ticks:
    """The loop's monotonic clock, moved by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


TICKS = Ticks()


def warnings_of(loop: ControlLoop, name: str) -> list[tuple[str, str, int]]:
    return [
        (e.reason, e.message, e.count)
        for e in loop.store.events("default", name)
        if e.type == "Warning"
    ]


@pytest.mark.parametrize(
    ("error", "message"),
    [
        (RuntimeError("boom"), "unexpected error: boom"),
        (TemporaryError("store busy"), "TemporaryError: store busy"),
    ],
    ids=["unexpected-error", "rayservice-error"],
)
def test_a_failing_service_is_reported_and_does_not_stop_the_others(
    tmp_path: Path, error: Exception, message: str
) -> None:
    loop, reconciler, provider, _ = make_loop(tmp_path, {"default/broken": error})
    loop.store.apply(KIND, manifest("broken"), "broken.yaml", T0)
    loop.store.apply(KIND, manifest("healthy"), "healthy.yaml", T0)

    loop.run_once()

    assert reconciler.attempts == ["default/broken", "default/healthy"]
    assert warnings_of(loop, "broken") == [("ReconcileFailed", message, 1)]
    assert provider.clusters("default/healthy"), "the healthy service got its cluster"
    assert provider.clusters("default/broken") == []


def test_a_store_that_cannot_record_the_failure_still_lets_the_others_through(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    loop, reconciler, provider, _ = make_loop(tmp_path, {"default/broken": RuntimeError("boom")})
    loop.store.apply(KIND, manifest("broken"), "broken.yaml", T0)
    loop.store.apply(KIND, manifest("healthy"), "healthy.yaml", T0)

    def locked(*args: object) -> None:
        raise TemporaryError("database is locked")

    monkeypatch.setattr(loop.store, "add_event", locked)
    wait = loop.run_once()

    assert reconciler.attempts == ["default/broken", "default/healthy"]
    assert provider.clusters("default/healthy"), "the healthy service got its cluster"
    assert 0.5 < wait <= 1.0  # the broken one still backs off


def test_a_failing_service_backs_off(tmp_path: Path) -> None:
    loop, reconciler, _, _ = make_loop(tmp_path, {"default/broken": RuntimeError("boom")})
    loop.store.apply(KIND, manifest("broken"), "broken.yaml", T0)

    first_wait = loop.run_once()
    loop.run_once()  # at once: the service is not due yet

    assert reconciler.attempts == ["default/broken"]
    assert 0.5 < first_wait <= 1.0  # 2**1 * 0.5 seconds after the first failure

    loop.wake()  # an apply makes everything due again
    second_wait = loop.run_once()

    assert reconciler.attempts == ["default/broken", "default/broken"]
    assert second_wait > first_wait  # the delay doubles (capped by the idle wait)
    assert second_wait <= IDLE_WAIT
    assert warnings_of(loop, "broken") == [("ReconcileFailed", "unexpected error: boom", 2)]


def test_a_recovered_service_returns_to_its_own_requeue_time(tmp_path: Path) -> None:
    failing: dict[str, Exception] = {"default/flaky": RuntimeError("boom")}
    loop, reconciler, provider, _ = make_loop(tmp_path, failing)
    loop.store.apply(KIND, manifest("flaky"), "flaky.yaml", T0)
    loop.run_once()

    failing.clear()
    loop.wake()
    wait = loop.run_once()

    assert reconciler.attempts == ["default/flaky", "default/flaky"]
    assert provider.clusters("default/flaky")
    assert wait <= 0.5  # a starting service is looked at again soon


def test_orphan_clusters_and_fronts_are_deleted(tmp_path: Path) -> None:
    loop, _, provider, front = make_loop(tmp_path)
    loop.store.apply(KIND, manifest("kept"), "kept.yaml", T0)
    provider.ensure(
        ClusterRequest(
            name="gone-raycluster-bbbbb",
            owner="default/gone",
            spec_hash="0123456789abcdef",
            head=NodeGroupRequest(group="headgroup"),
        )
    )
    front.ensure("default.gone", FrontSpec(serve_port=9000, dashboard_port=9001))

    loop.run_once()

    [kept_cluster] = provider.clusters()
    observed = provider.observe(kept_cluster)
    assert observed is not None and observed.owner == "default/kept"
    assert front.keys() == ["default.kept"]
    assert [c.name for c in provider.calls_to("delete")] == ["gone-raycluster-bbbbb"]


def test_a_crashed_front_of_a_gone_service_is_still_deleted(tmp_path: Path) -> None:
    loop, _, _, front = make_loop(tmp_path)
    front.ensure("default.gone", FrontSpec(serve_port=9000, dashboard_port=9001))
    front.crash("default.gone")

    wait = loop.run_once()

    assert front.keys() == []
    assert wait == IDLE_WAIT  # nothing stored: nothing is due


def test_orphans_are_looked_for_at_the_first_tick_then_every_scan_interval(tmp_path: Path) -> None:
    loop, _, _, front = make_loop(tmp_path)
    loop.run_once()  # the first scan
    front.ensure("default.gone", FrontSpec(serve_port=9000, dashboard_port=9001))

    loop.run_once()
    assert front.keys() == ["default.gone"], "not scanned again on every tick"

    TICKS.now += ORPHAN_SCAN_SECONDS
    loop.run_once()
    assert front.keys() == []


def test_services_due_within_the_batch_window_share_a_tick(tmp_path: Path) -> None:
    loop, reconciler, _, _ = make_loop(tmp_path)
    for name in ("a", "b"):
        loop.store.apply(KIND, manifest(name), f"{name}.yaml", T0)
    loop.run_once()
    passes = len(reconciler.attempts)
    loop._due["default/b"] = TICKS.now + BATCH_WINDOW / 2  # b is due a moment after a
    loop._due["default/a"] = TICKS.now

    loop.run_once()

    assert len(reconciler.attempts) == passes + 2, "both in one tick"
