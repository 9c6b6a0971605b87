"""The ServeClient protocol: Ray Serve's declarative REST API on a cluster's dashboard.

Errors: ``TemporaryError`` when the dashboard does not answer (retry later),
``ServeConfigRejected`` when Ray answers 400 to a config (retrying the same config is useless).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from rayservice.spec.errors import PermanentError
from rayservice.spec.observed import ServeState


class ServeConfigRejected(PermanentError):
    """Ray refused the Serve config (HTTP 400); the message is Ray's own."""


class ServeClient(Protocol):
    def deploy(self, dashboard_url: str, token: str, config: Mapping[str, Any]) -> None:
        """PUT the full Serve config document (apps missing from it are deleted)."""
        ...

    def status(self, dashboard_url: str, token: str) -> ServeState:
        """GET the applications and deployments with their statuses."""
        ...

    def details(self, dashboard_url: str, token: str) -> dict[str, Any]:
        """GET Ray's whole ``ServeInstanceDetails`` document as it answered it (controller,
        proxy location, HTTP options, proxies, applications with deployments and replicas)."""
        ...

    def shutdown(self, dashboard_url: str, token: str) -> None:
        """DELETE all applications and shut Serve down."""
        ...
