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

import logging
import math
import time
from collections.abc import Callable, Mapping
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
from rayservice.serve_client.packages import (
    cached_zips,
    gcs_name,
    naming_the_gcs,
    package_to_ship,
    running_packages,
)
from rayservice.spec.errors import RayServiceError
from rayservice.spec.observed import AppState, DeploymentState, Replica, ServeState

APPLICATIONS_PATH = "/api/serve/applications/"
PACKAGES_PATH = "/api/packages/gcs/"  # GET: is it there (and pin it); PUT: put it there
PACKAGES_KEPT_EVERY = 240.0  # seconds; Ray keeps a package it was asked about for 600 s
_DECLARATIVE = {"api_type": "declarative"}
_DETAILS = "Serve's application details"
log = logging.getLogger(__name__)


class DashboardServeClient(DashboardClient):
    """Talks to the Serve REST API of any number of dashboards through one connection pool.

    With ``ship_packages_from`` (the package cache, for clusters that cannot read this
    machine's files) the cached zips a config names are put into the cluster's GCS first, the
    config deployed names them there, and every few minutes a status asks for them again
    (:mod:`rayservice.serve_client.packages`).
    """

    def __init__(
        self,
        *,
        ship_packages_from: Path | None = None,
        clock: Callable[[], float] = time.monotonic,
        **connection: Any,
    ) -> None:
        super().__init__(**connection)
        self._packages = ship_packages_from
        self._clock = clock
        self._packages_kept_at: dict[str, float] = {}  # dashboard -> when last asked for them

    def deploy(self, dashboard_url: str, token: str, config: Mapping[str, Any]) -> None:
        if self._packages is not None:
            for cached in cached_zips(config, self._packages):
                self._ship(dashboard_url, token, cached)
            config = naming_the_gcs(config, self._packages)
        response = self._request("PUT", dashboard_url, token, json=dict(config))
        if response.status_code == httpx.codes.BAD_REQUEST:
            raise ServeConfigRejected(response.text.strip())
        check_success(response, dashboard_url)

    def status(self, dashboard_url: str, token: str) -> ServeState:
        response, details = self._get_details(dashboard_url, token)
        try:
            state = parse_serve_details(details)
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            raise unexpected_answer(response, _DETAILS, e) from e
        if self._packages is not None:
            self._keep_packages(dashboard_url, token, details, self._packages)
        return state

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

    def _ship(self, dashboard_url: str, token: str, cached: Path) -> None:
        """Put the cached zip into the cluster's GCS unless it has it; asking pins it there
        for a while (so a deploy that follows finds it)."""
        if self._pinned(dashboard_url, token, cached):
            return
        package = package_to_ship(cached)
        path = f"{PACKAGES_PATH}{gcs_name(cached)}"
        sent = self._call_dashboard("PUT", dashboard_url, token, path, content=package)
        check_success(sent, dashboard_url)

    def _pinned(self, dashboard_url: str, token: str, cached: Path) -> bool:
        """Whether the cluster's GCS has the package of the cached zip (asking pins it)."""
        path = f"{PACKAGES_PATH}{gcs_name(cached)}"
        asked = self._call_dashboard("GET", dashboard_url, token, path)
        if asked.status_code == httpx.codes.NOT_FOUND:
            return False
        check_success(asked, dashboard_url)
        return True

    def _keep_packages(
        self, dashboard_url: str, token: str, details: Mapping[str, Any], packages: Path
    ) -> None:
        """Every few minutes, ask for the packages Serve's apps run and put back one the
        cluster lost; a failure is logged (a status is still a status) and tried next time,
        well before the last ask's pin ends."""
        now = self._clock()
        if now - self._packages_kept_at.get(dashboard_url, -math.inf) < PACKAGES_KEPT_EVERY:
            return
        self._packages_kept_at[dashboard_url] = now
        for cached in running_packages(details, packages):
            try:
                if cached.is_file():
                    self._ship(dashboard_url, token, cached)
                elif not self._pinned(dashboard_url, token, cached):
                    log.warning(
                        "the code package %s an app of %s runs is gone from the cluster, and"
                        " this machine's package cache has no %s to put back",
                        gcs_name(cached), dashboard_url, cached,
                    )  # fmt: skip
            except RayServiceError as error:
                log.warning("keeping the code packages of %s: %s", dashboard_url, error)

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
