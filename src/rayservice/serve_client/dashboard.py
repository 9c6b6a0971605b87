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
The mapping Serve shares with the job API (``jobs.py``) lives in ``dashboard_http.py``.

``status`` reads the GET into the controller's ``ServeState``; ``details`` hands back Ray's
document as it is, for the API server to show everything Ray knows.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from rayservice.serve_client.base import ServeConfigRejected
from rayservice.serve_client.dashboard_http import (
    DashboardClient,
    check_success,
    json_answer,
    unexpected_answer,
)
from rayservice.spec.observed import AppState, DeploymentState, Replica, ServeState

APPLICATIONS_PATH = "/api/serve/applications/"
_DECLARATIVE = {"api_type": "declarative"}
_DETAILS = "Serve's application details"


class DashboardServeClient(DashboardClient):
    """Talks to the Serve REST API of any number of dashboards through one connection pool."""

    def deploy(self, dashboard_url: str, token: str, config: Mapping[str, Any]) -> None:
        response = self._request("PUT", dashboard_url, token, json=dict(config))
        if response.status_code == httpx.codes.BAD_REQUEST:
            raise ServeConfigRejected(response.text.strip())
        check_success(response, dashboard_url)

    def status(self, dashboard_url: str, token: str) -> ServeState:
        response, details = self._get_details(dashboard_url, token)
        try:
            return parse_serve_details(details)
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            raise unexpected_answer(response, _DETAILS, e) from e

    def details(self, dashboard_url: str, token: str) -> dict[str, Any]:
        return self._get_details(dashboard_url, token)[1]

    def shutdown(self, dashboard_url: str, token: str) -> None:
        response = self._request("DELETE", dashboard_url, token)
        check_success(response, dashboard_url)

    def _get_details(self, dashboard_url: str, token: str) -> tuple[httpx.Response, dict[str, Any]]:
        response = self._request("GET", dashboard_url, token, params=_DECLARATIVE)
        check_success(response, dashboard_url)
        details = json_answer(response, _DETAILS)
        if not isinstance(details, dict):
            raise unexpected_answer(response, _DETAILS, type(details).__name__)
        return response, details

    def _request(
        self, method: str, dashboard_url: str, token: str, **kwargs: Any
    ) -> httpx.Response:
        return self._call_dashboard(method, dashboard_url, token, APPLICATIONS_PATH, **kwargs)


def parse_serve_details(details: Mapping[str, Any]) -> ServeState:
    """Read the ``ServeInstanceDetails`` document Ray returns into a ``ServeState``.

    When Serve is not running, Ray answers ``{"applications": {}, ...}``: no apps.
    """
    apps = tuple(_parse_app(name, app) for name, app in (details.get("applications") or {}).items())
    target_capacity = details.get("target_capacity")
    proxies = details.get("proxies")
    return ServeState(
        apps=apps,
        target_capacity=None if target_capacity is None else float(target_capacity),
        # where proxies run only explains a pod's readiness: an odd entry is skipped, never
        # a reason to call the whole status unreadable
        proxies=tuple(
            sorted(
                (str(node), str(proxy.get("status", "")))
                for node, proxy in (proxies.items() if isinstance(proxies, Mapping) else ())
                if isinstance(proxy, Mapping)
            )
        ),
        proxy_location=str(details.get("proxy_location") or ""),
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
        replicas=tuple(
            Replica(
                state=str(replica["state"]),
                node_id=str(replica.get("node_id") or ""),  # set once Ray placed it
                replica_id=str(replica.get("replica_id") or ""),
            )
            for replica in deployment.get("replicas") or ()
        ),
    )
