"""The text ``rayservice diff`` and ``apply --dry-run`` print for one service's dry run.

A first line ``<name>: <kind>``, the summary, then the fields that cause the change under their
group (cluster, workers, serve, settings), one ``path: before -> after`` line each. Values are
shown as JSON, so text keeps its quotes (``"1" -> "2"``) and numbers do not (``3 -> 4``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from rayservice.planner.change import SERVE_CONFIG_FIELD

UNSET = "(unset)"
MAX_VALUE_WIDTH = 60
_SERVE_CONFIG_PREFIX = SERVE_CONFIG_FIELD + "."


def change_report(name: str, change: Mapping[str, Any]) -> str:
    """The lines for one service, from the API's dry-run answer."""
    lines = [f"{name}: {change['kind']}", f"  {change['summary']}"]
    for group, fields in _by_group(change["fields"]).items():
        lines.append(f"  {group}:")
        lines += [f"    {_field_line(field)}" for field in fields]
    return "\n".join(lines)


def _by_group(fields: Iterable[Mapping[str, Any]]) -> dict[str, list[Mapping[str, Any]]]:
    groups: dict[str, list[Mapping[str, Any]]] = {}
    for field in fields:
        groups.setdefault(field["group"], []).append(field)
    return groups


def _field_line(field: Mapping[str, Any]) -> str:
    before, after = _shown_value(field, "before"), _shown_value(field, "after")
    return f"{_shown_path(field['path'])}: {before} -> {after}"


def _shown_path(path: str) -> str:
    """A path inside the Serve config follows the field that holds the config's text:
    ``spec.serveConfigV2: applications[0].route_prefix``."""
    if path.startswith(_SERVE_CONFIG_PREFIX):
        return f"{SERVE_CONFIG_FIELD}: {path.removeprefix(_SERVE_CONFIG_PREFIX)}"
    return path


def _shown_value(field: Mapping[str, Any], side: str) -> str:
    """The value on one side as JSON, shortened when long; the API leaves out an absent side."""
    if side not in field:
        return UNSET
    text = json.dumps(field[side], ensure_ascii=False)
    return text if len(text) <= MAX_VALUE_WIDTH else text[: MAX_VALUE_WIDTH - 3] + "..."
