"""Secrets and ConfigMaps applied through rayservice, put in the Kubernetes cluster as they are.

On the Kubernetes backend the pods resolve the references of a cluster spec themselves, so the
objects they name must be in their namespace: each one applied to rayservice is applied to the
cluster first (nothing is stored when the cluster refuses it or cannot be reached), with the
labels that say whose it is, and deleted from it when deleted from rayservice.
"""

from __future__ import annotations

from typing import Any

from rayservice.kubeapi.base import KubernetesApi
from rayservice.kubernetes.kinds import CONFIG_MAP, SECRET
from rayservice.kubernetes.labels import MANAGER, Label

_KINDS = {SECRET.kind: SECRET, CONFIG_MAP.kind: CONFIG_MAP}
_SERVER_SET = ("uid", "resourceVersion", "creationTimestamp", "generation", "managedFields")


class ConfigMirror:
    def __init__(self, api: KubernetesApi, controller: str) -> None:
        self.api = api
        self.controller = controller

    def put(self, stored: dict[str, Any]) -> None:
        """Apply a Secret or ConfigMap in the form rayservice stores it (values in ``data``)."""
        metadata = {k: v for k, v in stored["metadata"].items() if k not in _SERVER_SET}
        labels = {
            **(metadata.get("labels") or {}),
            Label.MANAGED_BY: MANAGER,
            Label.CONTROLLER: self.controller,
        }
        self.api.apply({**stored, "apiVersion": "v1", "metadata": {**metadata, "labels": labels}})

    def remove(self, kind: str, namespace: str, name: str) -> None:
        self.api.delete(_KINDS[kind], namespace, name)
