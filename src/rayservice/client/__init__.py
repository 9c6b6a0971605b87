"""Typed Python clients of a rayservice controller's REST API.

:class:`RayServiceClient` (blocking, ``httpx.Client``) and :class:`AsyncRayServiceClient`
(``httpx.AsyncClient``) offer the same methods over both APIs the controller serves:
KubeRay's API server v1 (``/apis/v1/...``: compute templates, clusters, RayServices, Serve
applications, job submissions; bodies are the models of :mod:`rayservice.spec.apiserver`)
and the controller's own Kubernetes-shaped paths (``/apis/ray.io/v1/...``: apply a manifest,
read, list, events, logs, rollout verbs, delete), with the names and results the command line
uses. Requests are described once as data (:mod:`.kuberay`, :mod:`.manifests`) and answers
interpreted once (:mod:`.calls`, :mod:`.errors`); the two clients differ only in sending.

This package sits beside the server (``rayservice.api``) and imports only the model
(``rayservice.spec``) and httpx, so a program can drive a controller without loading the
server, the control loop or Ray's adapters.

Errors::

    RayServiceError (rayservice.spec.errors)
     +-- ApiError                  .status (HTTP, None without an answer), .code (gRPC), .message
     |    +-- ControllerUnavailable  no answer: says how to start a controller
     |    +-- Unauthenticated        401 / code 16: says where the token goes
     |    +-- InvalidRequest         400, 422 / code 3; also an InvalidSpec with .problems
     |    +-- NotFound               404 / code 5
     |    +-- Conflict               409 / code 9 (e.g. a refused rollout verb)
     |         +-- AlreadyExists     409 / code 6
     +-- InvalidSpec
     |    +-- InvalidRequest
     +-- WaitTimeout               a wait helper gave up (.what, .timeout, .last_seen);
                                   also a TimeoutError
"""

from rayservice.client.aio import AsyncRayServiceClient
from rayservice.client.connection import DEFAULT_TIMEOUT
from rayservice.client.errors import (
    AlreadyExists,
    ApiError,
    Conflict,
    ControllerUnavailable,
    InvalidRequest,
    NotFound,
    Unauthenticated,
    WaitTimeout,
)
from rayservice.client.sync import RayServiceClient
from rayservice.client.waiting import TERMINAL_JOB_STATUSES, Progress

__all__ = [
    "DEFAULT_TIMEOUT",
    "TERMINAL_JOB_STATUSES",
    "AlreadyExists",
    "ApiError",
    "AsyncRayServiceClient",
    "Conflict",
    "ControllerUnavailable",
    "InvalidRequest",
    "NotFound",
    "Progress",
    "RayServiceClient",
    "Unauthenticated",
    "WaitTimeout",
]
