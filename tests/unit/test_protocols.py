"""Every adapter, real or fake, satisfies the Protocol it stands behind.

mypy --strict runs over the tests, so these typed assignments are the check: a fake that drifts
from its Protocol (a missing method, another signature) fails type-checking, and the unit tests
written against the fake would otherwise prove nothing about the real adapter. The test below
only makes sure the fakes can be built the way the assignments say.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from rayservice.providers.base import ClusterProvider
from rayservice.providers.fake import FakeProvider
from rayservice.serve_client.base import ServeClient
from rayservice.serve_client.fake import FakeServeClient
from rayservice.serve_client.fake_jobs import FakeJobClient
from rayservice.serve_client.jobs import JobClient
from rayservice.store.base import Store
from rayservice.store.sqlite import SqliteStore
from rayservice.traffic.base import TrafficFront
from rayservice.traffic.fake import FakeFront

if TYPE_CHECKING:
    from rayservice.providers.local import LocalProvider
    from rayservice.serve_client.dashboard import DashboardServeClient
    from rayservice.serve_client.jobs import DashboardJobClient
    from rayservice.traffic.haproxy import HaproxyFront

    def _real_adapters(home: Path) -> None:
        provider: ClusterProvider = LocalProvider(home)
        serve: ServeClient = DashboardServeClient()
        jobs: JobClient = DashboardJobClient()
        front: TrafficFront = HaproxyFront(home / "fronts", socket_dir=home)
        del provider, serve, jobs, front


def test_the_fakes_stand_in_for_their_protocols(tmp_path: Path) -> None:
    provider: ClusterProvider = FakeProvider()
    serve: ServeClient = FakeServeClient()
    jobs: JobClient = FakeJobClient()
    front: TrafficFront = FakeFront()
    store: Store = SqliteStore(tmp_path / "state.db")

    assert provider.clusters() == []
    assert front.keys() == []
    assert store.list_resources("RayService") == []
    assert serve is not None
    assert jobs.list("http://127.0.0.1:8265", "token") == []
