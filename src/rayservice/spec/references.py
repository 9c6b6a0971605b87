"""Values a cluster spec takes from Secrets and ConfigMaps, resolved into the spec itself. Pure.

A KubeRay manifest names values it does not hold: ``env[].valueFrom.secretKeyRef`` and
``configMapKeyRef``, ``envFrom`` (every key of a Secret or ConfigMap, with an optional name
prefix) and the Redis credentials of GCS fault tolerance
(``gcsFaultToleranceOptions.redisPassword.valueFrom``). Kubernetes looks them up when a
container starts. Here the controller looks them up before it plans, and :func:`resolve` writes
them into a copy of the spec as literal values. Everything after that (the cluster hash, the spec
stored with a cluster, the environment of its nodes) sees only that copy. So a changed value
is a changed cluster spec, replaced as any other is, and a running cluster keeps the values it
started with.

Kubernetes' rules, followed here: a missing object or key is an error unless the reference
says ``optional: true`` (then the variable is not set); ``env`` wins over ``envFrom``, and a
later ``envFrom`` source over an earlier one; a ConfigMap's ``binaryData`` is not for the
environment. Only the Ray container (``containers[0]``) is resolved: it is the one container
that runs on this machine. Other ``valueFrom`` sources (pod fields, container resources) are
left as written.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, NamedTuple

from rayservice.spec.errors import SpecProblem
from rayservice.spec.events import ObjectKind
from rayservice.spec.fault_tolerance import REDIS_ADDRESS_ENV, container_env, redis_location
from rayservice.spec.manifest import RayCluster, RayClusterSpec, RayService, RedisCredential
from rayservice.spec.paths import field_path

KEY_REFERENCES = {"secretKeyRef": ObjectKind.SECRET, "configMapKeyRef": ObjectKind.CONFIG_MAP}
"""The ``valueFrom`` sources resolved here, with the kind of object each names."""
_OBJECT_REFS = {"secretRef": ObjectKind.SECRET, "configMapRef": ObjectKind.CONFIG_MAP}
_CREDENTIALS = ("redisPassword", "redisUsername")


class Source(NamedTuple):
    """A Secret or ConfigMap, by kind and name, in the namespace of the object that names it."""

    kind: ObjectKind
    name: str

    def __str__(self) -> str:
        return f"{self.kind} {self.name}"


Found = Mapping[Source, Mapping[str, bytes]]
"""The referenced objects that exist, each with the values it offers to an environment."""
NOTHING_FOUND: Found = MappingProxyType({})


@dataclass(frozen=True)
class Use:
    """One key of one object that a field of the spec takes (``key`` None: every key)."""

    source: Source
    key: str | None
    path: str


@dataclass(frozen=True)
class Resolution:
    """A cluster spec with every reference replaced by its value, what it took, and what it
    could not find or use (one sentence each; the spec is not complete while there is any)."""

    spec: RayClusterSpec
    uses: tuple[Use, ...] = ()
    missing: tuple[str, ...] = ()


@dataclass
class _Resolver:
    found: Found
    namespace: str
    uses: list[Use] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)

    def value(self, reference: Mapping[str, Any], kind: ObjectKind, path: str) -> str | None:
        """The text ``reference`` (``{name, key, optional}``) names; None when there is none."""
        source, key = Source(kind, str(reference.get("name", ""))), str(reference.get("key"))
        self.uses.append(Use(source, key, path))
        values = self.found.get(source)
        if values is None or key not in values:
            if reference.get("optional") is not True:
                self.missing.append(self._absent(source, key, path))
            return None
        return self._text(values[key], source, key, path)

    def all_values(
        self, reference: Mapping[str, Any], kind: ObjectKind, path: str
    ) -> dict[str, str]:
        """Every key of the object ``reference`` (``{name, optional}``) names, as text."""
        source = Source(kind, str(reference.get("name", "")))
        self.uses.append(Use(source, None, path))
        values = self.found.get(source)
        if values is None:
            if reference.get("optional") is not True:
                self.missing.append(self._absent(source, None, path))
            return {}
        texts = {key: self._text(value, source, key, path) for key, value in values.items()}
        return {key: text for key, text in texts.items() if text is not None}

    def _absent(self, source: Source, key: str | None, path: str) -> str:
        where = f"{source.kind} {self.namespace}/{source.name}"
        what = (
            f"{where} not found"
            if key is None or source not in self.found
            else (f"{where} has no key {key!r}")
        )
        return f"{what} ({path}); apply it, or mark the reference optional: true"

    def _text(self, value: bytes, source: Source, key: str, path: str) -> str | None:
        try:
            text = value.decode()
        except UnicodeDecodeError:
            text = None
        if text is None or "\0" in text:
            self.missing.append(
                f"key {key!r} of {source.kind} {self.namespace}/{source.name} is not text an"
                f" environment variable can hold (UTF-8, no NUL bytes) ({path})"
            )
            return None
        return text


def sources(spec: RayClusterSpec) -> frozenset[Source]:
    """Every Secret and ConfigMap ``spec`` refers to, optional or not."""
    return frozenset(use.source for use in resolve(spec, {}, "").uses)


def resolve(
    spec: RayClusterSpec, found: Found, namespace: str, prefix: str = "spec.rayClusterConfig"
) -> Resolution:
    """``spec`` with the values ``found`` holds written in where it refers to them (fields
    named from ``prefix``; objects in ``namespace``)."""
    resolver = _Resolver(found, namespace)
    resolved = spec.model_copy(deep=True)
    templates = [(field_path(prefix, "headGroupSpec"), resolved.headGroupSpec.template)]
    templates += [
        (field_path(prefix, "workerGroupSpecs", index), group.template)
        for index, group in enumerate(resolved.workerGroupSpecs)
    ]
    for group_path, template in templates:
        container = _ray_container(template)
        if container is not None:
            path = field_path(group_path, "template", "spec", "containers", 0)
            _resolve_container(container, resolver, path)
    options = resolved.gcsFaultToleranceOptions
    if options is not None:
        for name in _CREDENTIALS:
            credential = getattr(options, name)
            if isinstance(credential, RedisCredential) and credential.valueFrom is not None:
                path = field_path(prefix, "gcsFaultToleranceOptions", name, "valueFrom")
                text = _from_source(credential.valueFrom, resolver, path)
                if text is not None:
                    setattr(options, name, RedisCredential(value=text))
    address = container_env(resolved.headGroupSpec.template).get(REDIS_ADDRESS_ENV)
    if resolver.uses and address is not None:  # a literal one was checked when applied
        try:
            redis_location(address)
        except ValueError as error:
            resolver.missing.append(
                f"the head's {REDIS_ADDRESS_ENV}, taken from a Secret or ConfigMap, is not a"
                f" Redis address ({error}); host:port or redis://host:port"
            )
    return Resolution(resolved, tuple(resolver.uses), tuple(resolver.missing))


def cluster_spec_of(manifest: RayService | RayCluster) -> tuple[RayClusterSpec, str]:
    """The cluster spec of a RayService or a standalone RayCluster, with its field path."""
    if isinstance(manifest, RayCluster):
        return manifest.spec, "spec"
    return manifest.spec.rayClusterConfig, "spec.rayClusterConfig"


def resolve_manifest(manifest: RayService | RayCluster, found: Found) -> Resolution:
    """The cluster spec of ``manifest`` resolved with ``found`` (objects of its namespace),
    its fields named from where they sit in the manifest."""
    spec, prefix = cluster_spec_of(manifest)
    return resolve(spec, found, manifest.metadata.namespace, prefix)


def as_written(manifest: RayService | RayCluster, found: Found) -> Resolution:
    """The cluster spec of ``manifest`` with its references left as they are, for a backend
    whose pods resolve them (Kubernetes): the values never enter the cluster's object, and a
    changed value reaches a pod when it starts, as on KubeRay."""
    return Resolution(cluster_spec_of(manifest)[0].model_copy(deep=True))


Resolve = Callable[[RayService | RayCluster, Found], Resolution]
"""How a backend gets a manifest's cluster spec: :func:`resolve_manifest` or :func:`as_written`."""


def _ray_container(template: Mapping[str, Any]) -> dict[str, Any] | None:
    pod = template.get("spec")
    containers = pod.get("containers") if isinstance(pod, Mapping) else None
    if isinstance(containers, list) and containers and isinstance(containers[0], dict):
        return containers[0]
    return None


def _key_reference(item: object) -> Mapping[str, Any] | None:
    """The ``valueFrom`` of an env entry that takes a Secret's or ConfigMap's key, else None
    (a literal value, a pod field, a container resource)."""
    value_from = item.get("valueFrom") if isinstance(item, Mapping) else None
    if isinstance(value_from, Mapping) and KEY_REFERENCES.keys() & value_from.keys():
        return value_from
    return None


def _resolve_container(container: dict[str, Any], resolver: _Resolver, path: str) -> None:
    """Replace the container's ``envFrom`` and key references by literal entries, in the
    order that makes the later win: ``envFrom`` sources first, then ``env``. A container that
    takes nothing is left exactly as written (its hash must not move)."""
    env = container.get("env")
    env = env if isinstance(env, list) else []
    sources_from = container.get("envFrom")
    sources_from = sources_from if isinstance(sources_from, list) else []
    if not sources_from and not any(_key_reference(item) for item in env):
        return
    named = {item.get("name") for item in env if isinstance(item, Mapping)}
    literal: list[Any] = []
    for index, item in enumerate(sources_from):
        if isinstance(item, Mapping):
            expanded = _expanded(item, resolver, field_path(path, "envFrom", index))
            literal += [entry for entry in expanded if entry["name"] not in named]  # env wins
    container.pop("envFrom", None)
    for index, item in enumerate(env):
        value_from = _key_reference(item)
        if value_from is None:
            literal.append(item)
            continue
        item_path = field_path(path, "env", index, "valueFrom")
        text = _from_source(value_from, resolver, item_path)
        if text is not None:  # else optional and absent: not set; or missing, and reported
            literal.append({"name": item.get("name"), "value": text})
    container["env"] = literal


def _expanded(item: Mapping[str, Any], resolver: _Resolver, path: str) -> Iterator[dict[str, str]]:
    prefix = str(item.get("prefix") or "")
    for ref, kind in _OBJECT_REFS.items():
        reference = item.get(ref)
        if isinstance(reference, Mapping):
            texts = resolver.all_values(reference, kind, field_path(path, ref))
            for key in sorted(texts):
                yield {"name": prefix + key, "value": texts[key]}


def _from_source(value_from: Mapping[str, Any], resolver: _Resolver, path: str) -> str | None:
    for ref, kind in KEY_REFERENCES.items():
        reference = value_from.get(ref)
        if isinstance(reference, Mapping):
            return resolver.value(reference, kind, field_path(path, ref))
    return None


_VALUE_SOURCES = ("secretKeyRef", "configMapKeyRef", "fieldRef", "resourceFieldRef", "fileKeyRef")


def reference_problems(spec: RayClusterSpec, source: str, prefix: str) -> Iterator[SpecProblem]:
    """Kubernetes' API server rules for the references followed here, which its schema does not
    carry: one source per ``valueFrom`` and none beside a ``value``, one object per ``envFrom``
    item, and a name (and a key) for each object named."""
    groups = [(field_path(prefix, "headGroupSpec"), spec.headGroupSpec.template)]
    groups += [
        (field_path(prefix, "workerGroupSpecs", index), group.template)
        for index, group in enumerate(spec.workerGroupSpecs)
    ]
    for group_path, template in groups:
        pod = template.get("spec")
        containers = pod.get("containers") if isinstance(pod, Mapping) else None
        for index, container in enumerate(containers if isinstance(containers, list) else []):
            if isinstance(container, Mapping):
                path = field_path(group_path, "template", "spec", "containers", index)
                yield from _container_reference_problems(container, source, path)
    options = spec.gcsFaultToleranceOptions
    for name in _CREDENTIALS if options is not None else ():
        credential = getattr(options, name)
        if isinstance(credential, RedisCredential) and credential.valueFrom is not None:
            path = field_path(prefix, "gcsFaultToleranceOptions", name, "valueFrom")
            yield from _value_from_problems(credential.valueFrom, source, path)


def _container_reference_problems(
    container: Mapping[str, Any], source: str, path: str
) -> Iterator[SpecProblem]:
    env = container.get("env")
    for index, item in enumerate(env if isinstance(env, list) else []):
        value_from = item.get("valueFrom") if isinstance(item, Mapping) else None
        if not isinstance(value_from, Mapping):
            continue
        item_path = field_path(path, "env", index)
        if item.get("value"):
            yield SpecProblem(source, item_path, "sets both value and valueFrom", "one of them")
        yield from _value_from_problems(value_from, source, field_path(item_path, "valueFrom"))
    env_from = container.get("envFrom")
    for index, item in enumerate(env_from if isinstance(env_from, list) else []):
        if not isinstance(item, Mapping):
            continue
        item_path = field_path(path, "envFrom", index)
        named = [ref for ref in _OBJECT_REFS if ref in item]
        if len(named) != 1:
            what = "names no object" if not named else f"names {' and '.join(named)}"
            yield SpecProblem(source, item_path, what, "exactly one of configMapRef, secretRef")
        for ref in named:
            yield from _name_problems(item[ref], ("name",), source, field_path(item_path, ref))


def _value_from_problems(
    value_from: Mapping[str, Any], source: str, path: str
) -> Iterator[SpecProblem]:
    named = [kind for kind in _VALUE_SOURCES if kind in value_from]
    if len(named) != 1:
        what = "names no source" if not named else f"names {' and '.join(named)}"
        yield SpecProblem(source, path, what, f"exactly one of {', '.join(_VALUE_SOURCES)}")
    for ref in named:
        if ref in KEY_REFERENCES:
            yield from _name_problems(
                value_from[ref], ("name", "key"), source, field_path(path, ref)
            )


def _name_problems(
    reference: object, fields: tuple[str, ...], source: str, path: str
) -> Iterator[SpecProblem]:
    for name in fields:
        if not isinstance(reference, Mapping) or not reference.get(name):
            yield SpecProblem(source, field_path(path, name), "is required", f"the object's {name}")
