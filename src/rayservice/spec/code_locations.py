"""Where a Serve config names its code: the ``working_dir`` and ``py_modules`` entries of each
application's ``runtime_env`` and of its deployments' (``ray_actor_options.runtime_env``).

Packaging at apply (folders become zips in this machine's package cache), admission on
Kubernetes (what pods cannot fetch) and the Serve client (cached zips shipped to a cluster) each
look at these places; one walk here keeps them agreeing on what counts and on the field paths
their messages name, and :func:`cached_package` on what is a zip of the cache.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

WORKING_DIR = "working_dir"
PY_MODULES = "py_modules"
PACKAGE_SUFFIX = ".zip"  # of the zips in the package cache (see api/packaging.py)


@dataclass(frozen=True)
class CodeLocation:
    field: str  # its path in the manifest, e.g. spec.serveConfigV2.applications[0]...
    location: str  # as the config names it: a path, a file:// or a remote URI
    module: bool  # a py_modules entry (else the working_dir)


def code_locations(config: Mapping[str, Any]) -> Iterator[CodeLocation]:
    """Every string location of code in ``config``, in order."""
    for field, holder, key in _places(config):
        yield CodeLocation(field, holder[key], module=key != WORKING_DIR)


def with_code_locations(
    config: Mapping[str, Any], replace: Callable[[CodeLocation], str]
) -> dict[str, Any]:
    """A copy of ``config`` in which every location of code is what ``replace`` makes of it."""
    replaced: dict[str, Any] = copy.deepcopy(dict(config))
    for field, holder, key in list(_places(replaced)):
        holder[key] = replace(CodeLocation(field, holder[key], module=key != WORKING_DIR))
    return replaced


def cached_package(location: str, packages_dir: Path) -> Path | None:
    """The zip of the package cache ``packages_dir`` that ``location`` names (a ``file://``
    URI), if it names one."""
    parsed = urlparse(location)
    if parsed.scheme != "file" or parsed.netloc:
        return None
    path = Path(unquote(parsed.path)).resolve()  # symlinks and ".." cannot leave the cache
    in_cache = path.parent == packages_dir.resolve() and path.suffix == PACKAGE_SUFFIX
    return path if in_cache else None


def _places(config: Mapping[str, Any]) -> Iterator[tuple[str, Any, Any]]:
    """``(field path, holder, key)`` of each string location: ``holder[key]`` is it (a
    runtime_env and "working_dir", or a py_modules list and an index). An application's
    runtime_env, then each of its deployments' (``ray_actor_options.runtime_env``)."""
    for app_index, app in enumerate(config.get("applications") or ()):
        if not isinstance(app, Mapping):
            continue
        prefix = f"spec.serveConfigV2.applications[{app_index}]"
        yield from _in_runtime_env(app.get("runtime_env"), f"{prefix}.runtime_env")
        deployments = app.get("deployments")
        for index, deployment in enumerate(deployments if isinstance(deployments, list) else ()):
            options = (
                deployment.get("ray_actor_options") if isinstance(deployment, Mapping) else None
            )
            if isinstance(options, Mapping):
                field = f"{prefix}.deployments[{index}].ray_actor_options.runtime_env"
                yield from _in_runtime_env(options.get("runtime_env"), field)


def _in_runtime_env(runtime_env: object, prefix: str) -> Iterator[tuple[str, Any, Any]]:
    if not isinstance(runtime_env, Mapping):
        return
    if isinstance(runtime_env.get(WORKING_DIR), str):
        yield f"{prefix}.{WORKING_DIR}", runtime_env, WORKING_DIR
    modules = runtime_env.get(PY_MODULES)
    for index, module in enumerate(modules if isinstance(modules, list) else ()):
        if isinstance(module, str):
            yield f"{prefix}.{PY_MODULES}[{index}]", modules, index
