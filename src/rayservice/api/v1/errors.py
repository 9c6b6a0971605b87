"""How the v1 API answers failures: ``{"code": <gRPC code>, "message": ...}`` with an HTTP status.

KubeRay's API server is a gRPC gateway, so its clients read ``message`` from that body and
tell errors apart by the HTTP status. Every failure of a v1 route is interpreted here, once:
refused input, missing and existing objects, and the errors of the adapters behind a route
(a dashboard that does not answer, Ray refusing a Serve config or a job request).
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from fastapi import Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from rayservice.serve_client.base import ServeConfigRejected
from rayservice.serve_client.jobs import JobNotFound, JobRejected
from rayservice.spec.apiserver import ErrorBody, GrpcCode, to_wire
from rayservice.spec.errors import InvalidSpec, PermanentError, RayServiceError, TemporaryError

V1_PREFIX = "/apis/v1/"

_CODE_OF_STATUS = {
    HTTPStatus.BAD_REQUEST: GrpcCode.INVALID_ARGUMENT,
    HTTPStatus.UNAUTHORIZED: GrpcCode.UNAUTHENTICATED,
    HTTPStatus.NOT_FOUND: GrpcCode.NOT_FOUND,
    HTTPStatus.METHOD_NOT_ALLOWED: GrpcCode.INVALID_ARGUMENT,
    HTTPStatus.CONFLICT: GrpcCode.ALREADY_EXISTS,
    HTTPStatus.UNPROCESSABLE_ENTITY: GrpcCode.INVALID_ARGUMENT,
    HTTPStatus.SERVICE_UNAVAILABLE: GrpcCode.UNAVAILABLE,
}


class ApiFailure(Exception):
    """A v1 request that cannot be done, with the status and code it is answered with."""

    def __init__(self, status: HTTPStatus, code: GrpcCode, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def not_found(what: str) -> ApiFailure:
    return ApiFailure(HTTPStatus.NOT_FOUND, GrpcCode.NOT_FOUND, f"{what} not found")


def already_exists(what: str) -> ApiFailure:
    return ApiFailure(HTTPStatus.CONFLICT, GrpcCode.ALREADY_EXISTS, f"{what} already exists")


def invalid(message: str) -> ApiFailure:
    return ApiFailure(HTTPStatus.BAD_REQUEST, GrpcCode.INVALID_ARGUMENT, message)


def failure_of(error: RayServiceError) -> ApiFailure:
    """The answer to an error of the control plane or of an adapter behind a route."""
    if isinstance(error, InvalidSpec):
        return invalid(str(error))
    if isinstance(error, JobNotFound):
        return ApiFailure(HTTPStatus.NOT_FOUND, GrpcCode.NOT_FOUND, str(error))
    if isinstance(error, ServeConfigRejected):
        return invalid(f"Ray refused the Serve config: {error}")
    if isinstance(error, JobRejected):
        return ApiFailure(HTTPStatus.BAD_REQUEST, GrpcCode.FAILED_PRECONDITION, str(error))
    if isinstance(error, TemporaryError):
        return ApiFailure(HTTPStatus.SERVICE_UNAVAILABLE, GrpcCode.UNAVAILABLE, str(error))
    if isinstance(error, PermanentError):
        return ApiFailure(HTTPStatus.BAD_REQUEST, GrpcCode.FAILED_PRECONDITION, str(error))
    return ApiFailure(HTTPStatus.INTERNAL_SERVER_ERROR, GrpcCode.INTERNAL, str(error))


def is_v1(request: Request) -> bool:
    return request.url.path.startswith(V1_PREFIX)


def failure_response(failure: ApiFailure, extra: dict[str, Any] | None = None) -> JSONResponse:
    body = to_wire(ErrorBody(code=failure.code, message=failure.message)) | (extra or {})
    return JSONResponse(body, status_code=failure.status)


def invalid_spec_response(error: InvalidSpec) -> JSONResponse:
    """Refused input: 400 with every problem, each with its field path and what is valid."""
    problems = [p.__dict__ for p in error.problems]
    return failure_response(failure_of(error), {"problems": problems})


def request_validation_response(error: RequestValidationError) -> JSONResponse:
    """A body that is not JSON of the right shape, or a bad query parameter."""
    problems = [
        {"field": ".".join(str(part) for part in e.get("loc", ())), "message": e.get("msg", "")}
        for e in error.errors()
    ]
    message = "; ".join(f"{p['field']}: {p['message']}" for p in problems) or "invalid request"
    return failure_response(invalid(message), {"problems": jsonable_encoder(problems)})


def http_error_response(error: StarletteHTTPException) -> JSONResponse:
    """Starlette's own answers (unknown path, wrong method) in the v1 shape."""
    status = HTTPStatus(error.status_code)
    code = _CODE_OF_STATUS.get(status, GrpcCode.INTERNAL)
    return failure_response(ApiFailure(status, code, str(error.detail)))
