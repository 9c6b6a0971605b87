"""An in-memory ServeClient for controller tests: no Ray, no HTTP, fully scripted.

A test decides what each cluster's Serve reports (``set_state``), which calls fail and how
(``fail``), and afterwards reads what the controller sent (``deployed``, ``calls``). That is
enough to drive every branch of the control loop deterministically and fast.

``details`` answers a document of the shape Ray gives (``ServeInstanceDetails``), built from
the scripted state and the last deployed config, so that code showing Serve's details to a
user can be tested without a cluster: one node, its proxy, and for each app its deployments
and replicas with ids derived from their names (the same state gives the same document).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar

from rayservice.spec.errors import RayServiceError
from rayservice.spec.observed import AppState, DeploymentState, Replica, ServeState
from rayservice.spec.vocabulary import ApplicationStatus

Operation = Literal["deploy", "status", "details", "shutdown"]
OperationT = TypeVar("OperationT", bound=str)


class ScriptedFailures(Generic[OperationT]):
    """The failures a test scripts on a fake of this package, per operation and dashboard."""

    def __init__(self) -> None:
        self._failures: dict[tuple[OperationT, str | None], RayServiceError] = {}

    def fail(
        self, operation: OperationT, error: RayServiceError, dashboard_url: str | None = None
    ) -> None:
        """Raise ``error`` on every ``operation`` call (to one dashboard, or to all of them)
        until ``clear_failures``."""
        self._failures[(operation, dashboard_url)] = error

    def clear_failures(self) -> None:
        self._failures.clear()

    def _raise_if_scripted(self, operation: OperationT, dashboard_url: str) -> None:
        error = self._failures.get((operation, dashboard_url)) or self._failures.get(
            (operation, None)
        )
        if error is not None:
            raise error


@dataclass(frozen=True)
class ServeCall:
    """One call the fake received, successful or not."""

    operation: Operation
    dashboard_url: str
    token: str


class FakeServeClient(ScriptedFailures[Operation]):
    """Records deployed configs per dashboard and answers with scripted ServeStates.

    A cluster nobody scripted reports ``ServeState()`` (Serve without apps), like a fresh
    cluster. ``shutdown`` forgets the cluster's state the same way.
    """

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        super().__init__()
        self.deployed: dict[str, list[dict[str, Any]]] = {}
        self.calls: list[ServeCall] = []
        self._clock = clock
        self._states: dict[str, ServeState] = {}
        self._deployed_at: dict[str, float] = {}

    def set_state(self, dashboard_url: str, state: ServeState) -> None:
        self._states[dashboard_url] = state

    def last_deployed(self, dashboard_url: str) -> dict[str, Any] | None:
        history = self.deployed.get(dashboard_url)
        return history[-1] if history else None

    def deploy(self, dashboard_url: str, token: str, config: Mapping[str, Any]) -> None:
        self._enter("deploy", dashboard_url, token)
        # A JSON round trip copies the config and, like the real client, refuses
        # anything that cannot travel in a request body.
        self.deployed.setdefault(dashboard_url, []).append(json.loads(json.dumps(config)))
        self._deployed_at[dashboard_url] = self._clock()

    def status(self, dashboard_url: str, token: str) -> ServeState:
        self._enter("status", dashboard_url, token)
        return self._states.get(dashboard_url, ServeState())

    def details(self, dashboard_url: str, token: str) -> dict[str, Any]:
        """Ray's empty document for a cluster nobody scripted or one shut down (Serve not
        running), else the scripted state with what the last deployed config says."""
        self._enter("details", dashboard_url, token)
        state = self._states.get(dashboard_url)
        if state is None:
            return {
                "controller_info": {},
                "proxies": {},
                "applications": {},
                "target_capacity": None,
            }
        return details_document(
            dashboard_url,
            state,
            self.last_deployed(dashboard_url) or {},
            self._deployed_at.get(dashboard_url, 0.0),
        )

    def shutdown(self, dashboard_url: str, token: str) -> None:
        self._enter("shutdown", dashboard_url, token)
        self._states.pop(dashboard_url, None)

    def _enter(self, operation: Operation, dashboard_url: str, token: str) -> None:
        self.calls.append(ServeCall(operation, dashboard_url, token))
        self._raise_if_scripted(operation, dashboard_url)


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
                        replicas=(Replica("RUNNING"),) * _replica_count(deployment),
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


# The fake's ServeInstanceDetails document.

_NODE_IP = "127.0.0.2"  # the local backend's node address
_DEFAULT_HTTP = {
    "host": "0.0.0.0",
    "port": 8000,
    "root_path": "",
    "request_timeout_s": None,
    "keep_alive_timeout_s": 90,
    "ssl_keyfile": None,
    "ssl_certfile": None,
    "ssl_keyfile_password": None,
    "ssl_ca_certs": None,
}
# How Ray says a deployment got to its status (``DeploymentStatusTrigger``).
_STATUS_TRIGGERS = {
    "HEALTHY": "CONFIG_UPDATE_COMPLETED",
    "UPDATING": "CONFIG_UPDATE_STARTED",
    "UPSCALING": "AUTOSCALING",
    "DOWNSCALING": "AUTOSCALING",
    "UNHEALTHY": "HEALTH_CHECK_FAILED",
    "DEPLOY_FAILED": "REPLICA_STARTUP_FAILED",
}


def details_document(
    dashboard_url: str, state: ServeState, config: Mapping[str, Any], deployed_at: float
) -> dict[str, Any]:
    """A ``ServeInstanceDetails`` document for ``state`` on a one-node cluster.

    Every key Ray sends is there except the controller's health metrics (timings a fake
    does not have); what the state does not say comes from ``config`` or Ray's defaults.
    """
    node_id = _hex(dashboard_url, 56)
    proxy_name = f"SERVE_PROXY_ACTOR-{node_id}"
    http_options = _DEFAULT_HTTP | dict(config.get("http_options") or {})
    app_configs = {app.get("name", "default"): app for app in config.get("applications", ())}
    return {
        "controller_info": _actor(node_id, "SERVE_CONTROLLER_ACTOR", "/serve/controller.log"),
        "proxy_location": config.get("proxy_location", "EveryNode"),
        "http_options": http_options,
        "grpc_options": {"port": 9000, "grpc_servicer_functions": []},
        "proxies": {
            node_id: _actor(node_id, proxy_name, f"/serve/proxy_{_NODE_IP}.log")
            | {"status": "HEALTHY"}
        },
        "applications": {
            app.name: _app_details(node_id, app, app_configs.get(app.name), deployed_at)
            for app in state.apps
        },
        "target_capacity": state.target_capacity,
        "target_groups": [
            {
                "targets": [
                    {
                        "ip": _NODE_IP,
                        "port": http_options["port"],
                        "instance_id": "",
                        "name": proxy_name,
                    }
                ],
                "route_prefix": "/",
                "protocol": "HTTP",
            }
        ],
        "restores_unset_config_options": True,
    }


def _app_details(
    node_id: str, app: AppState, app_config: Mapping[str, Any] | None, deployed_at: float
) -> dict[str, Any]:
    deployment_configs = {d["name"]: d for d in (app_config or {}).get("deployments", ())}
    return {
        "name": app.name,
        "route_prefix": app.route_prefix,
        "docs_path": None,
        "status": app.status,
        "message": app.message,
        "last_deployed_time_s": deployed_at,
        "deployed_app_config": None if app_config is None else dict(app_config),
        "source": "declarative",
        "deployments": {
            deployment.name: _deployment_details(
                node_id,
                app.name,
                deployment,
                deployment_configs.get(deployment.name, {}),
                deployed_at,
            )
            for deployment in app.deployments
        },
        "external_scaler_enabled": False,
        "deployment_topology": None,
    }


def _deployment_details(
    node_id: str,
    app_name: str,
    deployment: DeploymentState,
    options: Mapping[str, Any],
    deployed_at: float,
) -> dict[str, Any]:
    num_cpus = (options.get("ray_actor_options") or {}).get("num_cpus", 1)
    target = options.get("num_replicas")
    return {
        "name": deployment.name,
        "status": deployment.status,
        "status_trigger": _STATUS_TRIGGERS.get(deployment.status, "UNSPECIFIED"),
        "message": deployment.message,
        "deployment_config": {**options, "name": deployment.name},
        "target_num_replicas": target if isinstance(target, int) else len(deployment.replicas),
        "required_resources": {"CPU": num_cpus},
        "replicas": [
            _replica(
                replica.node_id or node_id,
                app_name,
                deployment.name,
                index,
                replica.state,
                deployed_at,
            )
            for index, replica in enumerate(deployment.replicas)
        ],
        "recent_dead_replicas": [],
    }


def _replica(
    node_id: str, app_name: str, deployment: str, index: int, state: str, started: float
) -> dict[str, Any]:
    replica_id = _hex(f"{app_name}#{deployment}#{index}", 8)
    actor = _actor(
        node_id,
        f"SERVE_REPLICA::{app_name}#{deployment}#{replica_id}",
        f"/serve/replica_{app_name}_{deployment}_{replica_id}.log",
    )
    return actor | {
        "replica_id": replica_id,
        "state": state,
        "pid": 10000 + int(replica_id[:4], 16) % 50000,
        "start_time_s": started,
    }


def _actor(node_id: str, actor_name: str, log_file_path: str) -> dict[str, Any]:
    """The fields Ray gives every Serve actor (controller, proxy, replica)."""
    return {
        "node_id": node_id,
        "node_ip": _NODE_IP,
        "node_instance_id": "",
        "actor_id": _hex(actor_name, 32),
        "actor_name": actor_name,
        "worker_id": _hex("worker " + actor_name, 56),
        "log_file_path": log_file_path,
    }


def _hex(seed: str, length: int) -> str:
    """A stable id of Ray's length (node and worker ids 56, actor ids 32 hex digits)."""
    return hashlib.sha256(seed.encode()).hexdigest()[:length]
