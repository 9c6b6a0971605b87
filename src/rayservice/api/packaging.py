"""Admission-time packaging: local ``working_dir`` and ``py_modules`` folders become zip URIs.

This runs when a manifest is admitted, because the folders are named relative to the manifest
the client sent; the Serve client later sends the rewritten config as it is stored.

Ray's Serve REST API accepts only URIs in a runtime_env, and Ray caches a package by its
URI: a folder shipped twice under the same name keeps running the old code. So every local
folder is zipped under a name derived from its content (``<sha256 prefix>.zip``) and the
config is rewritten to point at ``file://<absolute path of the zip>``. Unchanged code gives
the same URI (Ray reuses its cache); changed code gives a new URI (Ray unpacks it afresh).

Zips are deterministic (sorted entries, fixed timestamps, normalised permissions) and skip
``__pycache__``, ``*.pyc`` and ``.git``. Ray strips the single top-level folder of a remote
zip when it unpacks it, so every zip has exactly one top-level folder: for a working_dir it
holds the folder's content, for a py_modules entry it holds the module folder itself so that
the module keeps its import name.

Packaging reads folders from the controller's own disk, so a caller elsewhere must not name
them: for such a caller (``may_read_local_paths=False``) every local path is refused before
anything is read, and only remote URIs and ``file://`` URIs into the package cache (what a
packaged manifest holds) pass. Every route that packages a config goes through
:func:`resolve_working_dirs`, so that rule holds in this one place.

Pods on Kubernetes cannot read this machine's cache either: there the Serve client ships each
cached zip a config names to the cluster's GCS before it deploys the config
(:mod:`rayservice.serve_client.packages`), and admission refuses only a file of this machine
that is not one of them (:func:`files_pods_cannot_read`).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from rayservice.spec.code_locations import (
    PACKAGE_SUFFIX,
    CodeLocation,
    cached_package,
    code_locations,
    with_code_locations,
)
from rayservice.spec.errors import InvalidSpec, SpecProblem

SKIPPED_DIRECTORIES = frozenset({"__pycache__", ".git"})
SKIPPED_SUFFIXES = (".pyc",)
# Package files Ray unpacks itself: a file:// URI naming one passes through unchanged.
ARCHIVE_SUFFIXES = (".zip", ".whl", ".jar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz")

TOP_LEVEL_FOLDER = "package"
_FIXED_TIMESTAMP = (1980, 1, 1, 0, 0, 0)  # the earliest date a zip entry can hold
_DIRECTORY_MODE = 0o755
_FILE_MODE = 0o644
_EXECUTABLE_MODE = 0o755
_HASH_CHARS = 16
_READ_CHUNK = 1 << 20

_VALID_LOCATION = "an existing directory relative to the manifest, or a remote URI"
_REMOTE_CALLER_MESSAGE = (
    "a local path is read from the controller's disk only for a caller on the same machine"
)
_VALID_FOR_REMOTE_CALLER = (
    "a remote URI (https://, s3://, gs://, ...): upload the folder as a zip and name its URI,"
    " or apply from the controller's machine"
)


@dataclass(frozen=True)
class _Entry:
    """One member of a package: a folder (``source`` is None) or a file to copy."""

    name: str  # path inside the zip, "/"-separated; folders end with "/"
    mode: int
    source: Path | None = None


def package_working_dir(directory: Path, packages_dir: Path) -> str:
    """Zip the content of ``directory`` and return the zip's ``file://`` URI."""
    return _package(_entries(directory, TOP_LEVEL_FOLDER), packages_dir)


def package_py_module(directory: Path, packages_dir: Path) -> str:
    """Zip the module folder ``directory`` (keeping its name) and return its URI."""
    prefix = f"{TOP_LEVEL_FOLDER}/{directory.resolve().name}"
    return _package(_entries(directory, prefix), packages_dir)


def resolve_working_dirs(
    config: dict[str, Any],
    base_dir: Path,
    packages_dir: Path,
    source: str,
    *,
    may_read_local_paths: bool,
) -> dict[str, Any]:
    """A copy of the Serve config ``config`` whose local folders are packaged URIs.

    Each ``working_dir`` and ``py_modules`` entry (of an application's runtime_env or a
    deployment's, see :mod:`rayservice.spec.code_locations`) that names a local folder (a
    path, relative to ``base_dir``, or a ``file://`` URI of a folder) is replaced by the URI
    of a content-addressed zip in ``packages_dir``. Remote URIs and archives pass through
    unchanged. ``source`` names the manifest in errors; every missing folder is reported at
    once.

    ``may_read_local_paths`` is False for a caller on another machine: then any local path
    (a folder, or a ``file://`` URI outside ``packages_dir``) is a problem, and nothing is
    read from disk.
    """
    problems: list[SpecProblem] = []

    def packaged(found: CodeLocation) -> str:
        location = found.location
        if not may_read_local_paths and _reads_local_path(location, packages_dir):
            problems.append(
                SpecProblem(source, found.field, _REMOTE_CALLER_MESSAGE, _VALID_FOR_REMOTE_CALLER)
            )
            return location
        directory = _local_directory(location, base_dir)
        if directory is None:
            return location
        if not directory.is_dir():
            problems.append(_missing(source, found.field, location, directory))
            return location
        package = package_py_module if found.module else package_working_dir
        return package(directory, packages_dir)

    resolved = with_code_locations(config, packaged)
    if problems:
        raise InvalidSpec(problems)
    return resolved


def files_pods_cannot_read(
    config: Mapping[str, Any], packages_dir: Path, source: str
) -> list[SpecProblem]:
    """Each location of code in the packaged Serve config ``config`` that names a file of this
    machine other than a package of its cache (which the Serve client ships to a cluster's
    GCS): pods on Kubernetes cannot read it."""
    return [
        SpecProblem(
            source,
            found.field,
            f"{found.location!r} is a file on this machine, which the cluster's pods on"
            " Kubernetes cannot read (folders are shipped to the cluster, files are not)",
            "a folder, or a remote URI the pods can fetch (https://.../apps.zip, s3://, gs://)",
        )
        for found in code_locations(config)
        if urlparse(found.location).scheme in ("", "file")
        and cached_package(found.location, packages_dir) is None
    ]


def _local_directory(location: str, base_dir: Path) -> Path | None:
    """The folder ``location`` names on this machine, or None if Ray must fetch it."""
    parsed = urlparse(location)
    if parsed.scheme == "file":
        path = unquote(parsed.path)
        return None if path.endswith(ARCHIVE_SUFFIXES) else Path(path)
    if parsed.scheme:
        return None  # https, s3, gs, local:// (already on every node), ...
    return base_dir / location


def _reads_local_path(location: str, packages_dir: Path) -> bool:
    """True when ``location`` makes this machine read a file of its own (a path, or a
    ``file://`` URI of a folder or an archive) other than a package zip in ``packages_dir``."""
    parsed = urlparse(location)
    if parsed.scheme == "file":
        return cached_package(location, packages_dir) is None
    return not parsed.scheme


def _missing(source: str, field: str, location: str, directory: Path) -> SpecProblem:
    return SpecProblem(
        source=source,
        field=field,
        message=f"{location!r} is not a directory (looked for {directory.resolve()})",
        valid=_VALID_LOCATION,
    )


def _package(entries: list[_Entry], packages_dir: Path) -> str:
    """Write ``entries`` as ``<content hash>.zip`` in ``packages_dir`` unless it exists."""
    target = packages_dir.resolve() / f"{_content_hash(entries)}{PACKAGE_SUFFIX}"
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        _write_zip_atomically(entries, target)
    return target.as_uri()


def _entries(directory: Path, prefix: str) -> list[_Entry]:
    """The members of a package of ``directory``, in a stable order, under ``prefix``."""
    root = directory.resolve()
    entries = [_Entry(f"{prefix}/", _DIRECTORY_MODE)]
    for path in _walk(root):
        name = f"{prefix}/{path.relative_to(root).as_posix()}"
        if path.is_dir():
            entries.append(_Entry(f"{name}/", _DIRECTORY_MODE))
        else:
            executable = os.access(path, os.X_OK)
            entries.append(_Entry(name, _EXECUTABLE_MODE if executable else _FILE_MODE, path))
    return entries


def _walk(directory: Path) -> Iterator[Path]:
    """Every folder and file below ``directory``, sorted, without the skipped ones."""
    for child in sorted(directory.iterdir(), key=lambda p: p.name):
        if child.is_dir():
            if child.name not in SKIPPED_DIRECTORIES:
                yield child
                yield from _walk(child)
        elif not child.name.endswith(SKIPPED_SUFFIXES):
            yield child


def _content_hash(entries: list[_Entry]) -> str:
    digest = hashlib.sha256()
    for entry in entries:
        digest.update(f"{entry.name}\0{entry.mode:o}\0".encode())
        if entry.source is not None:
            with entry.source.open("rb") as file:
                for chunk in iter(lambda: file.read(_READ_CHUNK), b""):
                    digest.update(chunk)
            digest.update(b"\0")
    return digest.hexdigest()[:_HASH_CHARS]


def _write_zip_atomically(entries: list[_Entry], target: Path) -> None:
    """Write the zip next to ``target`` and rename it, so readers never see half a zip."""
    descriptor, temporary_name = tempfile.mkstemp(
        dir=target.parent, prefix=f".{target.stem}.", suffix=".tmp"
    )
    temporary = Path(temporary_name)
    try:
        with os.fdopen(descriptor, "wb") as file, zipfile.ZipFile(file, "w") as archive:
            for entry in entries:
                info = zipfile.ZipInfo(entry.name, date_time=_FIXED_TIMESTAMP)
                info.external_attr = entry.mode << 16
                if entry.source is None:
                    info.external_attr |= 0o40000 << 16  # S_IFDIR, as zip tools mark folders
                    archive.writestr(info, b"")
                else:
                    info.compress_type = zipfile.ZIP_DEFLATED
                    with entry.source.open("rb") as source, archive.open(info, "w") as member:
                        while chunk := source.read(_READ_CHUNK):
                            member.write(chunk)
        os.replace(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
