"""The KubernetesApi on lightkube: a typed, sync Kubernetes client with server-side apply.

The controller runs where the user is, so it reads the user's kubeconfig (``--kubeconfig``, else
the files ``$KUBECONFIG`` lists, merged, else ``~/.kube/config``; ``--context``, else the current
one), as kubectl does.
Every kind is used as a generic resource: objects stay the plain dicts the builders make, with
no field dropped on the way. Errors are interpreted here, once (:func:`_interpreted`).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import httpx
from lightkube import Client, KubeConfig
from lightkube.config import client_adapter
from lightkube.core.exceptions import ConfigError
from lightkube.generic_resource import create_global_resource, create_namespaced_resource
from lightkube.types import PatchType

from rayservice.kubeapi.base import (
    FIELD_MANAGER,
    KindNotServed,
    KubernetesConflict,
    KubernetesRefused,
    KubernetesUnavailable,
)
from rayservice.kubeapi.kubeconfig import KubeconfigError, kubeconfig_files, merged_kubeconfig
from rayservice.kubernetes.access import NEEDED
from rayservice.kubernetes.kinds import Kind, kind_of

_T = TypeVar("_T")
ALL_NAMESPACES = "*"  # lightkube's word for a list across namespaces
_PROXY_TIMEOUT_SECONDS = 3.0
_CONFLICT = 409  # written since the version the request named: read again
_TRY_AGAIN = frozenset({429})  # too many requests: the next pass may pass
_NOT_FOUND = 404


@functools.cache
def _resource(kind: Kind) -> Any:
    return create_namespaced_resource(kind.group, kind.version, kind.kind, kind.plural)


_ACCESS_REVIEW = create_global_resource(
    "authorization.k8s.io", "v1", "SelfSubjectAccessReview", "selfsubjectaccessreviews"
)
_CRD = create_global_resource(
    "apiextensions.k8s.io", "v1", "CustomResourceDefinition", "customresourcedefinitions"
)


def _interpreted(doing: str, call: Callable[[], _T]) -> _T:
    """Run ``call``; a failure becomes KubernetesUnavailable (try again) or KubernetesRefused
    (this request will not pass), saying what was being done."""
    try:
        return call()
    except httpx.HTTPStatusError as error:
        code = error.response.status_code
        message = _status_message(error.response)
        if code == _CONFLICT:
            raise KubernetesConflict(
                f"{doing}: the API server answered {code}: {message}"
            ) from error
        if code >= 500 or code in _TRY_AGAIN:
            raise KubernetesUnavailable(
                f"{doing}: the API server answered {code}: {message}"
            ) from error
        raise KubernetesRefused(
            f"{doing}: the API server refused it ({code}): {message}"
        ) from error
    except httpx.TransportError as error:
        raise KubernetesUnavailable(
            f"{doing}: the API server cannot be reached: {error}"
        ) from error


def _status_message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    return str(body.get("message") or body) if isinstance(body, dict) else str(body)[:200]


class LightkubeApi:
    """The Kubernetes API server of a kubeconfig's context."""

    def __init__(self, kubeconfig: Path | None = None, context: str | None = None) -> None:
        config = load_config(kubeconfig, context)
        try:
            self._client = Client(config=config, field_manager=FIELD_MANAGER)
            # the same server, credentials and TLS, for the paths lightkube has no call for
            self._http = client_adapter.Client(config, client_adapter.ConnectionParams())
        except (ConfigError, OSError) as error:  # a certificate that is not there, say
            raise KubernetesRefused(
                f"cannot use the kubeconfig's context {config.context_name}: {error}"
                + _missing_files(config)
            ) from error
        self._server = str(config.cluster.server).rstrip("/")

    def get(self, kind: Kind, namespace: str, name: str) -> dict[str, Any] | None:
        def fetch() -> dict[str, Any] | None:
            try:
                found = self._client.get(_resource(kind), name, namespace=namespace)
            except httpx.HTTPStatusError as error:
                if error.response.status_code == _NOT_FOUND:
                    return None
                raise
            return dict(found.to_dict())

        return _interpreted(f"reading {kind.kind} {namespace}/{name}", fetch)

    def select(
        self, kind: Kind, namespace: str | None, labels: Mapping[str, str] | None = None
    ) -> list[dict[str, Any]]:
        doing = f"listing {kind.plural} in {namespace or 'every namespace'}"

        def fetch() -> list[dict[str, Any]]:
            try:
                found = self._client.list(
                    _resource(kind),
                    namespace=namespace or ALL_NAMESPACES,
                    labels=dict(labels or {}),
                )
                return [dict(item.to_dict()) for item in found]
            except httpx.HTTPStatusError as error:
                if error.response.status_code == _NOT_FOUND:
                    served = f"{kind.api_version} {kind.kind} is not served by the cluster"
                    raise KindNotServed(f"{doing}: {served}") from error
                raise

        return _interpreted(doing, fetch)

    def apply(self, obj: dict[str, Any]) -> dict[str, Any]:
        kind = kind_of(obj)
        metadata = obj["metadata"]

        def send() -> dict[str, Any]:
            applied = self._client.apply(_resource(kind).from_dict(obj), force=True)
            return dict(applied.to_dict())

        return _interpreted(
            f"applying {kind.kind} {metadata['namespace']}/{metadata['name']}", send
        )

    def set_labels(self, kind: Kind, namespace: str, name: str, labels: Mapping[str, str]) -> None:
        patch = {"metadata": {"labels": dict(labels)}}
        _interpreted(
            f"labelling {kind.kind} {namespace}/{name}",
            lambda: self._client.patch(
                _resource(kind), name, patch, namespace=namespace, patch_type=PatchType.MERGE
            ),
        )

    def delete(self, kind: Kind, namespace: str, name: str) -> None:
        def send() -> None:
            try:
                self._client.delete(_resource(kind), name, namespace=namespace)
            except httpx.HTTPStatusError as error:
                if error.response.status_code != _NOT_FOUND:
                    raise

        _interpreted(f"deleting {kind.kind} {namespace}/{name}", send)

    def pod_logs(self, namespace: str, pod: str, container: str, tail: int) -> str:
        def fetch() -> str:
            lines = self._client.log(pod, namespace=namespace, container=container, tail_lines=tail)
            return "".join(lines)

        return _interpreted(f"reading the logs of pod {namespace}/{pod}", fetch)

    def proxy_get(self, namespace: str, pod: str, port: int, path: str) -> str | None:
        url = f"/api/v1/namespaces/{namespace}/pods/{pod}:{port}/proxy/{path.lstrip('/')}"
        try:
            response = self._http.get(url, timeout=_PROXY_TIMEOUT_SECONDS)
        except httpx.HTTPError:
            return None
        return response.text if response.status_code == httpx.codes.OK else None

    @property
    def http(self) -> httpx.Client:
        """An HTTP client with the API server's address, credentials and TLS: for what its
        proxy leads to (Ray's dashboards)."""
        return self._http

    def service_url(self, namespace: str, service: str, port: str) -> str:
        return f"{self._server}/api/v1/namespaces/{namespace}/services/{service}:{port}/proxy"

    def missing_permissions(self, namespace: str) -> list[str]:
        missing = []
        for permission in NEEDED:
            resource, _, subresource = permission.resource.partition("/")
            for verb in permission.verbs:
                attributes = {"group": permission.group, "resource": resource, "verb": verb}
                if subresource:
                    attributes["subresource"] = subresource
                if permission.resource != "customresourcedefinitions":
                    attributes["namespace"] = namespace
                if not self._allowed(attributes):
                    missing.append(f"{verb} {permission.resource} ({permission.why})")
        return missing

    def _allowed(self, attributes: dict[str, str]) -> bool:
        review = _ACCESS_REVIEW.from_dict(
            {
                "apiVersion": "authorization.k8s.io/v1",
                "kind": "SelfSubjectAccessReview",
                "spec": {"resourceAttributes": attributes},
            }
        )
        doing = f"asking whether it may {attributes['verb']} {attributes['resource']}"
        answer = _interpreted(doing, lambda: dict(self._client.create(review).to_dict()))
        return bool((answer.get("status") or {}).get("allowed"))

    def crd_installed(self, name: str) -> bool:
        def fetch() -> bool:
            try:
                self._client.get(_CRD, name)
            except httpx.HTTPStatusError as error:
                if error.response.status_code == _NOT_FOUND:
                    return False
                raise
            return True

        return _interpreted(f"looking for the CustomResourceDefinition {name}", fetch)


def _missing_files(config: Any) -> str:
    """`` (no such file: ...)`` naming the certificates and keys a context names that are not
    there, else ''."""
    user = config.user
    named = [config.cluster.certificate_auth]
    named += [user.client_cert, user.client_key] if user is not None else []
    missing = [str(path) for path in named if path and not Path(path).is_file()]
    return f" (no such file: {', '.join(missing)})" if missing else ""


def load_config(kubeconfig: Path | None, context: str | None) -> Any:
    """The kubeconfig's context as lightkube takes it (:mod:`rayservice.kubeapi.kubeconfig`
    says which files); a missing file or context is refused with what was looked for."""
    try:
        files = kubeconfig_files(kubeconfig, os.environ)
        merged = merged_kubeconfig(files)
    except KubeconfigError as error:
        raise KubernetesRefused(str(error)) from error
    try:
        return KubeConfig.from_dict(merged).get(context_name=context)
    except ConfigError as error:
        shown = ", ".join(str(path) for path in files)
        raise KubernetesRefused(f"cannot use the kubeconfig {shown}: {error}") from error
