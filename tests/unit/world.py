"""The reconciler's world for unit tests: a real SQLite store, the in-tree fakes for the
provider, the Serve client and the traffic front, and a fake clock, so a test drives a
RayService pass by pass and nothing waits. Shared by the reconciler, upgrade, rollout, failure
and diff tests; the ``world`` fixture (``conftest.py``) builds one with the sample applied.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import yaml

from rayservice.controller.reconciler import Reconciler
from rayservice.planner.actions import Plan
from rayservice.providers.fake import FakeProvider
from rayservice.serve_client.fake import FakeServeClient, running_state
from rayservice.spec.manifest import RayService
from rayservice.spec.observed import ObservedCluster
from rayservice.spec.service_exposure import DEFAULT_EXPOSURE, ExposureSettings
from rayservice.spec.status import RayServiceStatus
from rayservice.spec.vocabulary import KIND
from rayservice.store.base import StoredResource
from rayservice.store.sqlite import SqliteStore
from rayservice.traffic.fake import FakeFront

SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "ray-service.sample.yaml"
REMOTE_APPS = "https://example.invalid/apps.zip"  # never fetched: only Ray would
NAME, NAMESPACE, OWNER = "rayservice-sample", "default", "default/rayservice-sample"
FRONT_KEY = "default.rayservice-sample"
T0 = 1_714_557_600.0


class FakeClock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def sample_manifest(
    serve_config_edit: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """The sample RayService with its apps at a remote URI, as the API would store it."""
    text = SAMPLE.read_text().replace("working_dir: ./apps", f"working_dir: {REMOTE_APPS}")
    assert REMOTE_APPS in text
    service = RayService.model_validate(yaml.safe_load(text))
    document = service.model_dump(mode="json", exclude_unset=True)
    if serve_config_edit is not None:
        config = yaml.safe_load(document["spec"]["serveConfigV2"])
        serve_config_edit(config)
        document["spec"]["serveConfigV2"] = yaml.safe_dump(config)
    return document


@dataclass
class World:
    store: SqliteStore
    provider: FakeProvider
    serve: FakeServeClient
    front: FakeFront
    clock: FakeClock
    reconciler: Reconciler

    def apply(self, document: dict[str, Any] | None = None) -> StoredResource:
        return self.store.apply(KIND, document or sample_manifest(), SAMPLE.name, self.clock())

    def resource(self, name: str = NAME) -> StoredResource:
        resource = self.store.get(KIND, NAMESPACE, name)
        assert resource is not None
        return resource

    def reconcile(self, name: str = NAME) -> Plan[RayServiceStatus]:
        self.clock.now += 1
        return cast(Plan[RayServiceStatus], self.reconciler.reconcile(self.resource(name)))

    def restart_controller(self) -> None:
        """A new controller on the same store and the same outside world."""
        self.reconciler = new_reconciler(
            self.store, self.provider, self.serve, self.front, self.clock
        )

    def cluster(self) -> ObservedCluster:
        [name] = self.provider.clusters(OWNER)
        cluster = self.provider.observe(name)
        assert cluster is not None
        return cluster

    def deploys(self) -> int:
        return sum(1 for c in self.serve.calls if c.operation == "deploy")

    def event_reasons(self) -> list[str]:
        return [e.reason for e in self.store.events(NAMESPACE, NAME)]

    def bring_up(self) -> Plan[RayServiceStatus]:
        """Reconcile while the fakes come up like a real cluster would: head, Serve, proxies."""
        self.reconcile()  # creates the cluster
        name = self.cluster().name
        self.provider.make_head_ready(name)
        self.reconcile()  # submits the Serve config
        url = self.cluster().dashboard_url
        deployed = self.serve.last_deployed(url)
        assert deployed is not None
        self.serve.set_state(url, running_state(deployed))
        self.provider.mark_proxies_ready(name)
        return self.reconcile()


def new_reconciler(
    store: SqliteStore,
    provider: FakeProvider,
    serve: FakeServeClient,
    front: FakeFront,
    clock: FakeClock,
    port_usable: Callable[[int, str], bool] = lambda port, address: True,
    exposure: ExposureSettings = DEFAULT_EXPOSURE,
) -> Reconciler:
    return Reconciler(
        store, provider, serve, front, port_usable, clock, jitter=lambda: 0.0, exposure=exposure
    )


def world_around(store: SqliteStore, clock: FakeClock | None = None) -> World:
    """The reconciler's world around ``store`` (nothing applied by it), with fresh fakes."""
    clock = clock or FakeClock()
    provider, serve, front = FakeProvider(clock=clock), FakeServeClient(), FakeFront()
    return World(
        store, provider, serve, front, clock, new_reconciler(store, provider, serve, front, clock)
    )
