"""ServeClient over HTTP: Ray Serve's declarative REST API on a cluster's dashboard.

The controller never talks to Ray Serve through Ray's Python API, because a driver process
would tie the control plane to one cluster's lifetime and Ray version. Instead it speaks to
the dashboard of each cluster, the way KubeRay does:

    PUT    /api/serve/applications/                       the whole Serve config document
    GET    /api/serve/applications/?api_type=declarative  apps, deployments and replicas
    DELETE /api/serve/applications/                       shut Serve down

Every request carries the cluster's token in ``x-ray-authorization`` (a dashboard started
with token authentication answers 401 without a token and 403 with a wrong one).

HTTP outcomes become the package's error tree so the controller knows what to do next:
no answer, a timeout or a 5xx is a ``TemporaryError`` (retry), a 400 on deploy is a
``ServeConfigRejected`` carrying Ray's own message, a refused token is a ``PermanentError``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from rayservice.serve_client.base import ServeConfigRejected
from rayservice.spec.errors import PermanentError, TemporaryError
from rayservice.spec.observed import AppState, DeploymentState, ServeState

APPLICATIONS_PATH = "/api/serve/applications/"
AUTH_HEADER = "x-ray-authorization"

_HTTP_NOT_FOUND = 404
_HTTP_NOT_IMPLEMENTED = 501  # the dashboard answers this when ray[serve] is not installed
_TOKEN_REFUSED = (401, 403)
_MAX_ERROR_TEXT = 2000  # a 500 carries a whole traceback; keep the start of it


class DashboardServeClient:
    """Talks to the Serve REST API of any number of dashboards through one connection pool.

    ``transport`` replaces the network, for tests (``httpx.MockTransport``).
    """

    def __init__(self, timeout: float = 10.0, transport: httpx.BaseTransport | None = None) -> None:
        self._http = httpx.Client(timeout=timeout, transport=transport)

    def close(self) -> None:
        self._http.close()

    def deploy(self, dashboard_url: str, token: str, config: Mapping[str, Any]) -> None:
        response = self._request("PUT", dashboard_url, token, json=dict(config))
        if response.status_code == httpx.codes.BAD_REQUEST:
            raise ServeConfigRejected(response.text.strip())
        _check_success(response, dashboard_url)

    def status(self, dashboard_url: str, token: str) -> ServeState:
        response = self._request("GET", dashboard_url, token, params={"api_type": "declarative"})
        _check_success(response, dashboard_url)
        try:
            return parse_serve_details(response.json())
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            raise TemporaryError(
                f"GET {response.request.url} answered something that is not "
                f"Serve's application details: {e!r}"
            ) from e

    def shutdown(self, dashboard_url: str, token: str) -> None:
        response = self._request("DELETE", dashboard_url, token)
        _check_success(response, dashboard_url)

    def _request(
        self, method: str, dashboard_url: str, token: str, **kwargs: Any
    ) -> httpx.Response:
        url = dashboard_url.rstrip("/") + APPLICATIONS_PATH
        try:
            return self._http.request(
                method, url, headers={AUTH_HEADER: f"Bearer {token}"}, **kwargs
            )
        except httpx.HTTPError as e:
            raise TemporaryError(f"{method} {url} got no answer: {e!r}") from e


def _check_success(response: httpx.Response, dashboard_url: str) -> None:
    """Turn any non-2xx answer into the error that tells the controller what to do."""
    if response.is_success:
        return
    code = response.status_code
    where = f"{response.request.method} {response.request.url}"
    text = response.text.strip()[:_MAX_ERROR_TEXT]
    if code in _TOKEN_REFUSED:
        raise PermanentError(
            f"the Ray dashboard at {dashboard_url} refused the cluster's token "
            f"(HTTP {code}): {text}"
        )
    if code == _HTTP_NOT_FOUND or (response.is_server_error and code != _HTTP_NOT_IMPLEMENTED):
        # 404 while the dashboard is still loading its Serve module, 503 while the GCS
        # is down, 500 when the dashboard could not reach the cluster yet.
        raise TemporaryError(f"{where} answered HTTP {code}: {text}")
    raise PermanentError(f"{where} answered HTTP {code}: {text}")


def parse_serve_details(details: Mapping[str, Any]) -> ServeState:
    """Read the ``ServeInstanceDetails`` document Ray returns into a ``ServeState``.

    When Serve is not running, Ray answers ``{"applications": {}, ...}``: no apps.
    """
    apps = tuple(_parse_app(name, app) for name, app in (details.get("applications") or {}).items())
    target_capacity = details.get("target_capacity")
    return ServeState(
        apps=apps,
        target_capacity=None if target_capacity is None else float(target_capacity),
    )


def _parse_app(name: str, app: Mapping[str, Any]) -> AppState:
    deployments = tuple(
        _parse_deployment(deployment_name, deployment)
        for deployment_name, deployment in (app.get("deployments") or {}).items()
    )
    return AppState(
        name=name,
        status=str(app["status"]),
        message=app.get("message") or "",
        route_prefix=app.get("route_prefix"),
        deployments=deployments,
    )


def _parse_deployment(name: str, deployment: Mapping[str, Any]) -> DeploymentState:
    return DeploymentState(
        name=name,
        status=str(deployment["status"]),
        message=deployment.get("message") or "",
        replica_states=tuple(str(replica["state"]) for replica in deployment.get("replicas") or ()),
    )
