"""An app whose health the Serve config decides, for watching how a failing health check shows.

``user_config: {healthy: false}`` makes every replica's ``check_health`` raise: Serve marks the
deployment UNHEALTHY and keeps replacing its replicas (each new one takes the same config and
fails again) until the config says ``healthy: true``. Requests answer ``beating`` while healthy.
"""

from __future__ import annotations

from typing import Any

from ray import serve
from starlette.requests import Request

HEARTBEAT = "beating"


@serve.deployment
class Pulse:
    def __init__(self) -> None:
        self.healthy = True

    def reconfigure(self, config: dict[str, Any]) -> None:
        self.healthy = bool(config.get("healthy", True))

    def check_health(self) -> None:
        if not self.healthy:
            raise RuntimeError("user_config says this replica is unhealthy")

    def __call__(self, request: Request) -> str:
        return HEARTBEAT


app = Pulse.bind()
