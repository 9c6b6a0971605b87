"""Check the Kubernetes objects embedded in a manifest against Kubernetes' own schema.

Head and worker groups carry pod templates, a RayService may carry Services, and some KubeRay
options hold containers' fields or network rules. Kubernetes refuses a misspelt or misplaced
field in any of them (``kubectl apply`` validates strictly), so they are checked here too, with
the strict JSON schemas that the ``kubernetes-validate`` package ships for each Kubernetes
release: the check needs no cluster and no network. Each fragment is wrapped in the smallest
object of its kind (a PodTemplate, a Service, a NetworkPolicy) and every error is re-anchored at
its place in the manifest, e.g.
``spec.rayClusterConfig.headGroupSpec.template.spec.containers[0].resourcez``.

``kubernetes_validate.validate`` reads the 1.8 MB file of shared definitions on every call and
stops at the first error; the schemas are therefore read once, here, and validated with the
same JSON schema library, so that a manifest gets all its problems at once.
"""

from __future__ import annotations

import difflib
import functools
import json
from collections.abc import Iterator, Mapping, Sequence
from importlib import resources
from typing import Any

from rayservice.spec.errors import SpecProblem
from rayservice.spec.paths import field_path
from rayservice.spec.vocabulary import ServiceType

_CLOSE_MATCHES = 3
_MAX_MESSAGE = 160
_TYPE_WORDS = {
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
    "object": "a mapping",
    "array": "a list",
}
_POD_TEMPLATE = "podtemplate-v1.json"
_SERVICE = "service-v1.json"
_NETWORK_POLICY = "networkpolicy-networking-v1.json"
_CONTAINER_PATH: tuple[str | int, ...] = ("template", "spec", "containers", 0)


@functools.cache
def kubernetes_version() -> str:
    """The Kubernetes release whose schemas are used: the newest kubernetes-validate ships."""
    import kubernetes_validate  # type: ignore[import-untyped]  # slow: load only when needed

    version: str = kubernetes_validate.latest_version()
    return version


def _schema_file(name: str) -> Any:
    folder = resources.files("kubernetes_validate") / "kubernetes-json-schema"
    schemas = folder / f"v{kubernetes_version()}-local-strict"
    return json.loads((schemas / name).read_text(encoding="utf-8"))


@functools.cache
def _definitions() -> Any:
    """Every Kubernetes type, shared by the schemas of all kinds (read once: it is large)."""
    from referencing import Registry, Resource

    return Resource.from_contents(_schema_file("_definitions.json")) @ Registry()


@functools.cache
def _validator(schema_name: str) -> Any:
    import jsonschema  # type: ignore[import-untyped]  # slow to import: load only when needed
    from referencing import Resource

    schema = _schema_file(schema_name)
    registry = Resource.from_contents(schema) @ _definitions()
    return jsonschema.Draft202012Validator(schema, registry=registry)


def pod_template_problems(template: object, source: str, path: str) -> list[SpecProblem]:
    """What Kubernetes would refuse in a pod template (``path`` is the template's)."""
    wrapped = {"apiVersion": "v1", "kind": "PodTemplate", "metadata": {"name": "x"}}
    return _problems(wrapped | {"template": template}, _POD_TEMPLATE, ("template",), source, path)


def service_problems(service: object, source: str, path: str) -> list[SpecProblem]:
    """What Kubernetes would refuse in a Service; apiVersion and kind may be left out. Its
    type is one of Kubernetes' four (the schema leaves it a string; the API server checks)."""
    if not isinstance(service, Mapping):
        return _problems({"spec": service}, _SERVICE, ("spec",), source, path)
    wrapped = {"apiVersion": "v1", "kind": "Service", **service}
    problems = _problems(wrapped, _SERVICE, (), source, path)
    spec = service.get("spec")
    kind = spec.get("type") if isinstance(spec, Mapping) else None
    if isinstance(kind, str):
        problems += service_type_problems(kind, source, field_path(path, "spec", "type"))
    return problems


def service_type_problems(value: str, source: str, path: str) -> list[SpecProblem]:
    """A Service type must be one of Kubernetes' four."""
    if value in set(ServiceType):
        return []
    return [SpecProblem(source, path, f"unknown type {value!r}", ", ".join(ServiceType))]


def container_problems(fields: Mapping[str, Any], source: str, path: str) -> list[SpecProblem]:
    """What Kubernetes would refuse in ``fields`` of a container (image, env, resources...),
    found at ``path`` in the manifest."""
    container = {"name": "x", **fields}
    wrapped = {
        "apiVersion": "v1",
        "kind": "PodTemplate",
        "metadata": {"name": "x"},
        "template": {"spec": {"containers": [container]}},
    }
    return _problems(wrapped, _POD_TEMPLATE, _CONTAINER_PATH, source, path)


def network_rule_problems(
    rules: Sequence[Any], direction: str, source: str, path: str
) -> list[SpecProblem]:
    """What Kubernetes would refuse in NetworkPolicy ``ingress`` or ``egress`` rules."""
    wrapped = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "x"},
        "spec": {"podSelector": {}, direction: list(rules)},
    }
    return _problems(wrapped, _NETWORK_POLICY, ("spec", direction), source, path)


def core_object_problems(document: Mapping[str, Any], kind: str, source: str) -> list[SpecProblem]:
    """What Kubernetes would refuse in a whole core ``v1`` object of ``kind`` (a Secret, a
    ConfigMap), paths from the object's root."""
    return _problems(dict(document), f"{kind.lower()}-v1.json", (), source, "")


def _problems(
    document: dict[str, Any],
    schema_name: str,
    anchor: tuple[str | int, ...],
    source: str,
    path: str,
) -> list[SpecProblem]:
    problems: list[SpecProblem] = []
    for error in _validator(schema_name).iter_errors(document):
        location = list(error.absolute_path)
        inside = location[len(anchor) :] if location[: len(anchor)] == list(anchor) else location
        problems += _explained(error, field_path(path, *inside), source)
    return problems


def _explained(error: Any, path: str, source: str) -> Iterator[SpecProblem]:
    kind, instance, expected = error.validator, error.instance, error.validator_value
    if kind == "additionalProperties" and isinstance(instance, Mapping):
        known = list((error.schema.get("properties") or {}).keys())
        for name in instance:
            if name not in known:
                yield SpecProblem(
                    source,
                    field_path(path, str(name)),
                    unknown_field(name),
                    known_fields(name, known),
                )
    elif kind == "required" and isinstance(instance, Mapping):
        for name in expected:
            if name not in instance:
                yield SpecProblem(source, field_path(path, name), "is required")
    elif kind == "type":
        wanted = [expected] if isinstance(expected, str) else list(expected)
        words = " or ".join(_TYPE_WORDS.get(t, t) for t in wanted if t != "null")
        yield SpecProblem(source, path, f"must be {words}, got {_described(instance)}", words)
    elif kind == "enum":
        choices = ", ".join(str(choice) for choice in expected if choice is not None)
        yield SpecProblem(source, path, f"{instance!r} is not allowed here", f"one of {choices}")
    else:
        message = str(error.message)
        if len(message) > _MAX_MESSAGE:
            message = message[: _MAX_MESSAGE - 3] + "..."
        yield SpecProblem(source, path, message)


def unknown_field(name: object) -> str:
    """The message of a field that is not known at its place."""
    return f'unknown field "{name}"'


def known_fields(name: object, known: Sequence[str]) -> str:
    """The fields known at a place, the closest to ``name`` first."""
    close = difflib.get_close_matches(str(name), known, n=_CLOSE_MATCHES)
    return ", ".join([*close, *sorted(field for field in known if field not in close)])


def _described(value: object) -> str:
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
