"""Steps the end-to-end tests take through the CLI and the stable endpoints."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

from tests.e2e.conftest import Cli


def get_json(cli: Cli, *args: str) -> Any:
    return json.loads(cli.run(*args, "-o", "json").stdout)


def service_port(cli: Cli, service: str) -> int:
    return int(get_json(cli, "get", "services", service)["spec"]["ports"][0]["port"])


def post(port: int, path: str, body: object) -> str:
    response = httpx.post(f"http://127.0.0.1:{port}{path}", json=body, timeout=30)
    assert response.status_code == 200, response.text
    return response.text


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))
