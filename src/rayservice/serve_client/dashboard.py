"""ServeClient over HTTP: Ray Serve's declarative REST API on a cluster's dashboard.

The controller never talks to Ray Serve through Ray's Python API, because a driver process
would tie the control plane to one cluster's lifetime and Ray version. Instead it speaks to
the dashboard of each cluster, the way KubeRay does:

    PUT    /api/serve/applications/                       the whole Serve config document
    GET    /api/serve/applications/?api_type=declarative  apps, deployments and replicas
    DELETE /api/serve/applications/                       shut Serve down
    GET    /api/packages/gcs/NAME                         is a code package in the GCS
    PUT    /api/packages/gcs/NAME                         put one there (clusters elsewhere)

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
from pathlib import Path
from typing import Any

import httpx

from rayservice.serve_client.base import ServeConfigRejected
from rayservice.serve_client.dashboard_http import (
    DashboardClient,
    check_success,
    json_answer,
    unexpected_answer,
)
from rayservice.serve_client.packages import cached_zips, gcs_form, gcs_name, naming_the_gcs
from rayservice.spec.errors import PermanentError
from rayservice.spec.observed import AppState, DeploymentState, Replica, ServeState

APPLICATIONS_PATH = "/api/serve/applications/"
PACKAGES_PATH = "/api/packages/gcs/"  # GET: is it there; PUT: put it there
_DECLARATIVE = {"api_type": "declarative"}
_DETAILS = "Serve's application details"


class DashboardServeClient(DashboardClient):
    """Talks to the Serve REST API of any number of dashboards through one connection pool.

    With ``ship_packages_from`` (the package cache, for clusters that cannot read this
    machine's files) the cached zips a config names are put into the cluster's GCS first, and
    the config deployed names them there (:mod:`rayservice.serve_client.packages`).
    """

    def __init__(self, *, ship_packages_from: Path | None = None, **connection: Any) -> None:
        super().__init__(**connection)
        self._packages = ship_packages_from

    def deploy(self, dashboard_url: str, token: str, config: Mapping[str, Any]) -> None:
        if self._packages is not None:
            config = self._shipped(dashboard_url, token, config, self._packages)
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

    def _shipped(
        self, dashboard_url: str, token: str, config: Mapping[str, Any], packages: Path
    ) -> dict[str, Any]:
        """Put each cached zip ``config`` names into the cluster's GCS unless it has it (Ray
        keeps a package it is asked about for a while, so the deploy that follows finds it),
        and return the config naming them there."""
        for cached in cached_zips(config, packages):
            path = f"{PACKAGES_PATH}{gcs_name(cached)}"
            asked = self._call_dashboard("GET", dashboard_url, token, path)
            if asked.status_code != httpx.codes.NOT_FOUND:
                check_success(asked, dashboard_url)
                continue
            try:
                package = gcs_form(cached.read_bytes())
            except OSError as error:
                raise PermanentError(
                    f"the package {cached} this Serve config names cannot be read ({error}):"
                    " apply the manifest again to package its folder anew"
                ) from error
            sent = self._call_dashboard("PUT", dashboard_url, token, path, content=package)
            check_success(sent, dashboard_url)
        return naming_the_gcs(config, packages)

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
