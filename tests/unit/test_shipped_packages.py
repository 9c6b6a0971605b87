"""This machine's packages shipped to a cluster's GCS (the Kubernetes backend): the form Ray
unpacks as it is, the config naming them there, and the dashboard calls that put them there."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from rayservice.api.packaging import package_py_module, package_working_dir
from rayservice.serve_client.dashboard import PACKAGES_KEPT_EVERY, DashboardServeClient
from rayservice.serve_client.packages import cached_zips, gcs_form, naming_the_gcs
from rayservice.spec.errors import PermanentError, TemporaryError
from tests.unit.test_packaging import files_below, write_app, zip_path

DASHBOARD = "https://kubernetes.test/api/v1/namespaces/team/services/svc-head-svc:dashboard/proxy"


def unpacked_as_ray_does(package: bytes, tmp_path: Path) -> Path:
    """Where Ray unpacks a GCS package: as it is, no top-level folder stripped."""
    from ray._private.runtime_env.packaging import unzip_package

    archive, target = tmp_path / "from-gcs.zip", tmp_path / "unpacked"
    archive.write_bytes(package)
    unzip_package(
        package_path=str(archive),
        target_dir=str(target),
        remove_top_level_directory=False,
        unlink_zip=False,
    )
    return target


def test_a_shipped_working_dir_unpacks_into_the_folders_content(tmp_path: Path) -> None:
    app = write_app(tmp_path / "app")
    uri = package_working_dir(app, tmp_path / "packages")

    unpacked = unpacked_as_ray_does(gcs_form(zip_path(uri).read_bytes()), tmp_path)

    assert files_below(unpacked) == files_below(app)


def test_a_shipped_py_module_unpacks_under_its_own_name(tmp_path: Path) -> None:
    module = write_app(tmp_path / "pricing")
    uri = package_py_module(module, tmp_path / "packages")

    unpacked = unpacked_as_ray_does(gcs_form(zip_path(uri).read_bytes()), tmp_path)

    assert files_below(unpacked / "pricing") == files_below(module)


def config_of(*locations: str) -> dict[str, Any]:
    """An app per location, as its working_dir; the last one's also a py_modules entry."""
    apps: list[dict[str, Any]] = [
        {"name": f"app{i}", "import_path": "a:b", "runtime_env": {"working_dir": location}}
        for i, location in enumerate(locations)
    ]
    apps[-1]["runtime_env"]["py_modules"] = [locations[-1], "s3://bucket/mod.zip"]
    return {"applications": apps}


def test_only_the_caches_zips_are_named_in_the_gcs_once_each(tmp_path: Path) -> None:
    packages = tmp_path / "packages"
    uri = package_working_dir(write_app(tmp_path / "app"), packages)
    config = config_of(uri, "https://example.test/apps.zip", uri)

    named = naming_the_gcs(config, packages)

    assert list(cached_zips(config, packages)) == [zip_path(uri)]
    shipped = f"gcs://_ray_pkg_{zip_path(uri).name}"
    envs = [app["runtime_env"] for app in named["applications"]]
    assert [env["working_dir"] for env in envs] == [
        shipped,
        "https://example.test/apps.zip",
        shipped,
    ]
    assert envs[-1]["py_modules"] == [shipped, "s3://bucket/mod.zip"]
    assert config["applications"][0]["runtime_env"]["working_dir"] == uri  # not changed


class Dashboard:
    """A dashboard's package and Serve APIs, scripted: which packages its GCS has."""

    def __init__(
        self, has: set[str] | None = None, put_answer: int = 200, get_answer: int | None = None
    ) -> None:
        self.has = has or set()
        self.put_answer = put_answer
        self.get_answer = get_answer  # what a package's GET answers instead of 200/404
        self.calls: list[tuple[str, str]] = []
        self.uploads: dict[str, bytes] = {}
        self.deployed: dict[str, Any] | None = None

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path.partition("/proxy")[2]
        self.calls.append((request.method, path))
        name = path.removeprefix("/api/packages/gcs/")
        if request.method == "GET" and name != path:
            if self.get_answer is not None:
                return httpx.Response(self.get_answer, text="the GCS is not reachable")
            return httpx.Response(200 if name in self.has else 404)
        if request.method == "GET":  # Serve's details: each app as it was deployed
            apps = (self.deployed or {}).get("applications") or []
            return httpx.Response(200, json={"applications": {
                app["name"]: {"status": "RUNNING", "deployed_app_config": app, "deployments": {}}
                for app in apps
            }})  # fmt: skip
        if request.method == "PUT" and name != path:
            if self.put_answer == 200:
                self.uploads[name] = request.content
                self.has.add(name)
            return httpx.Response(self.put_answer, text="no GCS now")
        self.deployed = json.loads(request.content)
        return httpx.Response(200)


def client(
    dashboard: Dashboard, packages: Path, clock: Callable[[], float] = lambda: 0.0
) -> DashboardServeClient:
    return DashboardServeClient(
        transport=httpx.MockTransport(dashboard), ship_packages_from=packages, clock=clock
    )


def test_a_package_the_cluster_lacks_is_put_there_before_the_config(tmp_path: Path) -> None:
    packages = tmp_path / "packages"
    uri = package_working_dir(write_app(tmp_path / "app"), packages)
    name = f"_ray_pkg_{zip_path(uri).name}"
    dashboard = Dashboard()

    client(dashboard, packages).deploy(DASHBOARD, "", config_of(uri))

    assert dashboard.calls == [
        ("GET", f"/api/packages/gcs/{name}"),
        ("PUT", f"/api/packages/gcs/{name}"),
        ("PUT", "/api/serve/applications/"),
    ]
    assert dashboard.uploads[name] == gcs_form(zip_path(uri).read_bytes())
    assert dashboard.deployed is not None
    [app] = dashboard.deployed["applications"]
    assert app["runtime_env"]["working_dir"] == f"gcs://{name}"


def test_a_package_the_cluster_has_is_not_sent_again(tmp_path: Path) -> None:
    packages = tmp_path / "packages"
    uri = package_working_dir(write_app(tmp_path / "app"), packages)
    dashboard = Dashboard(has={f"_ray_pkg_{zip_path(uri).name}"})

    client(dashboard, packages).deploy(DASHBOARD, "", config_of(uri))

    assert [method for method, _ in dashboard.calls] == ["GET", "PUT"]
    assert dashboard.uploads == {}


def test_a_failed_upload_deploys_nothing_and_is_tried_again(tmp_path: Path) -> None:
    packages = tmp_path / "packages"
    uri = package_working_dir(write_app(tmp_path / "app"), packages)
    dashboard = Dashboard(put_answer=503)

    with pytest.raises(TemporaryError, match="503"):
        client(dashboard, packages).deploy(DASHBOARD, "", config_of(uri))

    assert dashboard.deployed is None


def test_a_package_gone_from_the_cache_says_to_apply_again_and_is_tried_again(
    tmp_path: Path,
) -> None:
    packages = tmp_path / "packages"
    uri = package_working_dir(write_app(tmp_path / "app"), packages)
    zip_path(uri).unlink()

    with pytest.raises(TemporaryError, match="apply the manifest again"):
        client(Dashboard(), packages).deploy(DASHBOARD, "", config_of(uri))


def test_a_package_larger_than_ray_takes_is_refused_for_good(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("rayservice.serve_client.packages.MAX_PACKAGE_BYTES", 100)

    with pytest.raises(PermanentError, match="leave large files out of the folder"):
        deployed_with_a_package(tmp_path, dashboard := Dashboard())

    assert dashboard.uploads == {} and dashboard.deployed is None


def test_a_package_the_dashboard_cannot_answer_for_is_tried_again(tmp_path: Path) -> None:
    with pytest.raises(TemporaryError, match="500"):
        deployed_with_a_package(tmp_path, dashboard := Dashboard(get_answer=500))

    assert dashboard.uploads == {} and dashboard.deployed is None


def deployed_with_a_package(tmp_path: Path, dashboard: Dashboard) -> None:
    packages = tmp_path / "packages"
    uri = package_working_dir(write_app(tmp_path / "app"), packages)
    client(dashboard, packages).deploy(DASHBOARD, "", config_of(uri))


def test_a_deployments_own_runtime_env_is_shipped_too(tmp_path: Path) -> None:
    packages = tmp_path / "packages"
    uri = package_py_module(write_app(tmp_path / "pricing"), packages)
    deployment = {"name": "Stand", "ray_actor_options": {"runtime_env": {"py_modules": [uri]}}}
    config = {"applications": [{"name": "a", "import_path": "a:b", "deployments": [deployment]}]}
    dashboard = Dashboard()

    client(dashboard, packages).deploy(DASHBOARD, "", config)

    assert dashboard.deployed is not None
    [sent] = dashboard.deployed["applications"][0]["deployments"]
    assert sent["ray_actor_options"]["runtime_env"]["py_modules"] == [
        f"gcs://_ray_pkg_{zip_path(uri).name}"
    ]
    assert list(dashboard.uploads) == [f"_ray_pkg_{zip_path(uri).name}"]


def test_the_packages_apps_run_are_asked_for_every_few_minutes_and_put_back(
    tmp_path: Path,
) -> None:
    packages = tmp_path / "packages"
    uri = package_working_dir(write_app(tmp_path / "app"), packages)
    name = f"_ray_pkg_{zip_path(uri).name}"
    now = [0.0]
    dashboard = Dashboard()
    serve = client(dashboard, packages, clock=lambda: now[0])
    serve.deploy(DASHBOARD, "", config_of(uri))
    serve.status(DASHBOARD, "")  # asked for them now: the next ask is due in a few minutes
    dashboard.has.clear()  # Ray dropped it (say its only replica restarted after the pin)
    dashboard.calls.clear()

    now[0] = PACKAGES_KEPT_EVERY - 1
    serve.status(DASHBOARD, "")
    asked_early = list(dashboard.calls)
    now[0] = PACKAGES_KEPT_EVERY + 1
    serve.status(DASHBOARD, "")

    assert asked_early == [("GET", "/api/serve/applications/")]
    assert dashboard.calls[len(asked_early) :] == [
        ("GET", "/api/serve/applications/"),
        ("GET", f"/api/packages/gcs/{name}"),
        ("PUT", f"/api/packages/gcs/{name}"),
    ]
    assert name in dashboard.has


def test_a_package_that_cannot_be_put_back_does_not_stop_the_others_being_kept(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    packages = tmp_path / "packages"
    ours = package_working_dir(write_app(tmp_path / "app"), packages)
    theirs = "gcs://_ray_pkg_0123456789abcdef.zip"  # put there by `ray job submit`, say
    config = config_of(theirs, ours)
    dashboard = Dashboard(has={"_ray_pkg_0123456789abcdef.zip"})
    serve = client(dashboard, packages)
    serve.deploy(DASHBOARD, "", config)
    dashboard.has.clear()  # Ray dropped both

    serve.status(DASHBOARD, "")

    assert dashboard.has == {f"_ray_pkg_{zip_path(ours).name}"}  # ours put back
    assert "_ray_pkg_0123456789abcdef.zip" in caplog.text
    assert "package cache has no" in caplog.text


def test_a_failure_to_keep_the_packages_leaves_the_status_as_it_is_and_waits_its_turn(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    packages = tmp_path / "packages"
    uri = package_working_dir(write_app(tmp_path / "app"), packages)
    now = [0.0]
    dashboard = Dashboard()
    serve = client(dashboard, packages, clock=lambda: now[0])
    serve.deploy(DASHBOARD, "", config_of(uri))
    dashboard.get_answer = 503

    state = serve.status(DASHBOARD, "")
    now[0] = 5.0
    dashboard.calls.clear()
    serve.status(DASHBOARD, "")  # the next pass: no asking again at once

    assert [app.status for app in state.apps] == ["RUNNING"]
    assert "keeping the code packages" in caplog.text and "503" in caplog.text
    assert dashboard.calls == [("GET", "/api/serve/applications/")]


def test_without_a_cache_to_ship_from_the_config_goes_as_it_is(tmp_path: Path) -> None:
    uri = package_working_dir(write_app(tmp_path / "app"), tmp_path / "packages")
    dashboard = Dashboard()

    DashboardServeClient(transport=httpx.MockTransport(dashboard)).deploy(
        DASHBOARD, "", config_of(uri)
    )

    assert dashboard.calls == [("PUT", "/api/serve/applications/")]
    assert dashboard.deployed == config_of(uri)
