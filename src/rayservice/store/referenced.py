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

Version = tuple[str, int] | None
"""Which stored object, at which write: its uid and resourceVersion (an object deleted and
applied again starts its resourceVersion over, with a new uid); None when it is not stored."""


@dataclass(frozen=True)
class Referenced:
    found: Found  # the objects that exist, with their values
    versions: tuple[tuple[Source, Version], ...]  # every one named


def referenced(store: Store, namespace: str, spec: RayClusterSpec) -> Referenced:
    """The objects in ``namespace`` that ``spec`` refers to."""
    found = {}
    versions: list[tuple[Source, Version]] = []
    for source in sorted(sources(spec)):
        stored = store.get(source.kind, namespace, source.name)
        if stored is None:
            versions.append((source, None))
            continue
        versions.append((source, (stored.uid, stored.resource_version)))
        found[source] = environment_values(stored.manifest)
    return Referenced(found, tuple(versions))


def versions_now(store: Store, namespace: str, named: tuple[Source, ...]) -> tuple[Version, ...]:
    """The versions of the objects ``named`` as stored now."""
    now: list[Version] = []
    for source in named:
        stored = store.get(source.kind, namespace, source.name)
        now.append(None if stored is None else (stored.uid, stored.resource_version))
    return tuple(now)


def namespace_values(store: Store, namespace: str) -> dict[Source, Mapping[str, bytes]]:
    """Every Secret and ConfigMap stored in ``namespace``, with its values."""
    return {
        Source(kind, resource.name): environment_values(resource.manifest)
        for kind in CONFIG_PLURALS
        for resource in store.list_resources(kind, namespace)
    }
