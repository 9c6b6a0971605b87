"""The smallest Serve app: one deployment that answers ``hello world`` to any request.

It needs a single replica, which makes it the app for watching how nodes without a Serve
replica behave (they run no proxy and get no traffic).
"""

from __future__ import annotations

from ray import serve
from starlette.requests import Request

GREETING = "hello world"


@serve.deployment
class BaseService:
    def __call__(self, request: Request) -> str:
        return GREETING


app = BaseService.bind()
