"""Render the haproxy.cfg that serves one RayService's stable endpoints.

Pure text in, text out: no files, sockets or processes, so the exact configuration can be
unit-tested and compared. The same FrontSpec always renders to the same text, which lets the
runner tell "nothing changed" from "reload needed" by comparing strings.

Two proxies come out of one spec:

* ``serve`` (HTTP): ``<name>-serve-svc``. Every Ray Serve proxy is health-checked with
  GET /-/healthz, which answers 200 "success" when ready and 503 while the node drains, so a
  draining or dead node stops getting new requests within about a second. A request whose
  connection fails or gets no answer is retried on another server.
* ``dashboard`` (TCP): ``<name>-head-svc``, the active head's dashboard.

Each listens on its address in the spec: 127.0.0.1 unless its Service is to be reachable from
other hosts. There is deliberately no ``log`` line: HAProxy then writes
alerts and servers going up or down to its stderr, which the runner keeps in a file, without
a line per request.
"""

from __future__ import annotations

import re
from pathlib import Path

from rayservice.spec.errors import PermanentError
from rayservice.spec.observed import Backend, FrontSpec

SERVE_PROXY = "serve"
DASHBOARD_PROXY = "dashboard"
HEALTH_PATH = "/-/healthz"
HEALTHY_BODY = "success"
MAX_WEIGHT = 256  # HAProxy's upper bound for a server weight
SERVER_TIMEOUT = "300s"  # model inference can be slow
HARD_STOP_AFTER = "330s"  # old workers may finish the slowest request, then must go

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")
_HOST = re.compile(r"^[A-Za-z0-9_.:-]+$")


def render_config(spec: FrontSpec, stats_socket: Path) -> str:
    """The full haproxy.cfg for ``spec``; ``stats_socket`` is the admin/runtime API socket."""
    _check_spec(spec)
    sections = [
        _global_section(stats_socket),
        _defaults_section(),
        *([_serve_section(spec)] if spec.has_serve else []),
        _dashboard_section(spec),
    ]
    return "\n".join(sections)


def server_address(backend: Backend) -> str:
    """``host:port`` as HAProxy reads it (IPv6 literals need brackets)."""
    return _host_port(backend.host, backend.port)


def _host_port(host: str, port: int) -> str:
    return f"{f'[{host}]' if ':' in host else host}:{port}"


def _check_spec(spec: FrontSpec) -> None:
    for port in spec.listen_ports:
        _check_port(port, "listen port")
    for address in (spec.serve_address, spec.dashboard_address):
        if not _HOST.match(address):
            raise PermanentError(f"listen address {address!r} is not valid")
    if spec.serve_port == spec.dashboard_port:
        raise PermanentError(f"serve and dashboard fronts cannot share port {spec.serve_port}")
    names = [backend.name for backend in spec.serve_backends]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise PermanentError(f"serve backend names must be unique, repeated: {duplicates}")
    backends = spec.serve_backends
    if spec.dashboard_backend is not None:
        backends = (*backends, spec.dashboard_backend)
    for backend in backends:
        _check_backend(backend)


def _check_port(port: int, what: str) -> None:
    if not 1 <= port <= 65535:
        raise PermanentError(f"{what} {port} is outside 1..65535")


def _check_backend(backend: Backend) -> None:
    if not _NAME.match(backend.name):
        raise PermanentError(
            f"backend name {backend.name!r} must start with a letter or digit and contain "
            "only letters, digits, '-', '_', '.' or ':'"
        )
    if not _HOST.match(backend.host):
        raise PermanentError(f"backend {backend.name}: host {backend.host!r} is not valid")
    _check_port(backend.port, f"backend {backend.name}: port")
    if not 0 <= backend.weight <= MAX_WEIGHT:
        raise PermanentError(
            f"backend {backend.name}: weight {backend.weight} is outside 0..{MAX_WEIGHT}"
        )


def _global_section(stats_socket: Path) -> str:
    return _section(
        "global",
        [
            # expose-fd lets a reloaded worker take over the listening sockets, so no
            # connection is refused while old and new workers swap.
            f"stats socket {stats_socket} mode 600 level admin expose-fd listeners",
            "stats timeout 30s",
            f"hard-stop-after {HARD_STOP_AFTER}",
        ],
    )


def _defaults_section() -> str:
    return _section(
        "defaults",
        [
            "mode http",
            "timeout connect 2s",
            f"timeout client {SERVER_TIMEOUT}",
            f"timeout server {SERVER_TIMEOUT}",
            "timeout http-request 30s",
            "timeout http-keep-alive 30s",
            "timeout check 1s",
            "timeout tunnel 1h",
        ],
    )


def _serve_section(spec: FrontSpec) -> str:
    frontend = _section(
        f"frontend {SERVE_PROXY}",
        [
            "mode http",
            f"bind {_host_port(spec.serve_address, spec.serve_port)}",
            # On a reload the old worker keeps idle keep-alive connections until their next
            # request, answers it with "Connection: close", then closes: a client that reuses
            # a connection just then gets an answer instead of a reset.
            "option idle-close-on-response",
            f"default_backend {SERVE_PROXY}",
        ],
    )
    backend = _section(
        f"backend {SERVE_PROXY}",
        [
            "mode http",
            "balance roundrobin",
            f"option httpchk GET {HEALTH_PATH}",
            f"http-check expect string {HEALTHY_BODY}",
            "default-server inter 500ms fastinter 500ms downinter 1s fall 2 rise 1",
            # A server that died between two checks, or while it held the request: retry the
            # request elsewhere. The whole request is read first: HAProxy can only send a
            # request again while it still holds all of it.
            "option http-buffer-request",
            "retries 3",
            "option redispatch 1",
            "retry-on conn-failure empty-response",  # never on a timeout: it may still be working
            *(
                _server_line(backend, "check disabled" if backend.drained else "check")
                for backend in spec.serve_backends
            ),
        ],
    )
    return f"{frontend}\n{backend}"


def _dashboard_section(spec: FrontSpec) -> str:
    frontend = _section(
        f"frontend {DASHBOARD_PROXY}",
        [
            "mode tcp",
            f"bind {_host_port(spec.dashboard_address, spec.dashboard_port)}",
            f"default_backend {DASHBOARD_PROXY}",
        ],
    )
    servers = [] if spec.dashboard_backend is None else [spec.dashboard_backend]
    backend = _section(
        f"backend {DASHBOARD_PROXY}",
        [
            "mode tcp",
            *(_server_line(server, "check inter 2s") for server in servers),
        ],
    )
    return f"{frontend}\n{backend}"


def _server_line(backend: Backend, check: str) -> str:
    return f"server {backend.name} {server_address(backend)} weight {backend.weight} {check}"


def _section(header: str, lines: list[str]) -> str:
    body = "".join(f"    {line}\n" for line in lines)
    return f"{header}\n{body}"
