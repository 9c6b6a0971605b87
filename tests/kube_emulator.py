"""A Kubernetes API server for tests, on loopback: kmock's emulator (objects kept in memory,
served over real HTTP) with what a real API server adds and kmock leaves out:

- the metadata a server sets: uid, creationTimestamp, a resourceVersion that moves on every write
  (a write naming an earlier one is refused with 409);
- server-side apply (``PATCH`` as ``application/apply-patch+yaml``) of an object that does not
  exist yet creates it;
- ``labelSelector`` on lists (``k=v`` terms, comma-separated);
- SelfSubjectAccessReviews, answered from ``denied``;
- CustomResourceDefinitions by name, from ``crds``, and every kind rayservice makes served
  (listed empty) before any object of it exists;
- pods' logs (from ``logs``) and what pods and Services answer through the API server's proxy
  (``answers``, ``service_answers``; requests sent to Services are kept in ``proxied``, a binary
  body such as a zip too, which kmock cannot read).

Apply replaces what is stored outside the metadata, as server-side apply does for the only
manager of the fields (what it stops sending goes), and merges labels and annotations; other
patches merge, as kmock does. The server runs on its own event loop
in a thread, so sync clients (lightkube's) can talk to it; ``stop`` ends both.
"""

from __future__ import annotations

import asyncio
import itertools
import re
import threading
import uuid
from dataclasses import dataclass
from typing import Any, cast

import aiohttp.web
import kmock
from kmock._internal import rendering

from rayservice.kubernetes.kinds import KINDS

APPLY = "application/apply-patch+yaml"
ACCESS_REVIEWS = kmock.resource("authorization.k8s.io", "v1", "selfsubjectaccessreviews")
CRDS = kmock.resource("apiextensions.k8s.io", "v1", "customresourcedefinitions")
PODS = kmock.resource("", "v1", "pods")
SERVICES = kmock.resource("", "v1", "services")
_SERVICE_PROXY = re.compile(r"/api/v1/namespaces/([^/]+)/services/([^/:]+):([^/]+)/proxy(/.*)?")
MOVED_ON = kmock.KubernetesError(
    status=409,
    reason="Conflict",
    message="the object has been modified; please apply your changes to the latest version",
)


@dataclass(frozen=True)
class Status:
    """A proxied answer other than 200 with JSON: its status code and text."""

    code: int
    text: str = ""


class ApiServer(kmock.KubernetesEmulator):
    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        self.denied: set[tuple[str, str]] = set()  # (verb, resource) answered "not allowed"
        self.crds: set[str] = set()
        self.logs: dict[tuple[str, str, str], str] = {}  # (namespace, pod, container) -> text
        self.answers: dict[tuple[str, str, int, str], str] = {}  # what pods answer on a port
        # what Services answer through the proxy, by (namespace, service, port, method, path):
        # JSON, or a Status; and every request sent that way: (method, path, headers, body)
        self.service_answers: dict[tuple[str, str, str, str, str], Any] = {}
        self.proxied: list[tuple[str, str, dict[str, str], Any]] = []
        self._versions = itertools.count(1)
        for kind in KINDS:  # served (listed empty) before any object of theirs exists
            self.resources[f"{kind.group}/{kind.version}/{kind.plural}"] = kmock.ResourceInfo()

    async def _handle(self, request: rendering.Request) -> aiohttp.web.StreamResponse:
        if request.resource == ACCESS_REVIEWS:
            return aiohttp.web.json_response(self._reviewed(request.data))
        if request.resource == PODS and request.subresource:
            return self._pod_subresource(request)
        if request.resource == SERVICES and str(request.subresource).startswith("proxy"):
            return self._service_proxy(request)
        if request.resource == CRDS and request.name is not None:
            if request.name not in self.crds:
                return await self._render_error(kmock.KubernetesObjectNotFoundError())
            return aiohttp.web.json_response({"metadata": {"name": request.name}})
        if isinstance(request.data, dict) and request.resource is not None:
            metadata = request.data.setdefault("metadata", {})
            key = (request.resource, request.namespace, request.name)
            if self._moved_on(key, metadata.get("resourceVersion")):
                return await self._render_error(MOVED_ON)
            metadata["resourceVersion"] = str(next(self._versions))
            creates = request.action == kmock.action.CREATE or (
                request.headers.get("Content-Type") == APPLY and not self._exists(key)
            )
            if creates:
                metadata.setdefault("uid", str(uuid.uuid4()))
                metadata.setdefault("creationTimestamp", "2026-01-01T00:00:00Z")
            if creates and request.action != kmock.action.CREATE:
                async with self._lock:
                    self._objects[cast(Any, key)] = request.data
            elif request.headers.get("Content-Type") == APPLY:
                async with self._lock:  # what the applier stopped sending goes
                    stored = self._objects[cast(Any, key)]
                    kept = dict(stored.raw["metadata"])
                    for part in ("labels", "annotations"):
                        kept[part] = {**(kept.get(part) or {}), **(metadata.get(part) or {})}
                    given = {
                        k: v for k, v in metadata.items() if k not in kept or k == "resourceVersion"
                    }
                    stored.create({**request.data, "metadata": {**kept, **given}})
        response: aiohttp.web.StreamResponse = await super()._handle(request)
        return response

    def _pod_subresource(self, request: rendering.Request) -> aiohttp.web.StreamResponse:
        """A pod's logs (``log``, honouring ``tailLines``) or what it answers on a port
        (``proxy``, through ``<pod>:<port>``)."""
        namespace, name, sub = str(request.namespace), str(request.name), str(request.subresource)
        if sub == "log":
            text = self.logs.get((namespace, name, request.params.get("container", "")), "")
            tail = int(request.params.get("tailLines", "0") or 0)
            lines = text.splitlines(keepends=True)
            return aiohttp.web.Response(text="".join(lines[-tail:] if tail else lines))
        pod, _, port = name.partition(":")
        path = "/" + sub.removeprefix("proxy/")
        answer = self.answers.get((namespace, pod, int(port or 0), path))
        if answer is None:
            return aiohttp.web.Response(status=503, text="no endpoint")
        return aiohttp.web.Response(text=answer)

    async def __call__(self, raw_request: aiohttp.web.BaseRequest) -> aiohttp.web.StreamResponse:
        body = await raw_request.read()
        try:
            body.decode()
        except UnicodeDecodeError:  # kmock reads every body as text: a zip is answered here
            found = _SERVICE_PROXY.fullmatch(raw_request.path)
            if found is None:
                return aiohttp.web.Response(status=415, text="a binary body outside a proxy")
            namespace, service, port, path = found.groups()
            headers = dict(raw_request.headers)
            method = raw_request.method
            return self._proxied(namespace, service, port, method, path or "/", headers, body)
        response: aiohttp.web.StreamResponse = await super().__call__(raw_request)
        return response

    def _service_proxy(self, request: rendering.Request) -> aiohttp.web.StreamResponse:
        service, _, port = str(request.name).partition(":")
        path = request.url.path.partition("/proxy")[2] or "/"  # as sent, trailing slash kept
        method = str(request.method.value).upper()
        return self._proxied(
            str(request.namespace), service, port, method, path, dict(request.headers), request.data
        )

    def _proxied(
        self,
        namespace: str,
        service: str,
        port: str,
        method: str,
        path: str,
        headers: dict[str, str],
        data: Any,
    ) -> aiohttp.web.StreamResponse:
        self.proxied.append((method, path, headers, data))
        answer = self.service_answers.get((namespace, service, port, method, path))
        if answer is None:
            return aiohttp.web.Response(status=503, text="no endpoints available for service")
        if isinstance(answer, Status):
            return aiohttp.web.Response(status=answer.code, text=answer.text)
        return aiohttp.web.json_response(answer)

    def _moved_on(self, key: Any, version: str | None) -> bool:
        """Whether a write naming ``version`` comes after another one (a 409 then)."""
        if version is None or not self._exists(key):
            return False
        return bool(self._objects[key].raw["metadata"].get("resourceVersion") != version)

    def _exists(self, key: Any) -> bool:
        return key in self._objects and not self._objects[key].deleted

    def _reviewed(self, review: dict[str, Any]) -> dict[str, Any]:
        attributes = review["spec"]["resourceAttributes"]
        resource = attributes["resource"]
        if attributes.get("subresource"):
            resource = f"{resource}/{attributes['subresource']}"
        allowed = (attributes["verb"], resource) not in self.denied
        return {**review, "status": {"allowed": allowed}}

    async def _serve_list(self, request: rendering.Request) -> Any:
        listed: Any = await super()._serve_list(request)
        selector = request.params.get("labelSelector")
        if selector:
            terms = dict(term.split("=", 1) for term in selector.split(","))
            listed["items"] = [
                item
                for item in listed["items"]
                if terms.items() <= (item.get("metadata", {}).get("labels") or {}).items()
            ]
        return listed

    def stored(self, plural: str, namespace: str, name: str) -> dict[str, Any] | None:
        """The object as kept (None: none), for assertions."""
        for (resource, ns, object_name), obj in self._objects.items():
            if (resource.plural, ns, object_name) == (plural, namespace, name):
                return None if obj.deleted else dict(obj.raw)
        return None


class RunningApiServer:
    """An ApiServer listening on 127.0.0.1 in a thread of its own."""

    def __init__(self) -> None:
        self._ready = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._stopping: asyncio.Event | None = None
        self.server: ApiServer | None = None
        self.url = ""
        self._thread = threading.Thread(target=self._run, name="kube-api", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout=30):
            raise RuntimeError("the emulated API server did not start")

    def _run(self) -> None:
        async def serve() -> None:
            async with ApiServer() as handler, kmock.Server(handler, host="127.0.0.1") as server:
                self.server, self.url = handler, str(server.url).rstrip("/")
                self._stopping = asyncio.Event()
                self._ready.set()
                await self._stopping.wait()

        self._loop.run_until_complete(serve())
        self._loop.close()

    def stop(self) -> None:
        if self._stopping is not None:
            self._loop.call_soon_threadsafe(self._stopping.set)
        self._thread.join(timeout=30)

    def kubeconfig(self) -> dict[str, Any]:
        """A kubeconfig whose current context is this server (with a token nobody checks)."""
        return {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "emulated", "cluster": {"server": self.url}}],
            "users": [{"name": "tester", "user": {"token": "unchecked"}}],
            "contexts": [
                {"name": "emulated", "context": {"cluster": "emulated", "user": "tester"}}
            ],
            "current-context": "emulated",
        }
