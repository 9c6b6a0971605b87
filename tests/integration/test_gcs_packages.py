"""A real Ray head takes this machine's packages from its GCS: the Serve client of the Kubernetes
backend ships a packaged working_dir and py_module through the dashboard's package API, and the
app Ray builds from them answers. Ray runs here, but is sent only ``gcs://`` URIs, as pods would
be."""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from rayservice.api.packaging import resolve_working_dirs
from rayservice.host.processes import stop_sessions
from rayservice.planner.readiness import deployable_config
from rayservice.serve_client.dashboard import DashboardServeClient
from rayservice.spec.errors import TemporaryError
from tests.helpers import eventually

RAY = str(Path(sys.executable).with_name("ray"))
APP = """\
from ray import serve

from greeting import GREETING


@serve.deployment(ray_actor_options={"num_cpus": 0})
class Greeter:
    def __call__(self, request) -> str:
        return GREETING


app = Greeter.bind()
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextlib.contextmanager
def ray_head(logs: Path) -> Iterator[tuple[str, str]]:
    """A Ray head with token authentication on loopback; yields its dashboard URL and token.
    Its temporary folder is short: Ray's socket paths must fit in 107 characters."""
    dashboard, gcs = free_port(), free_port()
    token = secrets.token_hex(16)
    env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token}
    env["RAY_USAGE_STATS_ENABLED"] = "0"
    args = [
        RAY, "start", "--head", "--block", "--disable-usage-stats", "--num-cpus=1",
        "--node-ip-address=127.0.0.1", f"--port={gcs}", "--dashboard-host=127.0.0.1",
        f"--dashboard-port={dashboard}", f"--memory={2 * 1024**3}",
    ]  # fmt: skip
    with (
        tempfile.TemporaryDirectory(prefix="rs-gcs-") as temp,
        (logs / "head.log").open("wb") as log,
    ):
        head = subprocess.Popen(
            [*args, f"--temp-dir={temp}"], env=env, stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        try:
            yield f"http://127.0.0.1:{dashboard}", token
        finally:
            stop_sessions([head.pid], grace_seconds=15)
            head.wait(timeout=15)


def answer(url: str) -> str | None:
    with contextlib.suppress(httpx.HTTPError):
        response = httpx.get(url, timeout=5)
        if response.status_code == httpx.codes.OK:
            return response.text
    return None


def test_a_head_builds_the_app_from_packages_shipped_to_its_gcs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "greeter.py").write_text(APP)
    (tmp_path / "greeting").mkdir()
    (tmp_path / "greeting" / "__init__.py").write_text('GREETING = "hello from the GCS"\n')
    app = {
        "name": "greeter",
        "import_path": "greeter:app",
        "route_prefix": "/",
        "runtime_env": {"working_dir": "./app", "py_modules": ["./greeting"]},
    }
    packages = tmp_path / "packages"
    packaged = resolve_working_dirs(
        {"applications": [app]}, tmp_path, packages, "test", may_read_local_paths=True
    )
    proxy_port = free_port()
    client = DashboardServeClient(ship_packages_from=packages, timeout=30)

    with ray_head(tmp_path) as (dashboard, token):
        eventually(
            lambda: _deployed(client, dashboard, token, deployable_config(packaged, proxy_port)),
            timeout=180,
            interval=1.0,
            message="the config is deployed",
        )
        eventually(
            lambda: answer(f"http://127.0.0.1:{proxy_port}/") == "hello from the GCS",
            timeout=180,
            interval=0.5,
            message="the app built from the shipped packages answers",
        )
        details = client.details(dashboard, token)
        asked: list[Path] = []
        shipping = client._ship

        def ship(url: str, token: str, cached: Path) -> None:
            asked.append(cached)
            shipping(url, token, cached)

        monkeypatch.setattr(client, "_ship", ship)
        with caplog.at_level(logging.WARNING):
            client.status(dashboard, token)  # the first one asks for the packages apps run

    client.close()
    assert sorted(asked) == sorted(packages.glob("*.zip"))  # both, read from Ray's own details
    assert "code package" not in caplog.text  # and Ray had them
    runtime_env = details["applications"]["greeter"]["deployed_app_config"]["runtime_env"]
    assert runtime_env["working_dir"].startswith("gcs://_ray_pkg_")
    assert runtime_env["py_modules"][0].startswith("gcs://_ray_pkg_")


def _deployed(
    client: DashboardServeClient, dashboard: str, token: str, config: dict[str, object]
) -> bool:
    """One deploy; False while the head, its dashboard or the dashboard's modules are still
    starting."""
    try:
        client.deploy(dashboard, token, config)
    except TemporaryError:
        return False
    return True
