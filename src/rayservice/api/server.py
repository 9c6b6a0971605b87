"""The controller process: the control loop in a thread and the REST API in front of it.

``rayservice controller`` runs this in the foreground. It writes its pid to
``$RAYSERVICE_HOME/controller.pid`` so ``rayservice stop`` can find it; stopping it leaves
every cluster and endpoint running, and the next controller adopts them.
"""

from __future__ import annotations

import importlib
import logging
import os
import threading
import time
from pathlib import Path

import uvicorn

from rayservice.api.app import create_app
from rayservice.api.settings import API_HOST, pid_file
from rayservice.controller.loop import ControlLoop
from rayservice.controller.reconciler import Reconciler
from rayservice.providers.local import LocalProvider, runtime_root
from rayservice.serve_client.dashboard import DashboardServeClient
from rayservice.store.sqlite import SqliteStore
from rayservice.traffic.haproxy import HaproxyFront
from rayservice.traffic.ports import port_is_free


def _preload_validators() -> None:
    """Admission checks manifests with Ray's own Serve schema and ``ray start`` options, which
    take most of a second to import; importing them at start keeps the first apply fast."""
    for module in ("ray.serve.schema", "ray.scripts.scripts"):
        importlib.import_module(module)


def serve_forever(home: Path, port: int) -> None:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)  # probes run every half second
    home.mkdir(parents=True, exist_ok=True)
    store = SqliteStore(home / "state.db")
    provider = LocalProvider(home)
    reconciler = Reconciler(
        store=store,
        provider=provider,
        serve=DashboardServeClient(),
        front=HaproxyFront(home / "fronts", socket_dir=runtime_root(home)),
        port_usable=port_is_free,
        clock=time.time,
    )
    loop = ControlLoop(reconciler)
    app = create_app(store, provider, home / "packages", loop.wake)
    worker = threading.Thread(target=loop.run, name="control-loop", daemon=True)
    pid_file(home).write_text(str(os.getpid()))
    worker.start()
    threading.Thread(target=_preload_validators, name="preload", daemon=True).start()
    try:
        uvicorn.run(app, host=API_HOST, port=port, log_level="warning")
    finally:
        loop.stop()
        worker.join(timeout=30)
        pid_file(home).unlink(missing_ok=True)
