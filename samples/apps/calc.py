"""The pizza calculator: a router that sends arithmetic to one of two deployments.

POST ``[op, value]`` to ``/calc``: ``"ADD"`` adds the Adder's ``increment``, ``"MUL"``
multiplies by the Multiplier's ``factor``, and the answer is the plain text
``"<result> pizzas please!"``. Any other operation is answered with HTTP 400.

Both numbers come from ``user_config`` through ``reconfigure`` so they can change without a
replica restart. Defaults when no user_config is given: ``increment`` 1, ``factor`` 2, so
that each operation visibly changes the value.
"""

from __future__ import annotations

from typing import Any

from ray import serve
from ray.serve.handle import DeploymentHandle
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

DEFAULT_INCREMENT = 1
DEFAULT_FACTOR = 2


@serve.deployment
class Adder:
    def __init__(self) -> None:
        self.increment: float = DEFAULT_INCREMENT

    def reconfigure(self, config: dict[str, Any]) -> None:
        self.increment = config.get("increment", DEFAULT_INCREMENT)

    def add(self, value: float) -> float:
        return value + self.increment


@serve.deployment
class Multiplier:
    def __init__(self) -> None:
        self.factor: float = DEFAULT_FACTOR

    def reconfigure(self, config: dict[str, Any]) -> None:
        self.factor = config.get("factor", DEFAULT_FACTOR)

    def multiply(self, value: float) -> float:
        return value * self.factor


@serve.deployment
class Router:
    """The ingress: reads ``[op, value]`` and hands the value to the matching deployment."""

    def __init__(self, adder: DeploymentHandle, multiplier: DeploymentHandle) -> None:
        self.operations = {"ADD": adder.add, "MUL": multiplier.multiply}

    async def __call__(self, request: Request) -> str | Response:
        operation, value = await request.json()
        method = self.operations.get(operation)
        if method is None:
            known = " or ".join(self.operations)
            return PlainTextResponse(
                f"unknown operation {operation!r}: use {known}", status_code=400
            )
        result = await method.remote(value)
        return f"{result} pizzas please!"


app = Router.bind(Adder.bind(), Multiplier.bind())
