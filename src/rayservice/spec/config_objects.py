"""Secrets and ConfigMaps (core ``v1``): configuration a RayService takes by reference.

KubeRay manifests take passwords and tokens from Secrets and settings from ConfigMaps
(``env[].valueFrom``, ``envFrom``, the Redis password of GCS fault tolerance). Here they are
objects of their own, applied, listed, described and deleted as kubectl does them, and checked
with Kubernetes' rules: fields against Kubernetes' own schema, keys of ``[-._a-zA-Z0-9]``,
Secret ``data`` and ConfigMap ``binaryData`` in base64, at most 1 MiB of values. A Secret's
``stringData`` is written into its ``data`` when stored, as Kubernetes' API server does, so
the stored object says each value once. Pure.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterator, Mapping
from typing import Any

from rayservice.spec.errors import InvalidSpec, SpecProblem
from rayservice.spec.events import ObjectKind
from rayservice.spec.kubernetes_schema import core_object_problems
from rayservice.spec.paths import field_path

CONFIG_PLURALS = {ObjectKind.SECRET: "secrets", ObjectKind.CONFIG_MAP: "configmaps"}
"""The kinds, with the plurals of their paths under the core ``/api/v1``."""
MAX_VALUES_BYTES = 1024 * 1024  # Kubernetes refuses a larger Secret or ConfigMap
_KEY = re.compile(r"[-._a-zA-Z0-9]+")
_MAX_KEY_LENGTH = 253
_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_TYPE_NAMES = {int: "a number", float: "a number", bool: "true or false", list: "a list",
               dict: "a mapping"}  # fmt: skip
_ENCODED_FIELDS = {ObjectKind.SECRET: ("data",), ObjectKind.CONFIG_MAP: ("binaryData",)}
_PLAIN_FIELDS = {ObjectKind.SECRET: ("stringData",), ObjectKind.CONFIG_MAP: ("data",)}


def is_config_object(document: object) -> bool:
    """Whether ``document`` is a core v1 Secret or ConfigMap."""
    return (
        isinstance(document, Mapping)
        and document.get("apiVersion") == "v1"
        and document.get("kind") in CONFIG_PLURALS
    )


def load_config_object(document: Mapping[str, Any], source: str) -> dict[str, Any]:
    """The object as it is stored (a Secret's stringData encoded into data); raises
    InvalidSpec with every problem, each with its field path."""
    kind = ObjectKind(str(document.get("kind")))
    # values are checked first and named by their type only, so that an error never shows
    # a Secret's value (the schema's messages quote what they refuse)
    problems = list(_value_type_problems(document, kind, source))
    if not problems:
        problems = core_object_problems(document, kind, source)
    if not problems:
        problems = list(_content_problems(document, kind, source))
    if problems:
        raise InvalidSpec(problems)
    stored = {key: value for key, value in document.items() if key != "stringData"}
    stored["metadata"] = {"namespace": "default", **document["metadata"]}
    if kind is ObjectKind.SECRET:
        plain = document.get("stringData") or {}
        data = dict(document.get("data") or {})
        data.update({key: _encoded(value) for key, value in plain.items()})
        stored["data"] = data
        stored.setdefault("type", "Opaque")
    return stored


def _value_type_problems(
    document: Mapping[str, Any], kind: ObjectKind, source: str
) -> Iterator[SpecProblem]:
    if not isinstance(document.get("metadata"), Mapping):
        yield SpecProblem(source, "metadata", "must be a mapping", "a mapping with a name")
    for field in (*_ENCODED_FIELDS[kind], *_PLAIN_FIELDS[kind]):
        mapping = document.get(field)
        if mapping is None:
            continue
        if not isinstance(mapping, Mapping):
            yield SpecProblem(source, field, "must be a mapping of keys to values", "a mapping")
            continue
        for key, value in mapping.items():
            if not isinstance(value, str):
                found = _TYPE_NAMES.get(type(value), "nothing" if value is None else "a value")
                yield SpecProblem(
                    source,
                    field_path(field, str(key)),
                    f"must be a string, got {found}",
                    'a string (quote numbers and empty values: "")',
                )


def _content_problems(
    document: Mapping[str, Any], kind: ObjectKind, source: str
) -> Iterator[SpecProblem]:
    name = document["metadata"].get("name")
    if not isinstance(name, str) or not name:
        yield SpecProblem(source, "metadata.name", "is required", "a DNS-1123 subdomain")
    elif len(name) > _MAX_KEY_LENGTH or not _DNS_SUBDOMAIN.fullmatch(name):
        yield SpecProblem(
            source,
            "metadata.name",
            f"{name!r} is not a valid {kind} name",
            "lower-case letters, digits, '-' and '.', at most 253 characters",
        )
    size = 0
    seen: dict[str, str] = {}
    for field in (*_ENCODED_FIELDS[kind], *_PLAIN_FIELDS[kind]):
        for key, value in (document.get(field) or {}).items():
            path = field_path(field, key)
            if len(key) > _MAX_KEY_LENGTH or not _KEY.fullmatch(key) or key in (".", ".."):
                yield SpecProblem(
                    source,
                    path,
                    f"{key!r} is not a valid key",
                    "letters, digits, '-', '_' and '.' (not '.' or '..'), at most 253 characters",
                )
            if field in _ENCODED_FIELDS[kind]:
                content = decoded(value)
                if content is None:
                    yield SpecProblem(source, path, "is not valid base64", "base64 of the value")
                    continue
                size += len(content)
            else:
                size += len(value.encode())
            if key in seen and kind is ObjectKind.CONFIG_MAP:
                yield SpecProblem(
                    source, path, f"the key {key!r} is also in {seen[key]}", "a key in one place"
                )
            seen[key] = field
    if size > MAX_VALUES_BYTES:
        yield SpecProblem(
            source,
            "data",
            f"holds {size} bytes of values; a {kind} may hold {MAX_VALUES_BYTES}",
            "at most 1 MiB",
        )


def values(stored: Mapping[str, Any]) -> dict[str, bytes]:
    """Every key of a stored Secret or ConfigMap with its value."""
    result: dict[str, bytes] = {}
    kind = ObjectKind(str(stored.get("kind")))
    for field in _ENCODED_FIELDS[kind]:
        for key, value in (stored.get(field) or {}).items():
            result[key] = decoded(value) or b""
    for field in _PLAIN_FIELDS[kind]:
        for key, value in (stored.get(field) or {}).items():
            result[key] = str(value).encode()
    return result


def environment_values(stored: Mapping[str, Any]) -> dict[str, bytes]:
    """The values a container's environment can take from a stored Secret (every key) or
    ConfigMap (its ``data``: ``binaryData`` is for files only, as on Kubernetes)."""
    if stored.get("kind") == ObjectKind.CONFIG_MAP:
        return {key: str(value).encode() for key, value in (stored.get("data") or {}).items()}
    return values(stored)


def _encoded(value: str) -> str:
    return base64.b64encode(value.encode()).decode()


def decoded(value: object) -> bytes | None:
    """A base64 value's bytes, None when it is no base64; line breaks are skipped, as
    Kubernetes skips them (certificates are often written wrapped)."""
    if not isinstance(value, str):
        return None
    try:
        return base64.b64decode(value.replace("\n", "").replace("\r", ""), validate=True)
    except (binascii.Error, ValueError):
        return None


def immutability_problem(
    current: Mapping[str, Any], new: Mapping[str, Any], source: str
) -> SpecProblem | None:
    """An object stored with ``immutable: true`` keeps its values and stays immutable, as on
    Kubernetes (delete it and apply it again to change it)."""
    if current.get("immutable") is not True:
        return None
    if values(current) != values(new):
        return SpecProblem(
            source, "data", "cannot change: the object is immutable", "delete it and apply again"
        )
    if new.get("immutable") is not True:
        return SpecProblem(
            source, "immutable", "cannot be unset once true", "true, or delete and apply again"
        )
    return None


def changed_fields(current: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """The fields other than the values that differ between two stored forms: type,
    immutable, labels, annotations."""
    fields = [f for f in ("type", "immutable") if current.get(f) != new.get(f)]
    for part in ("labels", "annotations"):
        if current["metadata"].get(part) != new["metadata"].get(part):
            fields.append(f"metadata.{part}")
    return fields
