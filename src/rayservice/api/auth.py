"""Who may call the API, and what a caller may make the controller do.

The API can start processes and run code, so a controller reachable from other machines
demands a token: every request without it is answered 401 before it reaches a route, except
``GET /healthz`` (``rayservice start`` and probes ask it before they have anything to prove).
The refusal has the body KubeRay's API server gives (``{"code": 16, "message": ...}``, gRPC's
Unauthenticated), which its clients read. The token is accepted as ``Authorization: Bearer
<token>`` and, as KubeRay's clients send it, as the bare ``Authorization: <token>``; it is
compared in constant time and never logged.

A caller elsewhere may also not make the controller read a folder from its disk; whether the
caller is on this machine is told here (:func:`caller_is_local`), the rule itself lives in
``api/packaging.py``.
"""

from __future__ import annotations

import hmac
from enum import IntEnum

from fastapi import Request
from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocketClose

from rayservice.api.credentials import BEARER
from rayservice.spec.addresses import is_loopback

OPEN_ROUTES = frozenset({("GET", "/healthz")})
_POLICY_VIOLATION = 1008  # the WebSocket close code for a refused client


class GrpcCode(IntEnum):
    """gRPC status codes, as KubeRay's API server puts them in error bodies."""

    UNAUTHENTICATED = 16


UNAUTHENTICATED_MESSAGE = (
    "a valid token is required: send the header `Authorization: Bearer <token>` with the"
    " token of the controller's --token-file"
)


def presented_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization`` header: after ``Bearer`` (any case), else the whole
    value, as KubeRay's clients send it bare."""
    if authorization is None:
        return None
    scheme, _, rest = authorization.strip().partition(" ")
    return rest.strip() if scheme.lower() == BEARER.lower() else authorization.strip()


class TokenAuth:
    """ASGI middleware: passes a request on only with the right token (or to an open route)."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self._app = app
        self._token = token.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan" or self._allowed(scope):
            await self._app(scope, receive, send)
        elif scope["type"] == "websocket":
            await WebSocketClose(code=_POLICY_VIOLATION)(scope, receive, send)
        else:
            body = {"code": GrpcCode.UNAUTHENTICATED, "message": UNAUTHENTICATED_MESSAGE}
            refusal = JSONResponse(body, status_code=401, headers={"WWW-Authenticate": BEARER})
            await refusal(scope, receive, send)

    def _allowed(self, scope: Scope) -> bool:
        if (scope.get("method"), scope["path"]) in OPEN_ROUTES:
            return True
        token = presented_token(Headers(scope=scope).get("authorization"))
        # bytes: compare_digest refuses str with non-ASCII characters, a header may hold them
        return token is not None and hmac.compare_digest(token.encode(), self._token)


def caller_is_local(request: Request) -> bool:
    """True when the request comes from this machine's loopback; an unknown caller is remote."""
    return is_loopback(request.client.host if request.client else None)
