"""An in-memory ServeClient for controller tests: no Ray, no HTTP, fully scripted.

A test decides what each cluster's Serve reports (``set_state``), which calls fail and how
(``fail``), and afterwards reads what the controller sent (``deployed``, ``calls``). That is
enough to drive every branch of the control loop deterministically and fast.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from rayservice.spec.errors import RayServiceError
from rayservice.spec.observed import AppState, DeploymentState, ServeState
from rayservice.spec.vocabulary import ApplicationStatus

Operation = Literal["deploy", "status", "shutdown"]


@dataclass(frozen=True)
class ServeCall:
    """One call the fake received, successful or not."""

    operation: Operation
    dashboard_url: str
    token: str


class FakeServeClient:
    """Records deployed configs per dashboard and answers with scripted ServeStates.

    A cluster nobody scripted reports ``ServeState()`` (Serve without apps), like a fresh
    cluster. ``shutdown`` forgets the cluster's state the same way.
    """

    def __init__(self) -> None:
        self.deployed: dict[str, list[dict[str, Any]]] = {}
        self.calls: list[ServeCall] = []
        self._states: dict[str, ServeState] = {}
        self._failures: dict[tuple[Operation, str | None], RayServiceError] = {}

    def set_state(self, dashboard_url: str, state: ServeState) -> None:
        self._states[dashboard_url] = state

    def fail(
        self, operation: Operation, error: RayServiceError, dashboard_url: str | None = None
    ) -> None:
        """Raise ``error`` on every ``operation`` call (to one dashboard, or to all of them)
        until ``clear_failures``."""
        self._failures[(operation, dashboard_url)] = error

    def clear_failures(self) -> None:
        self._failures.clear()

    def last_deployed(self, dashboard_url: str) -> dict[str, Any] | None:
        history = self.deployed.get(dashboard_url)
        return history[-1] if history else None

    def deploy(self, dashboard_url: str, token: str, config: Mapping[str, Any]) -> None:
        self._enter("deploy", dashboard_url, token)
        # A JSON round trip copies the config and, like the real client, refuses
        # anything that cannot travel in a request body.
        self.deployed.setdefault(dashboard_url, []).append(json.loads(json.dumps(config)))

    def status(self, dashboard_url: str, token: str) -> ServeState:
        self._enter("status", dashboard_url, token)
        return self._states.get(dashboard_url, ServeState())

    def shutdown(self, dashboard_url: str, token: str) -> None:
        self._enter("shutdown", dashboard_url, token)
        self._states.pop(dashboard_url, None)

    def _enter(self, operation: Operation, dashboard_url: str, token: str) -> None:
        self.calls.append(ServeCall(operation, dashboard_url, token))
        error = self._failures.get((operation, dashboard_url)) or self._failures.get(
            (operation, None)
        )
        if error is not None:
            raise error


def running_state(config: Mapping[str, Any]) -> ServeState:
    """The state Serve reports once every app and deployment of ``config`` is up.

    Each listed deployment is HEALTHY with ``num_replicas`` RUNNING replicas (one when the
    config leaves the count to Ray or to an autoscaler).
    """
    return ServeState(
        apps=tuple(
            AppState(
                name=app["name"],
                status=ApplicationStatus.RUNNING,
                route_prefix=app.get("route_prefix", "/"),
                deployments=tuple(
                    DeploymentState(
                        name=deployment["name"],
                        status="HEALTHY",
                        replica_states=("RUNNING",) * _replica_count(deployment),
                    )
                    for deployment in app.get("deployments", ())
                ),
            )
            for app in config.get("applications", ())
        ),
        target_capacity=config.get("target_capacity"),
    )


def _replica_count(deployment: Mapping[str, Any]) -> int:
    count = deployment.get("num_replicas")
    return count if isinstance(count, int) else 1
