"""This machine's code packages, as a cluster that cannot read them gets them: from its GCS.

At apply, local ``working_dir`` and ``py_modules`` folders become zips in this machine's package
cache, named in the Serve config as ``file://`` URIs (:mod:`rayservice.api.packaging`). Ray's
nodes on this machine read them there; pods on Kubernetes cannot. For such a cluster the Serve
client puts each zip into the cluster's GCS through its dashboard's package API (the way
``ray job submit`` ships a working_dir) and deploys the config naming it there:
``gcs://_ray_pkg_<content hash>.zip``. Same code, same URI: Ray's cache of it holds.

Ray strips the single top-level folder of a ``file://`` zip when it unpacks it, but unpacks a GCS
package as it is; so the package sent is the cached zip without that folder.

Ray deletes a GCS package nothing refers to: a replica using it refers to it, and asking whether
the package is there pins it for ten minutes. Between those (an app's only replica restarting, a
replica waiting for room) it could go, so the client asks again every few minutes for the
packages Serve's apps run (:func:`running_packages`), and puts back one that went and is in the
cache. Ray's dashboard takes uploads up to 100 MiB; a larger package is refused for good.
"""

from __future__ import annotations

import io
import zipfile
import zlib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from rayservice.spec.code_locations import (
    PACKAGE_SUFFIX,
    cached_package,
    code_locations,
    with_code_locations,
)
from rayservice.spec.errors import PermanentError, TemporaryError

PACKAGE_PREFIX = "_ray_pkg_"  # how Ray names the packages it puts into a GCS
GCS_SCHEME = "gcs://"
MAX_PACKAGE_BYTES = 100 * 1024 * 1024  # the largest upload Ray's dashboard takes


def gcs_name(cached: Path) -> str:
    """The name in a cluster's GCS of the cached zip ``cached``."""
    return f"{PACKAGE_PREFIX}{cached.name}"


def cached_zip_named(name: str, packages_dir: Path) -> Path:
    """Where the cached zip whose GCS name is ``name`` is (or was) kept: :func:`gcs_name`
    undone."""
    return packages_dir / name.removeprefix(PACKAGE_PREFIX)


def cached_zips(config: Mapping[str, Any], packages_dir: Path) -> Iterator[Path]:
    """The zips of the package cache ``packages_dir`` that the Serve config names, once each."""
    seen: set[Path] = set()
    for found in code_locations(config):
        cached = cached_package(found.location, packages_dir)
        if cached is not None and cached not in seen:
            seen.add(cached)
            yield cached


def naming_the_gcs(config: Mapping[str, Any], packages_dir: Path) -> dict[str, Any]:
    """``config`` naming each cached zip by its place in the cluster's GCS."""

    def shipped(location: str) -> str:
        cached = cached_package(location, packages_dir)
        return location if cached is None else f"{GCS_SCHEME}{gcs_name(cached)}"

    return with_code_locations(config, lambda found: shipped(found.location))


def running_packages(details: Mapping[str, Any], packages_dir: Path) -> Iterator[Path]:
    """Where the cached zips of the GCS packages Serve's apps run are (or would be: a package
    someone else put there, or one gone from the cache, has no file), by the config each app
    was deployed with (Serve's details)."""
    apps = details.get("applications")
    configs = [
        app.get("deployed_app_config")
        for app in (apps.values() if isinstance(apps, Mapping) else ())
        if isinstance(app, Mapping) and isinstance(app.get("deployed_app_config"), Mapping)
    ]
    seen: set[str] = set()
    for found in code_locations({"applications": configs}):
        name = found.location.removeprefix(GCS_SCHEME)
        shipped = found.location.startswith(GCS_SCHEME + PACKAGE_PREFIX)
        if shipped and name.endswith(PACKAGE_SUFFIX) and "/" not in name and name not in seen:
            seen.add(name)
            yield cached_zip_named(name, packages_dir)


def package_to_ship(cached: Path) -> bytes:
    """The GCS form of the cached zip ``cached``; an error that says what to do when it cannot
    be read (the next try may pass, after an apply) or is more than Ray takes."""
    try:
        package = gcs_form(cached.read_bytes())
    except FileNotFoundError as error:
        raise TemporaryError(
            f"the package {cached} is gone from this machine's package cache: apply the manifest"
            " again to package its folder anew"
        ) from error
    except (OSError, zipfile.BadZipFile, zlib.error, EOFError, ValueError) as error:
        raise TemporaryError(
            f"the package {cached} cannot be read ({error}): remove it and apply the manifest"
            " again to package its folder anew"
        ) from error
    if len(package) > MAX_PACKAGE_BYTES:
        raise PermanentError(
            f"the package {cached} is {len(package) / 2**20:.0f} MiB; Ray's dashboard takes"
            f" uploads of up to {MAX_PACKAGE_BYTES // 2**20} MiB: leave large files out of the"
            " folder, or name a remote URI"
        )
    return package


def gcs_form(package: bytes) -> bytes:
    """The zip ``package`` without its single top-level folder (entries, dates and modes
    kept), as a GCS package is unpacked."""
    out = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(package)) as source,
        zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target,
    ):
        tops = {entry.filename.split("/", 1)[0] for entry in source.infolist()}
        if len(tops) != 1:
            raise ValueError(f"a cached package has one top-level folder, not {sorted(tops)}")
        for entry in source.infolist():
            inner = entry.filename.split("/", 1)[1] if "/" in entry.filename else ""
            if not inner:
                continue  # the top-level folder itself
            moved = zipfile.ZipInfo(inner, entry.date_time)
            moved.external_attr = entry.external_attr
            moved.compress_type = zipfile.ZIP_DEFLATED
            target.writestr(moved, b"" if entry.is_dir() else source.read(entry))
    return out.getvalue()
