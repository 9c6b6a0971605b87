"""Content-addressed packaging of local working_dir and py_modules folders.

The URI must change exactly when the code changes, and the zip must unpack, the way Ray
unpacks a remote zip, into the folder's content (or, for a py_module, into the module).
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest

from rayservice.api.packaging import (
    TOP_LEVEL_FOLDER,
    package_py_module,
    package_working_dir,
    resolve_working_dirs,
)
from rayservice.spec.errors import InvalidSpec

SOURCE = "ray-service.sample.yaml"


def write_app(directory: Path, greeting: str = "hello world") -> Path:
    (directory / "lib").mkdir(parents=True)
    (directory / "hello.py").write_text(f"GREETING = {greeting!r}\n")
    (directory / "lib" / "__init__.py").write_text("")
    return directory


def zip_path(uri: str) -> Path:
    parsed = urlparse(uri)
    assert parsed.scheme == "file"
    return Path(parsed.path)


def serve_config(working_dir: str, py_modules: list[str] | None = None) -> dict[str, Any]:
    runtime_env: dict[str, Any] = {"working_dir": working_dir}
    if py_modules is not None:
        runtime_env["py_modules"] = py_modules
    return {
        "applications": [
            {"name": "simple_app", "import_path": "hello:app", "runtime_env": runtime_env}
        ]
    }


def files_below(directory: Path) -> dict[str, str]:
    return {
        path.relative_to(directory).as_posix(): path.read_text()
        for path in sorted(directory.rglob("*"))
        if path.is_file()
    }


def test_the_uri_names_an_absolute_zip_by_content_hash(tmp_path: Path) -> None:
    uri = package_working_dir(write_app(tmp_path / "app"), tmp_path / "packages")

    assert uri.startswith("file:///")
    path = zip_path(uri)
    assert path.parent == (tmp_path / "packages").resolve()
    assert len(path.stem) == 16
    assert int(path.stem, 16) >= 0
    assert path.suffix == ".zip"


def test_same_content_gives_the_same_uri_and_one_zip(tmp_path: Path) -> None:
    packages = tmp_path / "packages"
    first = package_working_dir(write_app(tmp_path / "one"), packages)
    written = zip_path(first).read_bytes()

    assert package_working_dir(write_app(tmp_path / "two"), packages) == first
    assert package_working_dir(tmp_path / "one", packages) == first
    assert [p.name for p in packages.iterdir()] == [zip_path(first).name]
    assert zip_path(first).read_bytes() == written


def test_a_changed_file_gives_a_new_uri(tmp_path: Path) -> None:
    app = write_app(tmp_path / "app")
    before = package_working_dir(app, tmp_path / "packages")

    (app / "hello.py").write_text("GREETING = 'hello again'\n")
    after = package_working_dir(app, tmp_path / "packages")

    assert after != before
    assert zip_path(before).exists()
    assert zip_path(after).exists()


def test_a_new_empty_folder_gives_a_new_uri(tmp_path: Path) -> None:
    app = write_app(tmp_path / "app")
    before = package_working_dir(app, tmp_path / "packages")

    (app / "data").mkdir()

    assert package_working_dir(app, tmp_path / "packages") != before


def test_caches_and_version_control_are_left_out(tmp_path: Path) -> None:
    app = write_app(tmp_path / "app")
    clean = package_working_dir(app, tmp_path / "packages")

    (app / "__pycache__").mkdir()
    (app / "__pycache__" / "hello.cpython-311.pyc").write_bytes(b"\x00")
    (app / "lib" / "stale.pyc").write_bytes(b"\x00")
    (app / ".git").mkdir()
    (app / ".git" / "HEAD").write_text("ref: refs/heads/main\n")

    assert package_working_dir(app, tmp_path / "packages") == clean
    with zipfile.ZipFile(zip_path(clean)) as archive:
        assert archive.namelist() == [
            f"{TOP_LEVEL_FOLDER}/",
            f"{TOP_LEVEL_FOLDER}/hello.py",
            f"{TOP_LEVEL_FOLDER}/lib/",
            f"{TOP_LEVEL_FOLDER}/lib/__init__.py",
        ]
        assert {info.date_time for info in archive.infolist()} == {(1980, 1, 1, 0, 0, 0)}


def test_ray_unpacks_a_working_dir_into_the_folders_content(tmp_path: Path) -> None:
    from ray._private.runtime_env.packaging import unzip_package

    app = write_app(tmp_path / "app")
    uri = package_working_dir(app, tmp_path / "packages")

    unzip_package(
        package_path=str(zip_path(uri)),
        target_dir=str(tmp_path / "unpacked"),
        remove_top_level_directory=True,
        unlink_zip=False,
    )

    assert files_below(tmp_path / "unpacked") == files_below(app)


def test_ray_unpacks_a_py_module_under_its_own_name(tmp_path: Path) -> None:
    from ray._private.runtime_env.packaging import unzip_package

    module = write_app(tmp_path / "pricing")
    uri = package_py_module(module, tmp_path / "packages")

    unzip_package(
        package_path=str(zip_path(uri)),
        target_dir=str(tmp_path / "unpacked"),
        remove_top_level_directory=True,
        unlink_zip=False,
    )

    assert files_below(tmp_path / "unpacked" / "pricing") == files_below(module)


def test_no_temporary_file_is_left_behind(tmp_path: Path) -> None:
    packages = tmp_path / "packages"
    uri = package_working_dir(write_app(tmp_path / "app"), packages)

    assert list(packages.iterdir()) == [zip_path(uri)]


def test_a_relative_working_dir_resolves_against_the_manifest_folder(tmp_path: Path) -> None:
    manifests = tmp_path / "manifests"
    write_app(manifests / "apps")
    packages = tmp_path / "packages"

    resolved = resolve_working_dirs(
        serve_config("./apps"), manifests, packages, SOURCE, may_read_local_paths=True
    )

    working_dir = resolved["applications"][0]["runtime_env"]["working_dir"]
    assert working_dir == package_working_dir(manifests / "apps", packages)


def test_a_file_uri_of_a_folder_is_packaged(tmp_path: Path) -> None:
    app = write_app(tmp_path / "app")
    packages = tmp_path / "packages"

    resolved = resolve_working_dirs(
        serve_config(app.as_uri()), tmp_path, packages, SOURCE, may_read_local_paths=True
    )

    working_dir = resolved["applications"][0]["runtime_env"]["working_dir"]
    assert working_dir == package_working_dir(app, packages)


def test_local_py_modules_are_packaged_and_uris_kept(tmp_path: Path) -> None:
    write_app(tmp_path / "apps")
    write_app(tmp_path / "pricing")
    packages = tmp_path / "packages"
    wheel = "https://example.com/wheels/pricing-1.0-py3-none-any.whl"

    resolved = resolve_working_dirs(
        serve_config("apps", py_modules=["pricing", wheel]),
        tmp_path,
        packages,
        SOURCE,
        may_read_local_paths=True,
    )

    py_modules = resolved["applications"][0]["runtime_env"]["py_modules"]
    assert py_modules == [package_py_module(tmp_path / "pricing", packages), wheel]


def test_a_deployments_own_folders_are_packaged_with_their_field(tmp_path: Path) -> None:
    write_app(tmp_path / "stand")
    packages = tmp_path / "packages"
    runtime_env = {"working_dir": "stand", "py_modules": ["missing"]}
    deployment = {"name": "Stand", "ray_actor_options": {"runtime_env": runtime_env}}
    config = {"applications": [{"name": "a", "import_path": "a:b", "deployments": [deployment]}]}

    with pytest.raises(InvalidSpec) as refused:
        resolve_working_dirs(config, tmp_path, packages, SOURCE, may_read_local_paths=True)
    runtime_env["py_modules"] = []
    resolved = resolve_working_dirs(config, tmp_path, packages, SOURCE, may_read_local_paths=True)

    [problem] = refused.value.problems
    assert problem.field == (
        "spec.serveConfigV2.applications[0].deployments[0].ray_actor_options.runtime_env"
        ".py_modules[0]"
    )
    [stand] = resolved["applications"][0]["deployments"]
    assert stand["ray_actor_options"]["runtime_env"]["working_dir"] == package_working_dir(
        tmp_path / "stand", packages
    )


@pytest.mark.parametrize(
    "uri",
    [
        "https://github.com/example/apps/archive/main.zip",
        "s3://bucket/apps.zip",
        "gs://bucket/apps.zip",
        "local:///opt/apps",
        "file:///srv/packages/apps.zip",
    ],
)
def test_remote_uris_and_archives_pass_through(tmp_path: Path, uri: str) -> None:
    config = serve_config(uri, py_modules=[uri])

    resolved = resolve_working_dirs(
        config, tmp_path, tmp_path / "packages", SOURCE, may_read_local_paths=True
    )

    assert resolved == config
    assert not (tmp_path / "packages").exists()


def test_the_input_config_is_not_changed(tmp_path: Path) -> None:
    write_app(tmp_path / "apps")
    config = serve_config("apps")

    resolve_working_dirs(config, tmp_path, tmp_path / "packages", SOURCE, may_read_local_paths=True)

    assert config == serve_config("apps")


def test_apps_without_a_runtime_env_are_kept(tmp_path: Path) -> None:
    config = {
        "applications": [{"name": "a", "import_path": "m:app"}],
        "proxy_location": "EveryNode",
    }

    assert (
        resolve_working_dirs(
            config, tmp_path, tmp_path / "packages", SOURCE, may_read_local_paths=True
        )
        == config
    )


def test_missing_folders_are_all_reported_with_their_field(tmp_path: Path) -> None:
    config = serve_config("./apps", py_modules=["./pricing"])

    with pytest.raises(InvalidSpec) as invalid:
        resolve_working_dirs(
            config, tmp_path, tmp_path / "packages", SOURCE, may_read_local_paths=True
        )

    prefix = "spec.serveConfigV2.applications[0].runtime_env"
    working_dir, py_module = invalid.value.problems
    assert (working_dir.source, working_dir.field) == (SOURCE, f"{prefix}.working_dir")
    assert str(tmp_path / "apps") in working_dir.message
    assert working_dir.valid == "an existing directory relative to the manifest, or a remote URI"
    assert py_module.field == f"{prefix}.py_modules[0]"


def test_a_file_where_a_folder_is_expected_is_reported(tmp_path: Path) -> None:
    (tmp_path / "apps").write_text("not a folder")

    with pytest.raises(InvalidSpec, match="is not a directory"):
        resolve_working_dirs(
            serve_config("apps"), tmp_path, tmp_path / "packages", SOURCE, may_read_local_paths=True
        )
