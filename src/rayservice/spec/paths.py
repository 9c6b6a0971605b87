"""Field paths: how a problem or a change names the place in a manifest it is about.

Validation messages, ``diff`` and ignored-field warnings all spell locations the same way
(``spec.serveConfigV2.applications[0].deployments[1].num_replicas``,
``resources.limits["nvidia.com/gpu"]``). Kept in a module of its own, with no imports, so
that pure code (the planner) can spell paths without loading the validators and Ray.
"""

from __future__ import annotations

import re

_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")


def field_path(prefix: str, *parts: str | int) -> str:
    """Append keys and list indexes to a dotted path: ``a.b[0]``, ``limits["nvidia.com/gpu"]``."""
    path = prefix
    for part in parts:
        if isinstance(part, int):
            path += f"[{part}]"
        elif _PLAIN_KEY.fullmatch(part):
            path += f".{part}" if path else part
        else:
            path += f'["{part}"]'
    return path
