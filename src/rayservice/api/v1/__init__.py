"""KubeRay's API server v1 (``/apis/v1/...``): compute templates, clusters, RayServices, Serve
applications and job submissions, with the paths, bodies and error shape KubeRay's clients use.

Every route turns a v1 body into the objects the rest of the control plane knows (a RayCluster or
RayService manifest admitted like ``rayservice apply``, a Serve config PUT through the Serve
client, a job through Ray's job API) and back; nothing here decides what the controller does.
"""

from __future__ import annotations

from http import HTTPStatus

from fastapi import FastAPI, Request
from fastapi.exception_handlers import (
    http_exception_handler,
    request_validation_exception_handler,
)
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from rayservice.api.v1 import clusters, jobs, serve, services, templates
from rayservice.api.v1.context import V1Context
from rayservice.api.v1.errors import (
    ApiFailure,
    failure_of,
    failure_response,
    http_error_response,
    invalid_spec_response,
    is_v1,
    request_validation_response,
)
from rayservice.spec.errors import InvalidSpec, RayServiceError

__all__ = ["V1Context", "add_v1_api"]


def add_v1_api(app: FastAPI, ctx: V1Context) -> None:
    """Mount the v1 routes and answer their failures in the v1 error shape (the other routes
    keep theirs: refused manifests as 422 with problems, other errors as ``detail``)."""
    for module in (templates, clusters, services, serve, jobs):
        app.include_router(module.router(ctx))

    @app.exception_handler(ApiFailure)
    async def api_failure(_: Request, failure: ApiFailure) -> JSONResponse:
        return failure_response(failure)

    @app.exception_handler(InvalidSpec)
    async def invalid_spec(request: Request, error: InvalidSpec) -> JSONResponse:
        if is_v1(request):
            return invalid_spec_response(error)
        problems = [p.__dict__ for p in error.problems]
        return JSONResponse(
            {"message": str(error), "problems": problems},
            status_code=HTTPStatus.UNPROCESSABLE_ENTITY,
        )

    @app.exception_handler(RayServiceError)
    async def adapter_error(request: Request, error: RayServiceError) -> JSONResponse:
        failure = failure_of(error)
        if is_v1(request):
            return failure_response(failure)
        return JSONResponse({"detail": failure.message}, status_code=failure.status)

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, error: RequestValidationError) -> Response:
        if is_v1(request):
            return request_validation_response(error)
        return await request_validation_exception_handler(request, error)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> Response:
        if is_v1(request):
            return http_error_response(error)
        return await http_exception_handler(request, error)
