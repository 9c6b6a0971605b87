"""Turn manifest text into validated ``RayService`` and ``RayCluster`` objects.

This is the gate every user input passes: nothing is stored or acted on unless it loads here.
A rejected manifest gets every problem found, each with the exact field path and what would
be valid, so a user can fix all of them in one edit. Shape problems (missing fields, wrong
types, fields KubeRay does not know) are reported first; the checks of meaning run once a
document has the right shape. The checks that need Ray (the Serve config schema and the options
of ``ray start``) ask the installed Ray instead of copying its rules, and the Kubernetes objects
inside a spec (pod templates, Services) are checked against Kubernetes' schema
(:mod:`rayservice.spec.kubernetes_schema`). Kubernetes' limits on the size of an object and of
its annotations hold here too, so that a manifest accepted here would be accepted by KubeRay.
"""

from __future__ import annotations

import difflib
import functools
import json
import re
import types
import typing
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import click
import pydantic

from rayservice.spec import autoscaling, fault_tolerance
from rayservice.spec.durations import DURATION_HINT, parse_duration
from rayservice.spec.errors import InvalidSpec, SpecProblem
from rayservice.spec.events import ObjectKind
from rayservice.spec.kubernetes_schema import (
    container_problems,
    known_fields,
    network_rule_problems,
    pod_template_problems,
    service_problems,
    service_type_problems,
    unknown_field,
)
from rayservice.spec.manifest import (
    ADMISSION,
    API_VERSION,
    Manifest,
    NetworkRules,
    RayCluster,
    RayClusterSpec,
    RayService,
    RayServiceSpec,
    WorkerGroupSpec,
    node_groups,
)
from rayservice.spec.paths import field_path
from rayservice.spec.quantities import QUANTITY_HINT, parse_quantity
from rayservice.spec.references import reference_problems
from rayservice.spec.resources import CUSTOM_RESOURCES_HINT, parse_custom_resources
from rayservice.spec.serve_config import (
    load_yaml_documents,
    parse_serve_config,
    validation_problems,
    without_explained,
)
from rayservice.spec.vocabulary import HEAD_GROUP, MAX_RAYCLUSTER_NAME, AnnotationKey, Backend

_MODELS: dict[str, type[RayService] | type[RayCluster]] = {
    ObjectKind.RAY_SERVICE: RayService,
    ObjectKind.RAY_CLUSTER: RayCluster,
}
# KubeRay's limits: a RayService's clusters are named <name>-<5 characters>
MAX_NAME_LENGTH = {
    ObjectKind.RAY_SERVICE: MAX_RAYCLUSTER_NAME - 6,
    ObjectKind.RAY_CLUSTER: MAX_RAYCLUSTER_NAME,
}
_MAX_NAMESPACE_LENGTH = 63
_DNS_1035_LABEL = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
_DNS_1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_CLOSE_MATCHES = 3
MAX_OBJECT_BYTES = 3 * 1024 * 1024 // 2
"""Kubernetes stores an object of at most 1.5 MiB (etcd's default request limit)."""
MAX_ANNOTATION_BYTES = 256 * 1024
"""Kubernetes' limit on the total size of an object's annotations (keys and values)."""
_SELF_CONTAINED_OPTION_TYPES = (
    click.types.IntParamType,
    click.types.FloatParamType,
    click.types.BoolParamType,
    click.Choice,
)
_MISSING_HINTS = {
    "metadata": "a mapping with at least a name",
    "name": "a DNS-1035 label such as my-service",
    "spec": "a mapping with the object's spec",
    "serveConfigV2": "a YAML string in Ray Serve's config format, with applications",
    "rayClusterConfig": "a RayCluster spec with at least a headGroupSpec",
    "headGroupSpec": "the head node's group: rayStartParams and a pod template",
    "groupName": "a name for the worker group, unique within the cluster",
}


def is_dns_1035_label(name: str, max_length: int = _MAX_NAMESPACE_LENGTH) -> bool:
    """Whether ``name`` may name an object (and so a file or folder built from it)."""
    return len(name) <= max_length and _DNS_1035_LABEL.fullmatch(name) is not None


def load_manifests(text: str, source: str) -> list[Manifest]:
    """Load every object of a multi-document YAML text; empty documents are skipped.

    Raises :class:`InvalidSpec` with the problems of all documents. When the text holds more
    than one document, each problem's source names the document it comes from.
    """
    documents = [doc for doc in load_yaml_documents(text, source, "<yaml>") if doc is not None]
    loaded: list[tuple[str, Manifest]] = []
    problems: list[SpecProblem] = []
    for number, document in enumerate(documents, start=1):
        label = source if len(documents) == 1 else f"{source} (document {number})"
        try:
            loaded.append((label, load_manifest(document, label)))
        except InvalidSpec as error:
            problems += error.problems
    problems += _repeated_objects(loaded)
    if problems:
        raise InvalidSpec(problems)
    return [manifest for _, manifest in loaded]


def load_manifest(document: object, source: str, backend: Backend = Backend.LOCAL) -> Manifest:
    """Validate one already-parsed document (e.g. a decoded JSON request body) for the
    ``backend`` that is to run it (a few rules hold on one backend only)."""
    if not isinstance(document, dict):
        found = type(document).__name__
        hint = "a mapping with apiVersion, kind, metadata and spec"
        raise InvalidSpec(
            [SpecProblem(source, "<document>", f"must be a mapping, not {found}", hint)]
        )
    size_problems = list(_size_problems(document, source))
    if size_problems:
        raise InvalidSpec(size_problems)
    problems = list(_type_problems(document, source))
    model = _MODELS.get(str(document.get("kind")))
    if model is None:
        raise InvalidSpec(problems)
    try:
        manifest = model.model_validate(document, context=ADMISSION)
    except pydantic.ValidationError as error:
        unknown = [e for e in error.errors() if e["type"] == "extra_forbidden"]
        others = [e for e in error.errors() if e["type"] != "extra_forbidden"]
        shape_problems = [
            *_unknown_field_problems(unknown, model, document, source),
            *validation_problems(others, document, source, "", _MISSING_HINTS),
        ]
        raise InvalidSpec(problems + without_explained(shape_problems, problems)) from error
    problems += _content_problems(manifest, source, backend)
    if problems:
        raise InvalidSpec(problems)
    return manifest


def _size_problems(document: dict[str, Any], source: str) -> Iterator[SpecProblem]:
    size = len(json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode())
    if size > MAX_OBJECT_BYTES:
        message = f"the object is {size} bytes as JSON; Kubernetes stores at most 1.5 MiB"
        hint = f"at most {MAX_OBJECT_BYTES} bytes: move large content out of the manifest"
        yield SpecProblem(source, "<document>", message, hint)
        return
    metadata = document.get("metadata")
    annotations = metadata.get("annotations") if isinstance(metadata, dict) else None
    if not isinstance(annotations, dict):
        return
    total = sum(
        len(str(key).encode()) + len(str(value).encode()) for key, value in annotations.items()
    )
    if total > MAX_ANNOTATION_BYTES:
        message = f"total {total} bytes; Kubernetes allows at most 256 KiB of annotations"
        hint = f"annotations of at most {MAX_ANNOTATION_BYTES} bytes in all (keys and values)"
        yield SpecProblem(source, "metadata.annotations", message, hint)


def _unknown_field_problems(
    errors: list[Any], model: type[pydantic.BaseModel], document: object, source: str
) -> Iterator[SpecProblem]:
    """One problem per field the models do not know, with the fields known at its place."""
    for path, name, known in _unknown_fields(errors, model, document):
        yield SpecProblem(source, path, unknown_field(name), known_fields(name, known))


def _unknown_fields(
    errors: list[Any], model: type[pydantic.BaseModel], document: object
) -> Iterator[tuple[str, str, list[str]]]:
    for error in errors:
        location = _document_location(tuple(error["loc"]), document)
        name = str(location[-1])
        yield field_path("", *location), name, _fields_at(model, location[:-1])


def _document_location(loc: tuple[str | int, ...], document: object) -> list[str | int]:
    """The parts of a pydantic location that are places in the document (a union member's
    label is not)."""
    location: list[str | int] = []
    node = document
    for part in loc:
        is_key = isinstance(node, Mapping) and part in node
        is_index = isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
        if is_key or is_index:
            node = node[part]  # type: ignore[index]
            location.append(part)
    return location


def _fields_at(model: type[pydantic.BaseModel], location: Sequence[str | int]) -> list[str]:
    """The fields of the model found at ``location`` (list indexes skipped) under ``model``."""
    current = [model]
    for part in location:
        if isinstance(part, int):
            continue
        owner = next((m for m in current if part in m.model_fields), None)
        if owner is not None:
            current = _models_in(owner.model_fields[part].annotation)
    return list(current[0].model_fields) if current else []


def _models_in(annotation: object) -> list[type[pydantic.BaseModel]]:
    """The models an annotation may hold: itself, or inside a list, an optional or a union."""
    if isinstance(annotation, type) and issubclass(annotation, pydantic.BaseModel):
        return [annotation]
    if isinstance(annotation, types.GenericAlias | types.UnionType) or typing.get_args(annotation):
        return [model for arg in typing.get_args(annotation) for model in _models_in(arg)]
    return []


def _type_problems(document: dict[str, Any], source: str) -> Iterator[SpecProblem]:
    api_version, kind = document.get("apiVersion"), document.get("kind")
    if api_version != API_VERSION:
        yield SpecProblem(source, "apiVersion", _missing_or_unknown(api_version), API_VERSION)
    if kind not in _MODELS:
        yield SpecProblem(source, "kind", _missing_or_unknown(kind), ", ".join(_MODELS))


def _missing_or_unknown(value: object) -> str:
    return "is required" if value is None else f"{value!r} is not supported"


def _repeated_objects(loaded: list[tuple[str, Manifest]]) -> Iterator[SpecProblem]:
    first_source: dict[tuple[str, str], str] = {}
    for source, manifest in loaded:
        identity = (manifest.kind, manifest.key)
        if identity in first_source:
            message = f"{manifest.kind} {manifest.key} is also defined in {first_source[identity]}"
            yield SpecProblem(source, "metadata.name", message, "one definition per object")
        else:
            first_source[identity] = source


def _content_problems(manifest: Manifest, source: str, backend: Backend) -> list[SpecProblem]:
    problems = list(_metadata_problems(manifest, source))
    if isinstance(manifest, RayCluster):
        annotations = manifest.metadata.annotations
        return problems + list(
            _cluster_problems(manifest.spec, annotations, source, "spec", backend)
        )
    problems += _initializing_timeout_problems(manifest, source)
    problems += _serve_config_problems(manifest.spec.serveConfigV2, source)
    problems += _cluster_problems(
        manifest.spec.rayClusterConfig,
        manifest.metadata.annotations,
        source,
        "spec.rayClusterConfig",
        backend,
    )
    problems += _service_setting_problems(manifest.spec, source)
    if manifest.spec.serveService is not None:
        problems += service_problems(manifest.spec.serveService, source, "spec.serveService")
    return problems


def _metadata_problems(manifest: Manifest, source: str) -> Iterator[SpecProblem]:
    name, namespace = manifest.metadata.name, manifest.metadata.namespace
    max_length = MAX_NAME_LENGTH[ObjectKind(manifest.kind)]
    name_hint = (
        "lowercase letters, digits and '-', starting with a letter and ending with a letter or "
        f"digit, at most {max_length} characters"
    )
    if not _DNS_1035_LABEL.fullmatch(name):
        yield SpecProblem(source, "metadata.name", f"{name!r} is not a DNS-1035 label", name_hint)
    if len(name) > max_length:
        message = f"is {len(name)} characters long; a {manifest.kind} name may have {max_length}"
        yield SpecProblem(source, "metadata.name", message, name_hint)
    if len(namespace) > _MAX_NAMESPACE_LENGTH or not _DNS_1123_LABEL.fullmatch(namespace):
        hint = "lowercase letters, digits and '-', starting and ending with a letter or digit"
        message = f"{namespace!r} is not a DNS-1123 label"
        yield SpecProblem(source, "metadata.namespace", message, f"{hint}, at most 63 characters")


def _initializing_timeout_problems(service: RayService, source: str) -> list[SpecProblem]:
    """KubeRay's ``ray.io/initializing-timeout``: empty, or a positive duration."""
    value = service.metadata.annotations.get(AnnotationKey.INITIALIZING_TIMEOUT, "")
    try:
        if value:
            parse_duration(value)
    except ValueError as error:
        path = f"metadata.annotations.{AnnotationKey.INITIALIZING_TIMEOUT}"
        return [SpecProblem(source, path, str(error), DURATION_HINT)]
    return []


def _serve_config_problems(serve_config: str, source: str) -> list[SpecProblem]:
    try:
        parse_serve_config(serve_config, source)
    except InvalidSpec as error:
        return error.problems
    return []


def _service_setting_problems(spec: RayServiceSpec, source: str) -> Iterator[SpecProblem]:
    yield from _out_of_bounds(
        source, "spec.rayClusterDeletionDelaySeconds", spec.rayClusterDeletionDelaySeconds, 0
    )
    yield from _out_of_bounds(
        source, "spec.pendingClusterTimeoutSeconds", spec.pendingClusterTimeoutSeconds, 1
    )
    options = spec.upgradeStrategy.clusterUpgradeOptions
    if options is None:
        return
    path = "spec.upgradeStrategy.clusterUpgradeOptions"
    # 0 would leave no room to raise the new cluster before the old one is lowered
    yield from _out_of_bounds(source, f"{path}.maxSurgePercent", options.maxSurgePercent, 1, 100)
    yield from _out_of_bounds(source, f"{path}.stepSizePercent", options.stepSizePercent, 1, 100)
    yield from _out_of_bounds(source, f"{path}.intervalSeconds", options.intervalSeconds, 1)


def _out_of_bounds(
    source: str, path: str, value: int | None, low: int, high: int | None = None
) -> Iterator[SpecProblem]:
    """One problem when an optional integer lies outside ``[low, high]``."""
    if value is None or (low <= value and (high is None or value <= high)):
        return
    if high is None:
        yield SpecProblem(
            source, path, f"must be at least {low}, got {value}", f"an integer >= {low}"
        )
    else:
        message = f"must be between {low} and {high}, got {value}"
        yield SpecProblem(source, path, message, f"an integer from {low} to {high}")


def _cluster_problems(
    spec: RayClusterSpec,
    annotations: Mapping[str, str],
    source: str,
    prefix: str,
    backend: Backend,
) -> Iterator[SpecProblem]:
    yield from fault_tolerance.problems(spec, annotations, source, prefix)
    yield from autoscaling.problems(spec, source, prefix)
    if backend is Backend.LOCAL:
        yield from autoscaling.local_problems(spec, source, prefix)
    yield from reference_problems(spec, source, prefix)
    for relative_path, group in node_groups(spec):
        group_path = f"{prefix}.{relative_path}"
        yield from _ray_start_param_problems(group.rayStartParams, source, group_path)
        yield from pod_template_problems(group.template, source, f"{group_path}.template")
        yield from _container_quantity_problems(group.template, source, group_path)
    yield from _embedded_kubernetes_problems(spec, source, prefix)
    group_paths = {HEAD_GROUP: f"{prefix}.headGroupSpec"}
    for index, group in enumerate(spec.workerGroupSpecs):
        path = field_path(prefix, "workerGroupSpecs", index)
        yield from _group_name_problems(group.groupName, group_paths, source, path)
        group_paths.setdefault(group.groupName, path)
        yield from _replica_problems(group, source, path)


def _embedded_kubernetes_problems(
    spec: RayClusterSpec, source: str, prefix: str
) -> Iterator[SpecProblem]:
    """The Kubernetes objects and fields a cluster spec holds outside its pod templates."""
    service_type = spec.headGroupSpec.serviceType
    if service_type is not None:
        yield from service_type_problems(
            service_type, source, f"{prefix}.headGroupSpec.serviceType"
        )
    head_service = spec.headGroupSpec.headService
    if head_service is not None:
        yield from service_problems(head_service, source, f"{prefix}.headGroupSpec.headService")
    containers: list[tuple[str, pydantic.BaseModel | None]] = [
        ("autoscalerOptions", spec.autoscalerOptions),
    ]
    if spec.historyServerOptions is not None:
        collector = spec.historyServerOptions.collectorOptions
        containers.append(("historyServerOptions.collectorOptions", collector))
    for relative_path, options in containers:
        if options is not None:
            fields = options.model_dump(
                exclude_none=True, exclude=set(autoscaling.AUTOSCALER_SETTINGS)
            )
            yield from container_problems(fields, source, f"{prefix}.{relative_path}")
    policy = spec.networkPolicy
    if policy is None:
        return
    rules: list[tuple[str, NetworkRules | None]] = [
        ("head", policy.head),
        ("worker", policy.worker),
    ]
    rules += [(f"workerGroups[{i}]", group) for i, group in enumerate(policy.workerGroups or [])]
    for relative_path, group_rules in rules:
        if group_rules is None:
            continue
        path = f"{prefix}.networkPolicy.{relative_path}"
        for direction, found in (
            ("ingress", group_rules.ingressRules),
            ("egress", group_rules.egressRules),
        ):
            if found is not None:
                yield from network_rule_problems(
                    found, direction, source, f"{path}.{direction}Rules"
                )


def _group_name_problems(
    name: str, group_paths: dict[str, str], source: str, path: str
) -> Iterator[SpecProblem]:
    name_path = field_path(path, "groupName")
    hint = "a group name used by no other group in this cluster"
    if name == HEAD_GROUP:
        yield SpecProblem(source, name_path, f"{name!r} is reserved for the head group", hint)
    elif not name:
        yield SpecProblem(source, name_path, "must not be empty", hint)
    elif name in group_paths:
        message = f"{name!r} is already the name of {group_paths[name]}"
        yield SpecProblem(source, name_path, message, hint)


def _replica_problems(group: WorkerGroupSpec, source: str, path: str) -> Iterator[SpecProblem]:
    yield from _out_of_bounds(source, field_path(path, "numOfHosts"), group.numOfHosts, 1)
    counts = {
        "replicas": group.replicas,
        "minReplicas": group.minReplicas,
        "maxReplicas": group.maxReplicas,
    }
    negative = [name for name, count in counts.items() if count is not None and count < 0]
    for name in negative:
        yield from _out_of_bounds(source, field_path(path, name), counts[name], 0)
    if not negative:
        yield from _replica_bound_problems(group, source, path)


def _replica_bound_problems(
    group: WorkerGroupSpec, source: str, path: str
) -> Iterator[SpecProblem]:
    low, high = group.minReplicas, group.maxReplicas
    if low > high:
        message = f"minReplicas {low} is greater than maxReplicas {high}"
        yield SpecProblem(source, field_path(path, "minReplicas"), message, f"at most {high}")
    elif group.replicas is not None:
        yield from _out_of_bounds(source, field_path(path, "replicas"), group.replicas, low, high)


def _ray_start_param_problems(
    params: dict[str, str], source: str, group_path: str
) -> Iterator[SpecProblem]:
    options = ray_start_options()
    for name, value in params.items():
        path = field_path(group_path, "rayStartParams", name)
        option = options.get(name)
        if option is None:
            yield SpecProblem(source, path, f"{name!r} is not an option of ray start", _near(name))
            continue
        message = _option_value_problem(option, value)
        if message:
            yield SpecProblem(source, path, message, _option_value_hint(option))
    if "resources" in params:
        try:
            parse_custom_resources(params["resources"])
        except ValueError as error:
            path = field_path(group_path, "rayStartParams", "resources")
            yield SpecProblem(source, path, str(error), CUSTOM_RESOURCES_HINT)


@functools.cache
def ray_start_options() -> dict[str, click.Parameter]:
    """The options of the installed ``ray start`` command, by name without leading dashes."""
    from ray.scripts.scripts import start  # slow to import: load only when needed

    return {
        name.removeprefix("--"): param
        for param in start.params
        for name in param.opts
        if name.startswith("--")
    }


def _near(name: str) -> str:
    close = difflib.get_close_matches(name, ray_start_options(), n=_CLOSE_MATCHES)
    suggestion = f"did you mean {', '.join(close)}? " if close else ""
    return f"{suggestion}any `ray start` option without its leading dashes"


def _option_value_problem(option: click.Parameter, value: str) -> str:
    """Why ``ray start`` would refuse ``value``; only types that need no files are checked."""
    param_type: click.ParamType[Any, Any] = option.type
    if not isinstance(option.type, _SELF_CONTAINED_OPTION_TYPES):
        return ""
    try:
        param_type.convert(value, option, None)
    except click.BadParameter as error:
        return error.format_message()
    return ""


def _option_value_hint(option: click.Parameter) -> str:
    if isinstance(option.type, click.Choice):
        return "one of " + ", ".join(str(choice) for choice in option.type.choices)
    return {"integer": "an integer", "float": "a number", "boolean": "true or false"}.get(
        option.type.name, option.type.name
    )


def _container_quantity_problems(
    template: dict[str, Any], source: str, group_path: str
) -> Iterator[SpecProblem]:
    for location, amount in _container_amounts(template):
        try:
            parse_quantity(amount)
        except ValueError as error:
            path = field_path(group_path, "template", *location)
            yield SpecProblem(source, path, str(error), QUANTITY_HINT)


def _container_amounts(template: dict[str, Any]) -> Iterator[tuple[tuple[str | int, ...], Any]]:
    """Every resource amount of every container, with its location inside the template."""
    pod_spec = template.get("spec")
    containers = pod_spec.get("containers") if isinstance(pod_spec, dict) else None
    for index, container in enumerate(containers if isinstance(containers, list) else []):
        resources = container.get("resources") if isinstance(container, dict) else None
        for kind in ("limits", "requests"):
            amounts = resources.get(kind) if isinstance(resources, dict) else None
            for name, amount in (amounts if isinstance(amounts, dict) else {}).items():
                yield ("spec", "containers", index, "resources", kind, name), amount
