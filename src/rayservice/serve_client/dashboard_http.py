"""HTTP plumbing shared by the clients of a Ray dashboard's REST APIs (Serve and jobs).

Both APIs live on the same dashboard, behind the same token check, and fail the same ways,
so the clients share one place that sends a request with the cluster's token and turns the
outcomes every endpoint has in common into the package's error tree:

- no answer, a timeout, a broken connection: ``TemporaryError`` (the dashboard may be
  starting or restarting; retry);
- 401 (no token) or 403 (another token): ``PermanentError`` (the same token will not
  start to work);
- a 5xx other than 501, or a 404 the caller has no meaning for: ``TemporaryError`` (the
  dashboard answers 404 while it is still loading the module behind the path, 500 while it
  cannot reach the cluster yet, 503 while the GCS is down);
- anything else that is not a success, 501 included (the dashboard's answer when the module
  behind the path is not installed): ``PermanentError``;
- a success whose body is not the JSON expected: ``TemporaryError`` (a proxy's error page).

Answers an endpoint gives a meaning of its own (Serve's 400 on a config, the job API's 404
for a missing job) are read by the client before it calls ``check_success``.
"""

from __future__ import annotations

from typing import Any

import httpx

from rayservice.spec.errors import PermanentError, TemporaryError

AUTH_HEADER = "x-ray-authorization"

_HTTP_NOT_FOUND = 404
_HTTP_NOT_IMPLEMENTED = 501
_TOKEN_REFUSED = (401, 403)
_MAX_ERROR_TEXT = 2000  # a 500 carries a whole traceback; keep the start of it


class DashboardClient:
    """The base of the dashboard clients: one connection pool for requests to any number
    of dashboards, each with its token.

    ``transport`` replaces the network, for tests (``httpx.MockTransport``); ``http`` is a
    client of the caller's to send through, e.g. one with the credentials of a Kubernetes API
    server whose proxy leads to the dashboards.
    """

    def __init__(
        self,
        timeout: float = 10.0,
        transport: httpx.BaseTransport | None = None,
        http: httpx.Client | None = None,
    ) -> None:
        self._http = (
            http if http is not None else httpx.Client(timeout=timeout, transport=transport)
        )

    def close(self) -> None:
        self._http.close()

    def _call_dashboard(
        self, method: str, dashboard_url: str, token: str, path: str, **kwargs: Any
    ) -> httpx.Response:
        """Send ``method path`` to the dashboard; any answer is returned, none is temporary. A
        cluster without Ray's token authentication (``token`` empty) gets no token."""
        url = dashboard_url.rstrip("/") + path
        headers = {AUTH_HEADER: f"Bearer {token}"} if token else {}
        try:
            return self._http.request(method, url, headers=headers, **kwargs)
        except httpx.HTTPError as e:
            raise TemporaryError(f"{method} {url} got no answer: {e!r}") from e


def where(response: httpx.Response) -> str:
    """``METHOD url`` of the request that got ``response``, for error messages."""
    return f"{response.request.method} {response.request.url}"


def error_text(response: httpx.Response) -> str:
    """The start of the answer's body: Ray's message, or the head of its traceback."""
    return response.text.strip()[:_MAX_ERROR_TEXT]


def check_success(response: httpx.Response, dashboard_url: str) -> None:
    """Turn any non-2xx answer into the error that tells the controller what to do."""
    if response.is_success:
        return
    code = response.status_code
    text = error_text(response)
    if code in _TOKEN_REFUSED:
        raise PermanentError(
            f"the Ray dashboard at {dashboard_url} refused the cluster's token "
            f"(HTTP {code}): {text}"
        )
    if code == _HTTP_NOT_FOUND or (response.is_server_error and code != _HTTP_NOT_IMPLEMENTED):
        raise TemporaryError(f"{where(response)} answered HTTP {code}: {text}")
    raise PermanentError(f"{where(response)} answered HTTP {code}: {text}")


def unexpected_answer(response: httpx.Response, expected: str, cause: object) -> TemporaryError:
    """The error for a success whose body is not what the endpoint answers."""
    return TemporaryError(f"{where(response)} answered something that is not {expected}: {cause!r}")


def json_answer(response: httpx.Response, expected: str) -> Any:
    """The decoded JSON body of a success; a body that is not JSON is temporary."""
    try:
        return response.json()
    except ValueError as e:
        raise unexpected_answer(response, expected, e) from e
