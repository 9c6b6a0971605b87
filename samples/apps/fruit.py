"""The fruit market: an app of four deployments that prices fruit through DeploymentHandles.

POST ``["MANGO", 2]`` to ``/fruit`` and the answer is the JSON number ``price * amount``
from the mango stand; a fruit without a stand answers ``-1``. Each stand takes its price
from ``user_config`` (``{"price": 3}``) in ``reconfigure``, so a price change in the Serve
config reaches the running replica in place, without restarting it.

Default prices when no user_config is given: mango 1, orange 0.5, pear 0.75.
"""

from __future__ import annotations

from typing import Any

from ray import serve
from ray.serve.handle import DeploymentHandle
from starlette.requests import Request

UNKNOWN_FRUIT_PRICE = -1


class FruitStand:
    """Sells one fruit at a price the Serve config can change at run time."""

    default_price: float  # each stand sets its own

    def __init__(self) -> None:
        self.price = self.default_price

    def reconfigure(self, config: dict[str, Any]) -> None:
        self.price = config.get("price", self.default_price)

    def check_price(self, amount: float) -> float:
        return self.price * amount


@serve.deployment
class MangoStand(FruitStand):
    default_price = 1


@serve.deployment
class OrangeStand(FruitStand):
    default_price = 0.5


@serve.deployment
class PearStand(FruitStand):
    default_price = 0.75


@serve.deployment
class FruitMarket:
    """The ingress: reads ``[fruit, amount]`` and asks that fruit's stand for the price."""

    def __init__(
        self,
        mango_stand: DeploymentHandle,
        orange_stand: DeploymentHandle,
        pear_stand: DeploymentHandle,
    ) -> None:
        self.stands = {"MANGO": mango_stand, "ORANGE": orange_stand, "PEAR": pear_stand}

    async def __call__(self, request: Request) -> float:
        fruit, amount = await request.json()
        return await self.check_price(fruit, amount)

    async def check_price(self, fruit: str, amount: float) -> float:
        stand = self.stands.get(fruit)
        if stand is None:
            return UNKNOWN_FRUIT_PRICE
        price: float = await stand.check_price.remote(amount)
        return price


app = FruitMarket.bind(MangoStand.bind(), OrangeStand.bind(), PearStand.bind())
