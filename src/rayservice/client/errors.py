"""The errors the clients raise, and how an HTTP answer becomes one.

Both APIs the controller serves answer errors with a JSON body: KubeRay's API server paths with
``{"code": <gRPC status>, "message": ...}`` (grpc-gateway's rendering), the Kubernetes-shaped
paths with FastAPI's ``{"detail": ...}`` or, for a refused manifest, ``{"message", "problems"}``.
The class is chosen from the gRPC code when the body has one (it is the more precise of the
two), else from the HTTP status, so a caller catches ``NotFound`` whichever API it used.

Written once for the sync and the async client; pure apart from reading the answer's body.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from rayservice.spec.apiserver import REQUEST_BODY, GrpcCode
from rayservice.spec.errors import InvalidSpec, RayServiceError, SpecProblem

TOKEN_ENV = "RAYSERVICE_TOKEN"
TOKEN_FILE_ENV = "RAYSERVICE_TOKEN_FILE"
"""Where the command line finds the token; named in the ``Unauthenticated`` message."""


class ApiError(RayServiceError):
    """The controller refused a request, or could not be asked.

    ``status`` is the HTTP status (``None`` when no answer came), ``code`` the gRPC status code
    of the body (``None`` when the body has none), ``message`` the server's own words.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: int | None = None,
        text: str | None = None,
    ) -> None:
        self.message = message
        self.status = status
        self.code = code
        # not super(): InvalidRequest also derives from InvalidSpec, whose __init__ differs
        Exception.__init__(self, message if text is None else text)


class ControllerUnavailable(ApiError):
    """No controller answered at the client's address (connection refused, timeout ...)."""


class Unauthenticated(ApiError):
    """The controller demands a token this client did not send, or sent wrong (401, code 16)."""


class InvalidRequest(ApiError, InvalidSpec):
    """The request was refused as invalid (400 or 422, code 3); nothing was changed.

    Also an :class:`~rayservice.spec.errors.InvalidSpec`: ``problems`` lists what is wrong,
    located by field when the server said where.
    """

    def __init__(
        self,
        message: str,
        problems: Iterable[SpecProblem] = (),
        *,
        status: int | None = None,
        code: int | None = None,
    ) -> None:
        self.problems = list(problems) or [UnlocatedProblem(REQUEST_BODY, "", message)]
        text = "\n".join(problem.render() for problem in self.problems)
        super().__init__(message, status=status, code=code, text=text)


class NotFound(ApiError):
    """The object does not exist (404, code 5)."""


class Conflict(ApiError):
    """The request contradicts the object's current state (409, code 9 FAILED_PRECONDITION)."""


class AlreadyExists(Conflict):
    """An object of that name exists already (409, code 6)."""


class WaitTimeout(RayServiceError, TimeoutError):
    """A wait helper gave up; ``last_seen`` says what the last poll showed."""

    def __init__(self, what: str, timeout: float, last_seen: str) -> None:
        self.what = what
        self.timeout = timeout
        self.last_seen = last_seen
        super().__init__(f"gave up waiting for {what} after {timeout:g} s; last seen: {last_seen}")


@dataclass(frozen=True)
class UnlocatedProblem(SpecProblem):
    """A refusal the server did not locate in the body: rendered as its message alone."""

    def render(self) -> str:
        return self.message


_BY_CODE: Mapping[int, type[ApiError]] = {
    GrpcCode.INVALID_ARGUMENT: InvalidRequest,
    GrpcCode.NOT_FOUND: NotFound,
    GrpcCode.ALREADY_EXISTS: AlreadyExists,
    GrpcCode.FAILED_PRECONDITION: Conflict,
    GrpcCode.UNAUTHENTICATED: Unauthenticated,
}
_BY_STATUS: Mapping[int, type[ApiError]] = {
    400: InvalidRequest,
    401: Unauthenticated,
    404: NotFound,
    409: Conflict,
    422: InvalidRequest,
}


def unavailable(base_url: str, error: Exception) -> ControllerUnavailable:
    """The error for a request that got no answer: says how to start a controller."""
    return ControllerUnavailable(
        f"no rayservice controller answers at {base_url} ({error.__class__.__name__}).\n"
        "Start one with `rayservice start` (background) or `rayservice controller`"
        " (foreground)."
    )


def error_from_answer(response: httpx.Response, base_url: str) -> ApiError:
    """The typed error an error answer (status 400 or more) stands for."""
    body = _json_object(response)
    raw_code = body.get("code")
    code = raw_code if isinstance(raw_code, int) and not isinstance(raw_code, bool) else None
    status = response.status_code
    message = _message(body, response)
    kind = _BY_CODE.get(code or 0) or _BY_STATUS.get(status, ApiError)
    if kind is InvalidRequest:
        return InvalidRequest(message, _problems(body), status=status, code=code)
    if kind is Unauthenticated:
        text = (
            f"the controller at {base_url} refused the request for want of its token"
            f" ({message}): give the client the controller's token (the command line reads"
            f" the file named by {TOKEN_FILE_ENV}, or {TOKEN_ENV})"
        )
        return Unauthenticated(message, status=status, code=code, text=text)
    return kind(message, status=status, code=code)


def unexpected_answer(response: httpx.Response, expected: str, error: Exception) -> ApiError:
    """The error for a success answer whose body is not what the path promises."""
    request = response.request
    return ApiError(
        f"{request.method} {request.url.path} answered {response.status_code} with a body that"
        f" is not {expected}: {error}",
        status=response.status_code,
    )


def _json_object(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except (ValueError, UnicodeDecodeError):
        return {}
    return body if isinstance(body, dict) else {}


def _message(body: Mapping[str, Any], response: httpx.Response) -> str:
    message = body.get("message")
    if isinstance(message, str) and message:
        return message
    detail = body.get("detail")
    if isinstance(detail, str) and detail:
        return detail
    if isinstance(detail, list) and detail:  # FastAPI's request validation
        return "; ".join(
            str(item.get("msg", item)) if isinstance(item, dict) else str(item) for item in detail
        )
    if detail is not None:
        return json.dumps(detail)
    plain = "" if body or _is_json(response) else response.text.strip()
    return plain or f"{response.status_code} {response.reason_phrase}"


def _is_json(response: httpx.Response) -> bool:
    try:
        response.json()
    except (ValueError, UnicodeDecodeError):
        return False
    return True


def _problems(body: Mapping[str, Any]) -> list[SpecProblem]:
    """The located problems of a refusal: the controller's ``problems``, or FastAPI's
    validation ``detail`` items (``loc`` is the field, after the part of the request)."""
    problems: list[SpecProblem] = []
    for item in body.get("problems") or []:
        if isinstance(item, dict) and isinstance(item.get("message"), str):
            problems.append(
                SpecProblem(
                    source=str(item.get("source") or REQUEST_BODY),
                    field=str(item.get("field") or ""),
                    message=item["message"],
                    valid=str(item.get("valid") or ""),
                )
            )
    detail = body.get("detail")
    if not problems and isinstance(detail, list):
        for item in detail:
            if isinstance(item, dict) and isinstance(item.get("msg"), str):
                location = [str(part) for part in item.get("loc") or []]
                if location and location[0] in ("body", "query", "path"):
                    location = location[1:]
                problems.append(SpecProblem(REQUEST_BODY, ".".join(location), item["msg"]))
    return problems
