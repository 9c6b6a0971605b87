"""An in-memory KubernetesApi for unit tests: objects with the metadata a server sets (uid,
resourceVersion, creationTimestamp), label selectors, apply as server-side apply by the only
manager of the fields it sends (what it stops sending goes; labels and annotations are merged;
a resourceVersion sent is a precondition),
and knobs for what a test makes the cluster lack (a CRD, permissions) or refuse."""

from __future__ import annotations

import copy
import itertools
import uuid
from collections.abc import Mapping
from typing import Any

from rayservice.kubeapi.base import (
    KindNotServed,
    KubernetesConflict,
    KubernetesRefused,
    KubernetesUnavailable,
)
from rayservice.kubernetes.access import NEEDED
from rayservice.kubernetes.kinds import POD, RAY_CLUSTER_CRD, Kind, kind_of

_Key = tuple[Kind, str, str]


def merged(base: Any, change: Any) -> Any:
    """``change`` laid over ``base``: mappings merge key by key, anything else is replaced."""
    if isinstance(base, dict) and isinstance(change, dict):
        result = dict(base)
        for key, value in change.items():
            result[key] = merged(base.get(key), value)
        return result
    return copy.deepcopy(change)


class FakeKubernetesApi:
    def __init__(self) -> None:
        self.objects: dict[_Key, dict[str, Any]] = {}
        self.crds: set[str] = {RAY_CLUSTER_CRD}
        self.denied: set[tuple[str, str]] = set()  # (verb, resource) the identity may not do
        self.reachable = True
        self.refuse: dict[_Key, str] = {}  # objects whose apply the server refuses, and why
        self.logs: dict[tuple[str, str, str], str] = {}  # (namespace, pod, container) -> text
        self.answers: dict[tuple[str, str, int, str], str] = {}  # what pods answer on a port
        self.unserved: set[Kind] = set()  # kinds whose CRD the cluster lacks
        self._versions = itertools.count(1)

    def _check_reachable(self) -> None:
        if not self.reachable:
            raise KubernetesUnavailable("the API server cannot be reached: connection refused")

    def get(self, kind: Kind, namespace: str, name: str) -> dict[str, Any] | None:
        self._check_reachable()
        found = self.objects.get((kind, namespace, name))
        return copy.deepcopy(found) if found is not None else None

    def select(
        self, kind: Kind, namespace: str | None, labels: Mapping[str, str] | None = None
    ) -> list[dict[str, Any]]:
        self._check_reachable()
        if kind in self.unserved:
            raise KindNotServed(f"{kind.api_version} {kind.kind} is not served by the cluster")
        wanted = dict(labels or {}).items()
        return [
            copy.deepcopy(obj)
            for (k, ns, _), obj in sorted(self.objects.items(), key=lambda item: item[0][2])
            if k == kind and namespace in (None, ns)
            and wanted <= (obj["metadata"].get("labels") or {}).items()
        ]  # fmt: skip

    def apply(self, obj: dict[str, Any]) -> dict[str, Any]:
        self._check_reachable()
        kind = kind_of(obj)
        key = (kind, obj["metadata"]["namespace"], obj["metadata"]["name"])
        if key in self.refuse:
            raise KubernetesRefused(f"applying {kind.kind} {key[1]}/{key[2]}: {self.refuse[key]}")
        current = self.objects.get(key)
        version = (current or {}).get("metadata", {}).get("resourceVersion")
        if obj["metadata"].get("resourceVersion") not in (None, version):
            raise KubernetesConflict(
                f"applying {kind.kind} {key[1]}/{key[2]}: the API server answered 409:"
                " the object has been modified; please apply your changes to the latest version"
            )
        if current is None:
            server_set = {"uid": str(uuid.uuid4()), "creationTimestamp": "2026-01-01T00:00:00Z"}
            current = {"metadata": server_set}
        # server-side apply by the only manager of the object's fields: what it stops sending
        # goes; its labels and annotations join the ones others set
        updated = {**copy.deepcopy(obj), "metadata": merged(current["metadata"], obj["metadata"])}
        updated["metadata"]["resourceVersion"] = str(next(self._versions))
        self.objects[key] = updated
        return copy.deepcopy(updated)

    def set_labels(self, kind: Kind, namespace: str, name: str, labels: Mapping[str, str]) -> None:
        self._check_reachable()
        key = (kind, namespace, name)
        if key not in self.objects:
            raise KubernetesRefused(f"labelling {kind.kind} {namespace}/{name}: not found")
        current = self.objects[key]
        self.objects[key] = merged(current, {"metadata": {"labels": dict(labels)}})
        self.objects[key]["metadata"]["resourceVersion"] = str(next(self._versions))

    def delete(self, kind: Kind, namespace: str, name: str) -> None:
        self._check_reachable()
        self.objects.pop((kind, namespace, name), None)

    def pod_logs(self, namespace: str, pod: str, container: str, tail: int) -> str:
        self._check_reachable()
        if (POD, namespace, pod) not in self.objects:
            raise KubernetesRefused(f"reading the logs of pod {namespace}/{pod}: not found")
        lines = self.logs.get((namespace, pod, container), "").splitlines(keepends=True)
        return "".join(lines[-tail:] if tail > 0 else [])

    def proxy_get(self, namespace: str, pod: str, port: int, path: str) -> str | None:
        if not self.reachable:
            return None
        return self.answers.get((namespace, pod, port, path))

    def service_url(self, namespace: str, service: str, port: str) -> str:
        return (
            f"https://kubernetes.test/api/v1/namespaces/{namespace}/services/{service}:{port}/proxy"
        )

    def missing_permissions(self, namespace: str) -> list[str]:
        self._check_reachable()
        return [
            f"{verb} {permission.resource} ({permission.why})"
            for permission in NEEDED
            for verb in permission.verbs
            if (verb, permission.resource) in self.denied
        ]

    def crd_installed(self, name: str) -> bool:
        self._check_reachable()
        return name in self.crds
