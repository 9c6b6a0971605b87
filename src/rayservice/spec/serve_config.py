"""The Serve config carried in ``spec.serveConfigV2``: parse it and explain what is wrong.

Ray's own ``ServeDeploySchema`` is the authority on what a Serve config may contain, so the
config is validated with it instead of a copy of its rules. Ray reports problems relative to
the config it was given; this module re-anchors them inside the manifest
(``spec.serveConfigV2.applications[0].deployments[1].num_replicas``) and adds explicit messages
for the mistakes users make most often.

It also holds the helpers every manifest check shares (the loader builds on this module):
reading YAML into JSON-compatible values with line and column on errors, and turning pydantic
errors into located problems (at paths spelled by :mod:`rayservice.spec.paths`).
"""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Iterable, Mapping
from typing import Any

import pydantic
import yaml

from rayservice.spec.errors import InvalidSpec, SpecProblem
from rayservice.spec.paths import field_path

SERVE_SCHEMA_HINT = "a config accepted by Ray Serve's ServeDeploySchema"
_IMPORT_PATH_HINT = "a module path and attribute of a bound Serve app, e.g. fruit:deployment_graph"
_AUTO_REPLICAS = "auto"
_NUM_REPLICAS_HINT = 'a positive integer, or "auto" together with autoscaling_config'
_ABSENT = object()
_PYDANTIC_PREFIXES = ("Value error, ", "Assertion failed, ")
_BOUND_WORDS = {"gt": "greater than", "ge": "at least", "lt": "less than", "le": "at most"}
_TYPE_HINTS = {
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "an integer",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "string_type": "a string",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "list_type": "a list",
    "extra_forbidden": "no such field here; remove it",
}


class _JsonCompatibleLoader(yaml.SafeLoader):
    """A safe loader that leaves date-like scalars as strings, so every value is JSON-ready."""


_JsonCompatibleLoader.yaml_implicit_resolvers = {
    first_char: [(tag, regexp) for tag, regexp in resolvers if not tag.endswith(":timestamp")]
    for first_char, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def load_yaml_documents(text: str, source: str, field: str, counted_in: str = "") -> list[Any]:
    """Every document of a YAML stream; a syntax error becomes one problem at ``field``.

    The problem gives the line and column of the error, followed by ``counted_in`` (e.g.
    "of the Serve config") when they are counted within an embedded text.
    """
    try:
        return list(yaml.load_all(text, Loader=_JsonCompatibleLoader))
    except yaml.YAMLError as error:
        message = _describe_yaml_error(error, counted_in)
        raise InvalidSpec([SpecProblem(source, field, message)]) from error


def _describe_yaml_error(error: yaml.YAMLError, counted_in: str) -> str:
    if not isinstance(error, yaml.MarkedYAMLError) or error.problem_mark is None:
        return f"not valid YAML: {error}"
    mark = error.problem_mark
    problem = "; ".join(part for part in (error.context, error.problem) if part)
    position = " ".join(
        filter(None, (f"line {mark.line + 1}, column {mark.column + 1}", counted_in))
    )
    return f"not valid YAML: {problem} at {position}"


def validation_problems(
    errors: Iterable[Mapping[str, Any]],
    data: object,
    source: str,
    prefix: str,
    missing_hints: Mapping[str, str] | None = None,
) -> list[SpecProblem]:
    """Turn pydantic errors (``ValidationError.errors()``) about ``data`` into problems.

    Error locations may contain labels that are not places in the document (the member of a
    union that was tried, a validator's name); they are dropped by following the location
    through ``data``. Errors that end up on the same field are merged into one problem.
    ``missing_hints`` maps a field name to the hint shown when that field is absent.
    """
    merged: dict[str, tuple[list[str], list[str]]] = {}
    for error in errors:
        path = field_path(prefix, *_document_location(error, data))
        messages, hints = merged.setdefault(path, ([], []))
        _add_once(messages, _error_message(error))
        _add_once(hints, _error_hint(error, missing_hints or {}))
    return [
        SpecProblem(source, path, "; ".join(messages), " or ".join(hint for hint in hints if hint))
        for path, (messages, hints) in merged.items()
    ]


def _document_location(error: Mapping[str, Any], data: object) -> list[str | int]:
    location: list[str | int] = []
    node = data
    parts = tuple(error["loc"])
    for index, part in enumerate(parts):
        child = _child(node, part)
        if child is not _ABSENT:
            node = child
        elif not (index == len(parts) - 1 and error["type"] == "missing"):
            continue  # a union member or validator label, not a place in the document
        location.append(part)
    return location


def _child(node: object, part: str | int) -> object:
    if isinstance(node, Mapping):
        return node.get(part, _ABSENT)
    if isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
        return node[part]
    return _ABSENT


def _error_message(error: Mapping[str, Any]) -> str:
    if error["type"] == "missing":
        return "is required"
    message = str(error["msg"])
    for prefix in _PYDANTIC_PREFIXES:
        message = message.removeprefix(prefix)
    value = error.get("input")
    if isinstance(value, str | int | float | bool) or value is None:
        message += f" (got {value!r})"
    return message


def _error_hint(error: Mapping[str, Any], missing_hints: Mapping[str, str]) -> str:
    if error["type"] == "missing":
        return missing_hints.get(str(error["loc"][-1]), "")
    context = error.get("ctx") or {}
    if "expected" in context:
        return str(context["expected"])
    bounds = [f"{words} {context[key]}" for key, words in _BOUND_WORDS.items() if key in context]
    if bounds:
        return "a number " + " and ".join(bounds)
    return _TYPE_HINTS.get(error["type"], "")


def _add_once(items: list[str], item: str) -> None:
    if item not in items:
        items.append(item)


def without_explained(
    problems: list[SpecProblem], explained: list[SpecProblem]
) -> list[SpecProblem]:
    """Drop problems on a field that an explicit problem already explains, or on its parents."""
    return [
        problem
        for problem in problems
        if not any(_is_same_or_parent(problem.field, other.field) for other in explained)
    ]


def _is_same_or_parent(path: str, other: str) -> bool:
    return other == path or other.startswith((f"{path}.", f"{path}["))


def parse_serve_config(text: str, source: str, field: str = "spec.serveConfigV2") -> dict[str, Any]:
    """Parse and validate a Serve config; return it as the mapping to send to Ray.

    Raises :class:`InvalidSpec` listing every problem found, each located inside the config.
    """
    parsed = load_yaml_documents(text, source, field, counted_in="of the Serve config")
    documents = [document for document in parsed if document is not None]
    if len(documents) != 1 or not isinstance(documents[0], dict):
        raise InvalidSpec([_not_a_single_mapping(documents, source, field)])
    config: dict[str, Any] = documents[0]
    problems = _common_mistakes(config, source, field)
    problems += _unknown_field_problems(config, source, field)
    problems += without_explained(_schema_problems(config, source, field), problems)
    if problems:
        raise InvalidSpec(problems)
    return config


def _not_a_single_mapping(documents: list[Any], source: str, field: str) -> SpecProblem:
    if not documents:
        found = "nothing"
    elif len(documents) > 1:
        found = f"{len(documents)} YAML documents"
    else:
        found = f"a {type(documents[0]).__name__}"
    return SpecProblem(
        source,
        field,
        f"must hold one YAML mapping, found {found}",
        "a YAML string with top-level keys such as applications, http_options, proxy_location",
    )


def _schema_problems(config: dict[str, Any], source: str, field: str) -> list[SpecProblem]:
    from ray.serve.schema import ServeDeploySchema  # slow to import: load only when needed

    try:
        ServeDeploySchema.model_validate(config)
    except pydantic.ValidationError as error:
        problems = validation_problems(error.errors(), config, source, field)
        return [
            SpecProblem(p.source, p.field, p.message, p.valid or SERVE_SCHEMA_HINT)
            for p in problems
        ]
    return []


def _unknown_field_problems(config: dict[str, Any], source: str, field: str) -> list[SpecProblem]:
    """Keys Ray's schema does not know, at every level it describes with a model. Ray's
    models ignore unknown keys, so a misspelt ``num_replica`` would otherwise run with the
    default without a word; the field names come from Ray's own models, not a copy."""
    from ray.serve.schema import ServeDeploySchema

    return list(_unknown_keys(config, ServeDeploySchema, source, field))


def _unknown_keys(
    value: object, model: type[pydantic.BaseModel], source: str, path: str
) -> Iterable[SpecProblem]:
    if not isinstance(value, Mapping) or model.model_config.get("extra") == "allow":
        return
    fields = model.model_fields
    known = {name for name in fields} | {f.alias for f in fields.values() if f.alias}
    for key, item in value.items():
        key_path = field_path(path, str(key))
        if key not in known:
            close = difflib.get_close_matches(str(key), sorted(known), n=3)
            rest = sorted(known - set(close))
            yield SpecProblem(
                source, key_path, f'unknown field "{key}"', ", ".join([*close, *rest])
            )
            continue
        name = key if key in fields else next(n for n, f in fields.items() if f.alias == key)
        nested, many = _nested_model(fields[name].annotation)
        if nested is None:
            continue
        if many and isinstance(item, list):
            for index, element in enumerate(item):
                yield from _unknown_keys(element, nested, source, field_path(key_path, index))
        elif not many:
            yield from _unknown_keys(item, nested, source, key_path)


def _nested_model(annotation: object) -> tuple[type[pydantic.BaseModel] | None, bool]:
    """The model a field holds (or holds a list of), looking through Optional and Union."""
    if isinstance(annotation, type) and issubclass(annotation, pydantic.BaseModel):
        return annotation, False
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (list, tuple, set) and args:
        model, _ = _nested_model(args[0])
        return model, model is not None
    if origin in (typing.Union, types.UnionType):
        models = [m for m in (_nested_model(a) for a in args) if m[0] is not None]
        if len(models) == 1:
            return models[0]
    return None, False


def _common_mistakes(config: dict[str, Any], source: str, field: str) -> list[SpecProblem]:
    applications = config.get("applications")
    if not isinstance(applications, list):
        return []
    problems: list[SpecProblem] = []
    apps = [(index, app) for index, app in enumerate(applications) if isinstance(app, dict)]
    default_name, default_route = _application_defaults()
    problems += _duplicates(apps, "name", default_name, source, field)
    problems += _duplicates(apps, "route_prefix", default_route, source, field)
    for index, app in apps:
        app_path = field_path(field, "applications", index)
        if "import_path" not in app:
            problems.append(
                SpecProblem(
                    source,
                    field_path(app_path, "import_path"),
                    "every application needs an import_path",
                    _IMPORT_PATH_HINT,
                )
            )
        problems += _deployment_mistakes(app.get("deployments"), source, app_path)
    return problems


def _application_defaults() -> tuple[object, object]:
    from ray.serve.schema import ServeApplicationSchema

    fields = ServeApplicationSchema.model_fields
    return fields["name"].default, fields["route_prefix"].default


def _duplicates(
    apps: list[tuple[int, dict[str, Any]]], key: str, default: object, source: str, field: str
) -> list[SpecProblem]:
    """Report every application whose ``key`` repeats the value of an earlier one."""
    first_user: dict[str, int] = {}
    problems = []
    for index, app in apps:
        value = app.get(key, default)
        if not isinstance(value, str):
            continue  # no route, or a wrong type that the schema check reports
        if value in first_user:
            problems.append(
                SpecProblem(
                    source,
                    field_path(field, "applications", index, key),
                    f"{key} {value!r} is already used by applications[{first_user[value]}]",
                    f"a {key} that no other application uses",
                )
            )
        else:
            first_user[value] = index
    return problems


def _deployment_mistakes(deployments: object, source: str, app_path: str) -> list[SpecProblem]:
    if not isinstance(deployments, list):
        return []
    problems = []
    for index, deployment in enumerate(deployments):
        if not isinstance(deployment, dict):
            continue
        path = field_path(app_path, "deployments", index, "num_replicas")
        message = _num_replicas_mistake(deployment)
        if message:
            problems.append(SpecProblem(source, path, message, _NUM_REPLICAS_HINT))
    return problems


def _num_replicas_mistake(deployment: dict[str, Any]) -> str:
    num_replicas = deployment.get("num_replicas")
    if num_replicas is None or num_replicas == _AUTO_REPLICAS:
        return ""
    if isinstance(num_replicas, bool) or not isinstance(num_replicas, int):
        return f'num_replicas must be an integer or "{_AUTO_REPLICAS}", got {num_replicas!r}'
    if num_replicas < 1:
        return f"num_replicas must be at least 1, got {num_replicas}"
    if deployment.get("autoscaling_config") is not None:
        return "a fixed num_replicas cannot be combined with autoscaling_config"
    return ""


# Ray Serve's health check defaults, for a deployment whose config and code set none
SERVE_HEALTH_CHECK_PERIOD_S = 10.0
SERVE_HEALTH_CHECK_TIMEOUT_S = 30.0


def health_check_lines(config: Mapping[str, Any]) -> list[str]:
    """``<app>/<deployment>: every <period>s, timeout <timeout>s`` for each deployment the
    config names; values it leaves out are Serve's defaults unless the code sets its own."""
    lines = []
    for app in config.get("applications") or []:
        for deployment in app.get("deployments") or []:
            period = deployment.get("health_check_period_s")
            timeout = deployment.get("health_check_timeout_s")
            lines.append(
                f"{app.get('name', 'default')}/{deployment.get('name', '')}: "
                f"every {SERVE_HEALTH_CHECK_PERIOD_S if period is None else period:g}s, "
                f"timeout {SERVE_HEALTH_CHECK_TIMEOUT_S if timeout is None else timeout:g}s"
            )
    return lines
