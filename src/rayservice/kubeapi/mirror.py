"""Secrets and ConfigMaps applied through rayservice, put in the Kubernetes cluster as they are.

On the Kubernetes backend the pods resolve the references of a cluster spec themselves, so the
objects they name must be in their namespace: each one applied to rayservice is applied to the
cluster first (nothing is stored when the cluster refuses it or cannot be reached), with the
labels that say whose it is, and deleted from it when deleted from rayservice. One made there
by someone else (another tool, another controller) is theirs: it is neither overwritten nor
deleted, but its values count for the warnings of an apply (``values``): the pods read them.
"""

from __future__ import annotations

from typing import Any

from rayservice.kubeapi.base import KubernetesApi, KubernetesRefused
from rayservice.kubernetes.kinds import CONFIG_MAP, SECRET
from rayservice.kubernetes.labels import MANAGER, Label
from rayservice.spec.config_objects import environment_values

_KINDS = {SECRET.kind: SECRET, CONFIG_MAP.kind: CONFIG_MAP}
_SERVER_SET = ("uid", "resourceVersion", "creationTimestamp", "generation", "managedFields")


class ConfigMirror:
    def __init__(self, api: KubernetesApi, controller: str) -> None:
        self.api = api
        self.controller = controller

    def put(self, stored: dict[str, Any]) -> None:
        """Apply a Secret or ConfigMap in the form rayservice stores it (values in ``data``);
        refused when the cluster has one of that name that is not this controller's."""
        kind, metadata = _KINDS[stored["kind"]], stored["metadata"]
        found = self.api.get(kind, metadata["namespace"], metadata["name"])
        if found is not None and not self._ours(found):
            raise KubernetesRefused(
                f"{kind.kind} {metadata['namespace']}/{metadata['name']} exists in the"
                " Kubernetes cluster and is not this controller's: delete it there, or give"
                " this one another name"
            )
        metadata = {k: v for k, v in metadata.items() if k not in _SERVER_SET}
        labels = {
            **(metadata.get("labels") or {}),
            Label.MANAGED_BY: MANAGER,
            Label.CONTROLLER: self.controller,
        }
        self.api.apply({**stored, "apiVersion": "v1", "metadata": {**metadata, "labels": labels}})

    def remove(self, kind: str, namespace: str, name: str) -> None:
        """Delete the cluster's object of that name, if it is this controller's."""
        found = self.api.get(_KINDS[kind], namespace, name)
        if found is not None and self._ours(found):
            self.api.delete(_KINDS[kind], namespace, name)

    def values(self, kind: str, namespace: str, name: str) -> dict[str, bytes] | None:
        """What a container's environment can take from the cluster's Secret or ConfigMap of
        that name, whoever made it (as the pods would read it); None when it has none."""
        found = self.api.get(_KINDS[kind], namespace, name)
        return None if found is None else environment_values({**found, "kind": kind})

    def _ours(self, found: dict[str, Any]) -> bool:
        labels = found["metadata"].get("labels") or {}
        return bool(labels.get(Label.CONTROLLER) == self.controller)
