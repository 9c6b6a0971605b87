"""HTTP client of the controller's REST API, as the CLI uses it.

It turns transport failures into one clear message that says how to start a controller, a
401 into one that says where the token goes, and 422 answers into the list of problems with
file, field and what would be valid. Given a token, it sends it on every request.
"""

from __future__ import annotations

from typing import Any

import httpx

from rayservice.api.credentials import BEARER, TOKEN_ENV, TOKEN_FILE_ENV
from rayservice.spec.errors import InvalidSpec, RayServiceError, SpecProblem
from rayservice.spec.events import ObjectKind

RAY = "/apis/ray.io/v1"
CORE = "/api/v1"


def plural_of(manifest: dict[str, Any]) -> str:
    """The path segment of a manifest's kind: rayclusters for a RayCluster, else rayservices."""
    return "rayclusters" if manifest.get("kind") == ObjectKind.RAY_CLUSTER else "rayservices"


class ControllerUnavailable(RayServiceError):
    pass


class ApiError(RayServiceError):
    pass


class Unauthenticated(RayServiceError):
    """The controller demands a token this client did not send, or sent wrong."""


class ApiClient:
    def __init__(
        self,
        base_url: str,
        timeout: float = 120.0,
        *,
        token: str | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url
        headers = {} if token is None else {"Authorization": f"{BEARER} {token}"}
        self._http = httpx.Client(
            base_url=base_url, timeout=timeout, headers=headers, transport=transport
        )

    def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TransportError as e:
            raise ControllerUnavailable(
                f"no rayservice controller answers at {self.base_url} ({e.__class__.__name__}).\n"
                "Start one with `rayservice start` (background) or `rayservice controller`"
                " (foreground)."
            ) from e
        if response.status_code == httpx.codes.UNAUTHORIZED:
            raise Unauthenticated(
                f"the controller at {self.base_url} refused the request for want of its token:"
                f" set {TOKEN_FILE_ENV} to the file holding it (or {TOKEN_ENV} to the token)"
            )
        if response.status_code == 422:
            body = response.json()
            raise InvalidSpec([SpecProblem(**p) for p in body.get("problems", [])])
        if response.status_code >= 400:
            try:
                detail = response.json().get("detail", response.text)
            except ValueError:
                detail = response.text
            raise ApiError(f"{detail}")
        return response

    def healthy(self) -> bool:
        try:
            return self._http.get("/healthz", timeout=1.0).status_code == 200
        except httpx.HTTPError:
            return False

    def apply(
        self, manifest: dict[str, Any], source: str, base_dir: str
    ) -> tuple[dict[str, Any], list[str]]:
        """The stored object and the warnings the controller sent with it."""
        response = self._put_manifest(manifest, source, base_dir, {})
        warnings = [_warning_text(h) for h in response.headers.get_list("warning")]
        return response.json(), warnings

    def dry_run(self, manifest: dict[str, Any], source: str, base_dir: str) -> dict[str, Any]:
        """What applying would change: kind, summary, fields, generation. Stores nothing."""
        result: dict[str, Any] = self._put_manifest(
            manifest, source, base_dir, {"dryRun": "All"}
        ).json()
        return result

    def _put_manifest(
        self, manifest: dict[str, Any], source: str, base_dir: str, params: dict[str, str]
    ) -> httpx.Response:
        meta = manifest.get("metadata") or {}
        namespace = meta.get("namespace") or "default"
        plural = plural_of(manifest)
        path = f"{RAY}/namespaces/{namespace}/{plural}/{meta.get('name', '')}"
        body = {"manifest": manifest, "source": source, "baseDir": base_dir}
        return self._call("PUT", path, json=body, params=params)

    def get_service(self, namespace: str, name: str) -> dict[str, Any]:
        result: dict[str, Any] = self._call(
            "GET", f"{RAY}/namespaces/{namespace}/rayservices/{name}"
        ).json()
        return result

    def rollout(self, namespace: str, name: str, verb: str) -> dict[str, Any]:
        path = f"{RAY}/namespaces/{namespace}/rayservices/{name}/rollout/{verb}"
        result: dict[str, Any] = self._call("POST", path).json()
        return result

    def rollout_history(self, namespace: str, name: str) -> list[dict[str, Any]]:
        path = f"{RAY}/namespaces/{namespace}/rayservices/{name}/rollout/history"
        items: list[dict[str, Any]] = self._call("GET", path).json()["items"]
        return items

    def delete_service(self, namespace: str, name: str) -> None:
        self._call("DELETE", f"{RAY}/namespaces/{namespace}/rayservices/{name}")

    def delete_raycluster(self, namespace: str, name: str) -> None:
        self._call("DELETE", f"{RAY}/namespaces/{namespace}/rayclusters/{name}")

    def get_raycluster(self, namespace: str, name: str) -> dict[str, Any]:
        """A standalone RayCluster as stored (or a RayService's cluster as observed)."""
        result: dict[str, Any] = self._call(
            "GET", f"{RAY}/namespaces/{namespace}/rayclusters/{name}"
        ).json()
        return result

    def list_objects(self, plural: str, namespace: str | None) -> list[dict[str, Any]]:
        prefix = RAY if plural in ("rayservices", "rayclusters") else CORE
        path = f"{prefix}/namespaces/{namespace}/{plural}" if namespace else f"{prefix}/{plural}"
        items: list[dict[str, Any]] = self._call("GET", path).json()["items"]
        return items

    def events(self, namespace: str, name: str) -> list[dict[str, Any]]:
        path = f"{RAY}/namespaces/{namespace}/rayservices/{name}/events"
        items: list[dict[str, Any]] = self._call("GET", path).json()["items"]
        return items

    def logs(self, namespace: str, name: str, pod: str | None, tail: int) -> str:
        params: dict[str, Any] = {"tail": tail}
        if pod:
            params["pod"] = pod
        path = f"{RAY}/namespaces/{namespace}/rayservices/{name}/logs"
        return self._call("GET", path, params=params).text


def _warning_text(header: str) -> str:
    """The text of a ``Warning: 299 - "text"`` header."""
    code, _, rest = header.partition(" - ")
    return rest.strip().strip('"') if code.strip() == "299" else header
