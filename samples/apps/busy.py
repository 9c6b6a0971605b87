"""An app whose every request takes a while, for watching autoscaling: under load Serve adds
replicas, and where a replica needs a node of its own, Ray's autoscaler adds the node.

Each request waits ``user_config.seconds`` (default 0.2) without using the CPU, then answers
``done``. Several requests at once are what makes Serve scale: its ``autoscaling_config``
counts the requests each replica is working on.
"""

from __future__ import annotations

import asyncio
from typing import Any

from ray import serve
from starlette.requests import Request

ANSWER = "done"
DEFAULT_SECONDS = 0.2


@serve.deployment
class Busy:
    def __init__(self) -> None:
        self.seconds = DEFAULT_SECONDS

    def reconfigure(self, config: dict[str, Any]) -> None:
        self.seconds = float(config.get("seconds", DEFAULT_SECONDS))

    async def __call__(self, request: Request) -> str:
        await asyncio.sleep(self.seconds)
        return ANSWER


app = Busy.bind()
