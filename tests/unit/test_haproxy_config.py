"""The haproxy.cfg rendered for a FrontSpec: listeners, health checks, retries, weights."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest

from rayservice.spec.errors import PermanentError
from rayservice.spec.observed import Backend, FrontSpec
from rayservice.traffic.haproxy_config import render_config

SOCKET = Path("/run/fronts/default.demo/haproxy.sock")
HEAD = Backend("head", "127.0.0.1", 52365)
SPEC = FrontSpec(
    serve_port=8000,
    dashboard_port=8265,
    serve_backends=(Backend("node-a", "127.0.0.1", 9001), Backend("node-b", "127.0.0.1", 9002, 0)),
    dashboard_backend=HEAD,
)


def section(config: str, header: str) -> list[str]:
    """The stripped lines of the section that starts with ``header``."""
    blocks = {block.splitlines()[0]: block.splitlines()[1:] for block in config.split("\n\n")}
    return [line.strip() for line in blocks[header]]


def binds(spec: FrontSpec) -> list[str]:
    return re.findall(r"^\s*bind (\S+)", render_config(spec, SOCKET), flags=re.MULTILINE)


def test_listeners_bind_to_loopback_unless_the_spec_says_otherwise() -> None:
    assert binds(SPEC) == ["127.0.0.1:8000", "127.0.0.1:8265"]
    assert binds(replace(SPEC, serve_address="0.0.0.0")) == ["0.0.0.0:8000", "127.0.0.1:8265"]
    assert binds(replace(SPEC, serve_address="::", dashboard_address="10.0.0.5")) == [
        "[::]:8000",
        "10.0.0.5:8265",
    ]


def test_a_listen_address_haproxy_would_misread_is_refused() -> None:
    with pytest.raises(PermanentError, match="listen address"):
        render_config(replace(SPEC, serve_address="0.0.0.0 ssl"), SOCKET)


def test_serve_frontend_is_http_to_one_server_per_backend_with_its_weight() -> None:
    config = render_config(SPEC, SOCKET)

    assert section(config, "frontend serve")[:2] == ["mode http", "bind 127.0.0.1:8000"]
    servers = [line for line in section(config, "backend serve") if line.startswith("server ")]
    assert servers == [
        "server node-a 127.0.0.1:9001 weight 100 check",
        "server node-b 127.0.0.1:9002 weight 0 check",
    ]


def test_a_reload_lets_idle_keep_alive_clients_finish_their_next_request() -> None:
    frontend = section(render_config(SPEC, SOCKET), "frontend serve")

    assert "option idle-close-on-response" in frontend


def test_serve_backend_checks_the_serve_proxy_health_quickly() -> None:
    backend = section(render_config(SPEC, SOCKET), "backend serve")

    assert "option httpchk GET /-/healthz" in backend
    assert "http-check expect string success" in backend
    default_server = next(line for line in backend if line.startswith("default-server"))
    assert {"inter 500ms", "fall 2", "rise 1"} <= set(_pairs(default_server))


def test_failed_connections_are_retried_on_another_server() -> None:
    backend = section(render_config(SPEC, SOCKET), "backend serve")

    assert "option redispatch 1" in backend
    assert any(line.startswith("retries ") for line in backend)
    assert "retry-on conn-failure empty-response" in backend
    assert "response-timeout" not in backend, "a slow request must not run twice"


def test_timeouts_allow_slow_inference() -> None:
    defaults = section(render_config(SPEC, SOCKET), "defaults")

    assert "timeout server 300s" in defaults
    assert "timeout client 300s" in defaults
    assert "timeout connect 2s" in defaults


def test_dashboard_is_plain_tcp_to_the_head() -> None:
    config = render_config(SPEC, SOCKET)

    assert section(config, "frontend dashboard")[:2] == ["mode tcp", "bind 127.0.0.1:8265"]
    assert section(config, "backend dashboard") == [
        "mode tcp",
        "server head 127.0.0.1:52365 weight 100 check inter 2s",
    ]


def test_runtime_socket_allows_weight_changes_and_seamless_reloads() -> None:
    global_section = section(render_config(SPEC, SOCKET), "global")

    assert f"stats socket {SOCKET} mode 600 level admin expose-fd listeners" in global_section


def test_without_backends_both_proxies_have_no_server() -> None:
    config = render_config(FrontSpec(serve_port=8000, dashboard_port=8265), SOCKET)

    assert section(config, "backend dashboard") == ["mode tcp"]
    assert not [line for line in section(config, "backend serve") if line.startswith("server ")]


def test_rendering_is_deterministic() -> None:
    same = FrontSpec(8000, 8265, tuple(SPEC.serve_backends), Backend("head", "127.0.0.1", 52365))

    assert render_config(SPEC, SOCKET) == render_config(same, SOCKET)


def test_weight_change_only_changes_that_server_line() -> None:
    heavier = FrontSpec(
        8000, 8265, (SPEC.serve_backends[0], Backend("node-b", "127.0.0.1", 9002)), HEAD
    )

    before = render_config(SPEC, SOCKET).splitlines()
    after = render_config(heavier, SOCKET).splitlines()

    changed = [(old, new) for old, new in zip(before, after, strict=True) if old != new]
    assert changed == [
        (
            "    server node-b 127.0.0.1:9002 weight 0 check",
            "    server node-b 127.0.0.1:9002 weight 100 check",
        )
    ]


def test_ipv6_backends_are_bracketed() -> None:
    spec = FrontSpec(8000, 8265, (Backend("v6", "::1", 9001),))

    assert "server v6 [::1]:9001 weight 100 check" in render_config(spec, SOCKET)


@pytest.mark.parametrize(
    ("spec", "complaint"),
    [
        (FrontSpec(8000, 8000), "share port 8000"),
        (FrontSpec(8000, 0), "listen port 0"),
        (FrontSpec(8000, 8265, (Backend("a", "127.0.0.1", 1), Backend("a", "h", 2))), "'a'"),
        (FrontSpec(8000, 8265, (Backend("has space", "127.0.0.1", 1),)), "has space"),
        (FrontSpec(8000, 8265, (Backend("a", "127.0.0.1", 1, 257),)), "weight 257"),
        (FrontSpec(8000, 8265, (Backend("a", "127.0.0.1", 70000),)), "port 70000"),
        (FrontSpec(8000, 8265, (), Backend("head", "bad host", 1)), "bad host"),
    ],
)
def test_specs_haproxy_cannot_express_are_refused(spec: FrontSpec, complaint: str) -> None:
    with pytest.raises(PermanentError, match=re.escape(complaint)):
        render_config(spec, SOCKET)


def _pairs(line: str) -> list[str]:
    words = line.split()[1:]
    return [f"{key} {value}" for key, value in zip(words[::2], words[1::2], strict=True)]
