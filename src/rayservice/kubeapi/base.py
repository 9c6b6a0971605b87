"""The KubernetesApi protocol: the few calls the Kubernetes backend makes, on plain objects.

Objects go in and come out as JSON-like dicts (what the builders make and ``get -o json``
shows), so that nothing above this layer depends on a client library. Every call is
idempotent: ``apply`` is server-side apply (rayservice's fields, forced, so a manual edit of
them is put back), ``delete`` of an object already gone succeeds.

Failures are typed by what the caller should do: :class:`KubernetesUnavailable` (the API server
cannot be reached or answered 5xx, 409 or 429: try again later), :class:`KubernetesRefused` (it
refused the request as it is: 4xx, with its message; trying again changes nothing).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from rayservice.kubernetes.kinds import Kind
from rayservice.spec.errors import PermanentError, TemporaryError

FIELD_MANAGER = "rayservice"  # who owns the fields rayservice applies (server-side apply)


class KubernetesUnavailable(TemporaryError):
    """The API server cannot be reached now, or asks to be tried again."""


class KubernetesConflict(KubernetesUnavailable):
    """The object was written since the version a request named (409): read it again."""


class KubernetesRefused(PermanentError):
    """The API server refused the request (invalid, forbidden, unknown kind)."""


class KindNotServed(KubernetesRefused):
    """The API server serves no objects of this kind (its CRD is not installed)."""


class KubernetesApi(Protocol):
    def get(self, kind: Kind, namespace: str, name: str) -> dict[str, Any] | None:
        """The object, or None when there is none."""
        ...

    def select(
        self, kind: Kind, namespace: str | None, labels: Mapping[str, str] | None = None
    ) -> list[dict[str, Any]]:
        """The objects of ``kind`` in ``namespace`` (None: in every namespace) that carry every
        one of ``labels``; :class:`KindNotServed` when the cluster has no such kind."""
        ...

    def apply(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Create ``obj``, or make the fields it sets what it says; returns the object as the
        server has it then (with its uid, resourceVersion and the like). A resourceVersion in
        ``obj`` is a precondition: :class:`KubernetesConflict` (409) when the object has been
        written since."""
        ...

    def set_labels(self, kind: Kind, namespace: str, name: str, labels: Mapping[str, str]) -> None:
        """Set ``labels`` on an object made by someone else (a pod of KubeRay's), keeping the
        rest of its labels."""
        ...

    def delete(self, kind: Kind, namespace: str, name: str) -> None:
        """Delete the object; nothing when it is gone already."""
        ...

    def pod_logs(self, namespace: str, pod: str, container: str, tail: int) -> str:
        """The last ``tail`` lines ``container`` of ``pod`` wrote."""
        ...

    def proxy_get(self, namespace: str, pod: str, port: int, path: str) -> str | None:
        """What ``pod`` answers to GET ``path`` on ``port``, asked through the API server (no
        route into the cluster needed); None when it does not answer with 200."""
        ...

    def service_url(self, namespace: str, service: str, port: str) -> str:
        """Where the API server proxies to the port named ``port`` of ``service``."""
        ...

    def missing_permissions(self, namespace: str) -> list[str]:
        """What the controller's identity may not do in ``namespace`` of what it needs
        (:data:`rayservice.kubernetes.access.NEEDED`), one line each: "verb resource (why)"."""
        ...

    def crd_installed(self, name: str) -> bool:
        """Whether the CustomResourceDefinition ``name`` (e.g. rayclusters.ray.io) exists."""
        ...
