"""Which kubeconfig the controller reads, as kubectl decides it: ``--kubeconfig FILE`` alone,
else every file ``$KUBECONFIG`` lists merged, else ``~/.kube/config``.

kubectl merges the files of ``$KUBECONFIG`` (``:``-separated) in order: a cluster, user or
context keeps the first definition of its name, the current context is the first one set, and a
file that does not exist is passed over. A relative path in a file (a certificate, a key, a
token file, a credential plugin's command naming a folder) means a path beside that file, so it
is made absolute before the files are merged.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

DEFAULT_KUBECONFIG = Path("~/.kube/config")
_NAMED_LISTS = ("clusters", "users", "contexts")
_FILE_FIELDS = {  # in each named entry's body: fields naming a file
    "clusters": ("certificate-authority",),
    "users": ("client-certificate", "client-key", "tokenFile"),
    "contexts": (),
}


class KubeconfigError(ValueError):
    """No kubeconfig to read, or one that is not a kubeconfig."""


def kubeconfig_files(given: Path | None, environment: Mapping[str, str]) -> list[Path]:
    """The files to read: the one given, else those of ``$KUBECONFIG`` that exist, else the
    default one."""
    if given is not None:
        return [given.expanduser().absolute()]
    listed = [
        Path(entry).expanduser().absolute()
        for entry in environment.get("KUBECONFIG", "").split(os.pathsep)
        if entry
    ]
    if not listed:
        return [DEFAULT_KUBECONFIG.expanduser().absolute()]
    existing = [path for path in listed if path.is_file()]
    if not existing:
        raise KubeconfigError(f"none of the files $KUBECONFIG lists exists: {listed}")
    return existing


def merged_kubeconfig(files: Sequence[Path]) -> dict[str, Any]:
    """The files' kubeconfigs as one, merged as kubectl merges them."""
    merged: dict[str, Any] = {"apiVersion": "v1", "kind": "Config"}
    merged.update({part: [] for part in _NAMED_LISTS})
    for path in files:
        document = _read(path)
        if not merged.get("current-context") and document.get("current-context"):
            merged["current-context"] = document["current-context"]
        for part in _NAMED_LISTS:
            known = {entry["name"] for entry in merged[part]}
            for entry in document.get(part) or []:
                named = isinstance(entry, dict) and isinstance(entry.get("name"), str)
                if named and entry["name"] not in known:
                    merged[part].append(_anchored(entry, part, path.parent))
                    known.add(entry["name"])
    return merged


def _read(path: Path) -> dict[str, Any]:
    try:
        document = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as error:
        raise KubeconfigError(f"cannot read the kubeconfig {path}: {error}") from error
    if document is None:
        return {}
    if not isinstance(document, dict):
        raise KubeconfigError(f"the kubeconfig {path} is not a mapping")
    return document


def _anchored(entry: dict[str, Any], part: str, folder: Path) -> dict[str, Any]:
    """``entry`` with its relative file paths made paths beside its file."""
    body_key = part[:-1]  # clusters -> cluster, users -> user, contexts -> context
    body = entry.get(body_key)
    if not isinstance(body, dict):
        return entry
    anchored = dict(body)
    for field in _FILE_FIELDS[part]:
        value = anchored.get(field)
        if isinstance(value, str) and value and not Path(value).is_absolute():
            anchored[field] = str(folder / value)
    plugin = anchored.get("exec")
    if isinstance(plugin, dict):
        command = plugin.get("command")
        if isinstance(command, str) and "/" in command and not Path(command).is_absolute():
            anchored["exec"] = {**plugin, "command": str(folder / command)}  # else on PATH
    return {**entry, body_key: anchored}
