"""The controller process: the control loop in a thread and the REST API in front of it.

This is where the real adapters are chosen and wired together (SQLite store, local provider,
dashboard Serve client, HAProxy front), so it belongs to the control layer, which may import
all of them. The web app is the API layer's, above this one: the caller passes its factory in.

``rayservice controller`` runs this in the foreground. It writes its pid to ``pid_file`` so
``rayservice stop`` can find it; stopping it leaves every cluster and endpoint running, and
the next controller adopts them. It opens the store (creating the home folder) before anything
else: a store that cannot be used stops the start with the store's error, and one that opened
cleanly is copied to its backup first.
"""

from __future__ import annotations

import importlib
import logging
import os
import signal
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import FrameType
from typing import Any, Protocol

import uvicorn
from prometheus_client import CollectorRegistry

from rayservice.controller.loop import ControlLoop
from rayservice.controller.metrics import ControllerMetrics
from rayservice.controller.reconciler import Reconciler
from rayservice.host.addresses import refuse_exposed_without_token
from rayservice.host.ports import port_is_free
from rayservice.providers.base import ClusterProvider
from rayservice.providers.local import LocalProvider, runtime_root
from rayservice.providers.ray_autoscaler import ApiAccess
from rayservice.serve_client.base import ServeClient
from rayservice.serve_client.dashboard import DashboardServeClient
from rayservice.serve_client.jobs import DashboardJobClient, JobClient
from rayservice.spec.addresses import reachable_from_here
from rayservice.spec.errors import RayServiceError
from rayservice.spec.service_exposure import DEFAULT_EXPOSURE, ExposureSettings
from rayservice.store.base import Store
from rayservice.store.sqlite import SqliteStore
from rayservice.traffic.haproxy import HaproxyFront

log = logging.getLogger("rayservice.controller")


class AppFactory(Protocol):
    """(store, provider, package cache folder, wake the loop; the registry ``GET /metrics``
    serves, the API token, Ray's Serve and job APIs, where exposed Services listen) -> the
    ASGI app of the REST API"""

    def __call__(
        self,
        store: Store,
        provider: ClusterProvider,
        packages: Path,
        wake: Callable[[], None],
        /,
        *,
        metrics_registry: CollectorRegistry | None = None,
        token: str | None = None,
        serve: ServeClient | None = None,
        jobs: JobClient | None = None,
        exposure: ExposureSettings = DEFAULT_EXPOSURE,
    ) -> Callable[..., Awaitable[Any]]: ...


def _preload_validators() -> None:
    """Admission checks manifests with Ray's own Serve schema and ``ray start`` options, which
    take most of a second to import; importing them at start keeps the first apply fast."""
    for module in ("ray.serve.schema", "ray.scripts.scripts"):
        importlib.import_module(module)


def _exit_on_sigterm(signum: int, frame: FrameType | None) -> None:
    """uvicorn stops on SIGTERM and then raises the signal again for the handler it found:
    exiting through SystemExit (not the default, which kills at once) lets the loop stop and
    the pid file go."""
    raise SystemExit(0)


def serve_forever(
    home: Path,
    create_app: AppFactory,
    *,
    host: str,
    port: int,
    pid_file: Path,
    token: str | None = None,
    exposure: ExposureSettings = DEFAULT_EXPOSURE,
) -> None:
    """Run the control loop and serve the REST API on ``host:port`` until SIGINT or SIGTERM.

    With ``token`` every request but the health check must carry it; without one, a ``host``
    beyond loopback raises :class:`ExposedWithoutToken` before anything starts. ``exposure``
    says where Services asking to be reachable from other hosts listen.
    """
    refuse_exposed_without_token(host, token)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)  # probes run every half second
    store = SqliteStore(home / "state.db")  # makes home; refuses a damaged file
    try:
        store.back_up()
    except RayServiceError as e:  # the store itself works: the controller can run
        log.warning("the store was not backed up: %s", e)
    local = reachable_from_here(host)
    api_url = f"http://{f'[{local}]' if ':' in local else local}:{port}"
    provider = LocalProvider(home, autoscaler_api=ApiAccess(api_url, token))
    metrics = ControllerMetrics(store)
    reconciler = Reconciler(
        store=store,
        provider=provider,
        serve=DashboardServeClient(),
        front=HaproxyFront(home / "fronts", socket_dir=runtime_root(home)),
        port_usable=port_is_free,
        clock=time.time,
        metrics=metrics,
        exposure=exposure,
    )
    loop = ControlLoop(reconciler)
    app = create_app(
        store,
        provider,
        home / "packages",
        loop.wake,
        metrics_registry=metrics.registry,
        token=token,
        serve=DashboardServeClient(),
        jobs=DashboardJobClient(),
        exposure=exposure,
    )
    worker = threading.Thread(target=loop.run, name="control-loop", daemon=True)
    pid_file.write_text(str(os.getpid()))
    worker.start()
    threading.Thread(target=_preload_validators, name="preload", daemon=True).start()
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        uvicorn.run(app, host=host, port=port, log_level="warning")
    finally:
        loop.stop()
        worker.join(timeout=30)
        pid_file.unlink(missing_ok=True)
