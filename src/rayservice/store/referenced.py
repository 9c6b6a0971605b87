"""The Secrets and ConfigMaps a cluster spec refers to, read from the store.

The controller resolves a spec with them before planning, and the API before it says what an
apply would do; both read them here, the same way. The resourceVersions come along, so the
controller can tell that nothing it resolved changed without reading the objects again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from rayservice.spec.config_objects import CONFIG_PLURALS, environment_values
from rayservice.spec.manifest import RayClusterSpec
from rayservice.spec.references import Found, Source, sources
from rayservice.store.base import Store


@dataclass(frozen=True)
class Referenced:
    found: Found  # the objects that exist, with their values
    versions: tuple[tuple[Source, int | None], ...]  # every one named (None: not stored)


def referenced(store: Store, namespace: str, spec: RayClusterSpec) -> Referenced:
    """The objects in ``namespace`` that ``spec`` refers to."""
    found = {}
    versions = []
    for source in sorted(sources(spec)):
        stored = store.get(source.kind, namespace, source.name)
        versions.append((source, None if stored is None else stored.resource_version))
        if stored is not None:
            found[source] = environment_values(stored.manifest)
    return Referenced(found, tuple(versions))


def versions_now(store: Store, namespace: str, named: tuple[Source, ...]) -> tuple[int | None, ...]:
    """The resourceVersions of the objects ``named`` as stored now (None: not stored)."""
    return tuple(store.resource_version(s.kind, namespace, s.name) for s in named)


def namespace_values(store: Store, namespace: str) -> dict[Source, Mapping[str, bytes]]:
    """Every Secret and ConfigMap stored in ``namespace``, with its values."""
    return {
        Source(kind, resource.name): environment_values(resource.manifest)
        for kind in CONFIG_PLURALS
        for resource in store.list_resources(kind, namespace)
    }
