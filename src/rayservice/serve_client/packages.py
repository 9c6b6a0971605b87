"""This machine's code packages, as a cluster that cannot read them gets them: from its GCS.

At apply, local ``working_dir`` and ``py_modules`` folders become zips in this machine's package
cache, named in the Serve config as ``file://`` URIs (:mod:`rayservice.api.packaging`). Ray's
nodes on this machine read them there; pods on Kubernetes cannot. For such a cluster the Serve
client puts each zip into the cluster's GCS through its dashboard's package API (the way
``ray job submit`` ships a working_dir) and deploys the config naming it there:
``gcs://_ray_pkg_<content hash>.zip``. Same code, same URI: Ray's cache of it holds.

Ray strips the single top-level folder of a ``file://`` zip when it unpacks it, but unpacks a GCS
package as it is; so the package sent is the cached zip without that folder.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from rayservice.spec.code_locations import cached_package, code_locations, with_code_locations

PACKAGE_PREFIX = "_ray_pkg_"  # how Ray names the packages it puts into a GCS


def gcs_name(cached: Path) -> str:
    """The name in a cluster's GCS of the cached zip ``cached``."""
    return f"{PACKAGE_PREFIX}{cached.name}"


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
        return location if cached is None else f"gcs://{gcs_name(cached)}"

    return with_code_locations(config, lambda found: shipped(found.location))


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
