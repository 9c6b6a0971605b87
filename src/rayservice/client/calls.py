"""A request as data, and the one place an answer is interpreted.

Every operation of both clients is a :class:`Call`: method, path, query, JSON body and how to
read a successful answer. The sync client sends it with ``httpx.Client``, the async one with
``httpx.AsyncClient``; both hand the answer to :func:`interpret`. So paths, bodies, error
mapping and parsing are written once and the two clients cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar
from urllib.parse import quote

import httpx
import pydantic

from rayservice.client.errors import error_from_answer, unexpected_answer
from rayservice.spec.apiserver import ApiBody

T = TypeVar("T")
BodyT = TypeVar("BodyT", bound=ApiBody)

Reader = Callable[[httpx.Response], T]
"""How the body of a successful answer becomes the value an operation returns."""


@dataclass(frozen=True)
class Call(Generic[T]):
    """One request and how to read its answer."""

    method: str
    path: str
    read: Reader[T]
    params: Mapping[str, str | int] = field(default_factory=dict)
    body: Any = None  # JSON; None sends no body
    timeout: float | None = None  # None: the client's
    checked: bool = True  # False: an error status is read too, not raised

    def request_args(self) -> dict[str, Any]:
        """Keyword arguments of ``httpx.Client.request`` (and of the async one)."""
        args: dict[str, Any] = {}
        if self.params:
            args["params"] = dict(self.params)
        if self.body is not None:
            args["json"] = self.body
        if self.timeout is not None:
            args["timeout"] = self.timeout
        return args


def interpret(call: Call[T], response: httpx.Response, base_url: str) -> T:
    """The value of an answer, or the typed error it stands for."""
    if call.checked and response.is_error:
        raise error_from_answer(response, base_url)
    return call.read(response)


def path(*segments: str) -> str:
    """A path from segments; caller-given names are escaped so they stay one segment."""
    return "/" + "/".join(quote(segment, safe="") for segment in segments)


def json_value(response: httpx.Response) -> Any:
    try:
        return response.json()
    except (ValueError, UnicodeDecodeError) as e:
        raise unexpected_answer(response, "JSON", e) from e


def json_object(response: httpx.Response) -> dict[str, Any]:
    value = json_value(response)
    if not isinstance(value, dict):
        raise unexpected_answer(response, "a JSON object", TypeError(type(value).__name__))
    return value


def items(response: httpx.Response) -> list[dict[str, Any]]:
    """The ``items`` of a Kubernetes-shaped list."""
    value = json_object(response).get("items")
    if not isinstance(value, list):
        raise unexpected_answer(response, "a list object", KeyError("items"))
    return value


def text(response: httpx.Response) -> str:
    return response.text


def nothing(response: httpx.Response) -> None:
    return None


def model(kind: type[BodyT]) -> Reader[BodyT]:
    """Reads an answer as one of the API server's bodies."""

    def read(response: httpx.Response) -> BodyT:
        try:
            return kind.model_validate(json_value(response))
        except pydantic.ValidationError as e:
            raise unexpected_answer(response, f"a {kind.__name__}", e) from e

    return read


def model_part(kind: type[BodyT], part: Callable[[BodyT], T]) -> Reader[T]:
    """Reads an answer as a body and returns one of its fields (the list of a list reply)."""
    read_body = model(kind)
    return lambda response: part(read_body(response))
