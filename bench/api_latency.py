"""API latency: p50/p99 of reading one object and listing all of them through the v1 routes,
with N compute templates, N clusters and N RayServices stored.

Tools written for KubeRay's API server (dashboards, the Python client) poll these routes, and
every read goes to SQLite and converts the stored manifest and status back into a v1 body (a
list does that once per object, with the object's events), so their cost grows with what is
stored. This measures that cost where it arises, without the network: the real FastAPI app over
the real ``SqliteStore`` in a temporary folder (removed at the end), called in-process through
httpx's ASGI transport; the cluster provider, Serve and job clients are the in-tree fakes, and
no controller runs (the objects stay as admitted, with no status or events).

The objects are created through the v1 POST routes (the creation times are printed too), then
each read is sent ``--requests`` times after a short warm-up: ``get`` cycles through the stored
names, ``list`` asks for every object of the namespace in one page. Printed: a table of count,
p50, p99 and max in milliseconds (``time.perf_counter`` around each request) and the number of
objects each list returned; the machine's load average, as other work inflates p99.

Usage: ``.venv/bin/python bench/api_latency.py [--objects N] [--requests N] [--warmup N]``.
The benchmark starts no process and opens no socket.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml
from fastapi import FastAPI

from rayservice.api.app import create_app
from rayservice.providers.fake import FakeProvider
from rayservice.serve_client.fake import FakeServeClient
from rayservice.serve_client.fake_jobs import FakeJobClient
from rayservice.store.sqlite import SqliteStore

NAMESPACE = "default"
V1 = f"/apis/v1/namespaces/{NAMESPACE}"
REMOTE_APPS = "https://example.invalid/apps.zip"  # never fetched: only Ray would
BASE_URL = "http://rayservice.invalid"  # the ASGI transport sends nothing over the network
HEAD_TEMPLATE = "bench-head"


@dataclass(frozen=True)
class Kind:
    """One kind of v1 object: its collection path, the key of its list, and a body."""

    label: str
    path: str
    list_key: str
    body: Callable[[str], dict[str, Any]]


def template_body(name: str) -> dict[str, Any]:
    return {"name": name, "namespace": NAMESPACE, "cpu": 2, "memory": 4}


def cluster_spec() -> dict[str, Any]:
    return {
        "headGroupSpec": {
            "computeTemplate": HEAD_TEMPLATE,
            "rayStartParams": {"dashboard-host": "0.0.0.0"},
        },
        "workerGroupSpec": [
            {
                "groupName": "small-wg",
                "computeTemplate": HEAD_TEMPLATE,
                "replicas": 1,
                "minReplicas": 0,
                "maxReplicas": 5,
                "rayStartParams": {},
            }
        ],
    }


def cluster_body(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "namespace": NAMESPACE,
        "user": "bench",
        "annotations": {"ray.io/enable-serve-service": "true"},
        "clusterSpec": cluster_spec(),
    }


def service_body(name: str) -> dict[str, Any]:
    config = {
        "applications": [
            {
                "name": "fruit_app",
                "import_path": "fruit.deployment_graph",
                "route_prefix": "/fruit",
                "runtime_env": {"working_dir": REMOTE_APPS},
                "deployments": [{"name": "MangoStand", "num_replicas": 1}],
            }
        ]
    }
    return {
        "name": name,
        "namespace": NAMESPACE,
        "user": "bench",
        "serveConfigV2": yaml.safe_dump(config),
        "clusterSpec": cluster_spec(),
    }


KINDS = (
    Kind("templates", f"{V1}/compute_templates", "computeTemplates", template_body),
    Kind("clusters", f"{V1}/clusters", "clusters", cluster_body),
    Kind("services", f"{V1}/services", "services", service_body),
)


@dataclass(frozen=True)
class Row:
    operation: str
    seconds: list[float]
    note: str = ""


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..100) of a non-empty sequence."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


async def timed(client: httpx.AsyncClient, method: str, url: str, **kwargs: Any) -> float:
    """Seconds for one request; a failed request stops the benchmark."""
    started = time.perf_counter()
    response = await client.request(method, url, **kwargs)
    seconds = time.perf_counter() - started
    if response.status_code != 200:
        raise RuntimeError(f"{method} {url}: {response.status_code} {response.text[:300]}")
    return seconds


async def populate(client: httpx.AsyncClient, objects: int) -> list[Row]:
    """The head's template, then ``objects`` of each kind through the POST routes."""
    await timed(client, "POST", KINDS[0].path, json=template_body(HEAD_TEMPLATE))
    rows = []
    for kind in KINDS:
        seconds = [
            await timed(client, "POST", kind.path, json=kind.body(f"{kind.label[:-1]}-{i:04d}"))
            for i in range(objects)
        ]
        rows.append(Row(f"create {kind.label[:-1]}", seconds))
    return rows


async def reads(
    client: httpx.AsyncClient, kind: Kind, objects: int, requests: int, warmup: int
) -> list[Row]:
    names = [f"{kind.label[:-1]}-{i:04d}" for i in range(objects)]
    for i in range(warmup):
        await timed(client, "GET", f"{kind.path}/{names[i % objects]}")
        await timed(client, "GET", kind.path)
    got = [await timed(client, "GET", f"{kind.path}/{names[i % objects]}") for i in range(requests)]
    listed = [await timed(client, "GET", kind.path) for _ in range(requests)]
    count = len((await client.get(kind.path)).json()[kind.list_key])
    return [
        Row(f"get one {kind.label[:-1]}", got),
        Row(f"list {kind.label}", listed, f"{count} per list"),
    ]


async def measure(app: FastAPI, objects: int, requests: int, warmup: int) -> list[Row]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
        rows = await populate(client, objects)
        for kind in KINDS:
            rows += await reads(client, kind, objects, requests, warmup)
    return rows


def print_table(rows: Sequence[Row]) -> None:
    print(f"{'operation':<22} {'n':>5} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    for row in rows:
        ms = [s * 1000 for s in row.seconds]
        print(
            f"{row.operation:<22} {len(ms):>5} {percentile(ms, 50):>8.2f}"
            f" {percentile(ms, 99):>8.2f} {max(ms):>8.2f}  {row.note}".rstrip()
        )


def positive(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, not {text}")
    return value


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--objects", type=positive, default=100, help="objects of each kind (default 100)"
    )
    parser.add_argument(
        "--requests", type=positive, default=300, help="timed requests per read (default 300)"
    )
    parser.add_argument(
        "--warmup", type=positive, default=10, help="untimed requests per read (default 10)"
    )
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="rsb-api-"))
    try:
        app = create_app(
            SqliteStore(work / "store.db"),
            FakeProvider(),
            work / "packages",
            lambda: None,
            serve=FakeServeClient(),
            jobs=FakeJobClient(),
        )
        load_before = os.getloadavg()[0]
        began = time.perf_counter()
        rows = asyncio.run(measure(app, args.objects, args.requests, args.warmup))
        elapsed = time.perf_counter() - began
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(
        f"{args.objects} objects of each kind stored (SQLite in a temporary folder), "
        f"in-process ASGI, {args.requests} timed requests per read:"
    )
    print_table(rows)
    print(
        f"total {elapsed:.1f} s; load average (1 min) {load_before:.2f} before,"
        f" {os.getloadavg()[0]:.2f} after, on {os.cpu_count()} CPUs"
    )


if __name__ == "__main__":
    main()
