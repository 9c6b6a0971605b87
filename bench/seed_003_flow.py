"""Seed 003's flow timed on real Ray: a cluster made through the API server v1 paths, then the
time from the Serve applications POST to the first right answer of ``<name>-serve-svc``.

Next to it, a floor measured on the same cluster: the same Serve config PUT straight to the
cluster's dashboard (what the POST does after its checks and packaging), timed to the same
first answer. The difference is what the v1 route adds: Ray's schema check, packaging the
local ``working_dir``, finding the cluster.

Usage: ``.venv/bin/python bench/seed_003_flow.py [--runs N]``. It starts its own controller
in a temporary home on a free loopback port and deletes the cluster and stops the controller
(by pid) before it exits.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import yaml

from rayservice.api.packaging import resolve_working_dirs
from rayservice.client import RayServiceClient
from rayservice.host.ports import next_free_port
from rayservice.planner.readiness import deployable_config
from rayservice.spec.apiserver import Cluster, ComputeTemplate, parse_body
from rayservice.spec.ignored import FIXED_PORT_PARAMS

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "samples" / "ray-service.sample.yaml"
RAYSERVICE = str(Path(sys.executable).parent / "rayservice")
NAMESPACE, CLUSTER = "default", "test-cluster"
TEMPLATE = {"name": "default-template", "namespace": NAMESPACE, "cpu": 2, "memory": 4}
CLUSTER_BODY: dict[str, Any] = {
    "name": CLUSTER,
    "namespace": NAMESPACE,
    "user": "boris",
    "annotations": {"ray.io/enable-serve-service": "true"},
    "clusterSpec": {
        "headGroupSpec": {
            "computeTemplate": "default-template",
            "rayStartParams": {"dashboard-host": "0.0.0.0"},
        },
        "workerGroupSpec": [
            {
                "groupName": "small-wg",
                "computeTemplate": "default-template",
                "replicas": 1,
                "minReplicas": 0,
                "maxReplicas": 5,
                "rayStartParams": {"node-ip-address": "$MY_POD_IP"},
            }
        ],
    },
}
PROBE_BODY, PROBE_ANSWER = ["MANGO", 2], "6"
DEADLINE_SECONDS = 240.0


def serve_config_yaml() -> str:
    """The sample's two applications with the absolute path of our apps folder."""
    config = yaml.safe_load(yaml.safe_load(SAMPLE.read_text())["spec"]["serveConfigV2"])
    for app in config["applications"]:
        app["runtime_env"]["working_dir"] = str(SAMPLE.parent / "apps")
    return yaml.safe_dump(config)


def first_answer(url: str, started: float) -> float:
    deadline = started + DEADLINE_SECONDS
    with httpx.Client(timeout=30) as client:
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                response = client.post(url, json=PROBE_BODY)
                if response.status_code == 200 and response.text.strip() == PROBE_ANSWER:
                    return time.monotonic() - started
            time.sleep(0.05)
    raise TimeoutError(f"{url} did not answer {PROBE_ANSWER} within {DEADLINE_SECONDS:.0f} s")


def wait_serve_gone(client: RayServiceClient) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if not client.get_serve_applications(NAMESPACE, CLUSTER).applications:
            return
        time.sleep(0.5)
    raise TimeoutError("Serve did not shut down")


@contextlib.contextmanager
def controller(work: Path) -> Iterator[RayServiceClient]:
    port = next_free_port(18960, set())
    env = {**os.environ, "RAYSERVICE_HOME": str(work / "home"), "RAYSERVICE_API_PORT": str(port)}
    subprocess.run([RAYSERVICE, "start"], env=env, check=True, capture_output=True, timeout=120)
    client = RayServiceClient(f"http://127.0.0.1:{port}")
    try:
        yield client
    finally:
        with contextlib.suppress(Exception):
            client.delete_cluster(NAMESPACE, CLUSTER)
            deadline = time.monotonic() + 120
            while (work / "home" / "clusters" / CLUSTER).exists() and time.monotonic() < deadline:
                time.sleep(0.5)
        client.close()
        subprocess.run([RAYSERVICE, "stop"], env=env, capture_output=True, timeout=60)


def direct_put(client: RayServiceClient, work: Path, text: str) -> float:
    """The floor: the packaged config PUT to the dashboard by hand; seconds to first answer."""
    access = client.dashboard(NAMESPACE, CLUSTER)
    pods = client.list_objects("pods", NAMESPACE)
    head = next(p for p in pods if p["metadata"]["labels"].get("ray.io/node-type") == "head")
    packaged = resolve_working_dirs(
        yaml.safe_load(text), REPO, work / "floor-packages", "bench", may_read_local_paths=True
    )
    config = deployable_config(packaged, head["status"]["serveProxy"]["port"])
    started = time.monotonic()
    response = httpx.put(
        f"{access['url']}/api/serve/applications/",
        json=config,
        headers={"x-ray-authorization": f"Bearer {access['token']}"},
        timeout=60,
    )
    response.raise_for_status()
    return first_answer(serve_url(client), started)


def serve_url(client: RayServiceClient) -> str:
    endpoints = client.get_cluster(NAMESPACE, CLUSTER).service_endpoint or {}
    return f"http://127.0.0.1:{endpoints['serve']}/fruit"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="Serve deploys of each kind")
    runs = parser.parse_args().runs
    work = Path(tempfile.mkdtemp(prefix="rs-seed3-"))
    text = serve_config_yaml()
    posts: list[float] = []
    through_api: list[float] = []
    floors: list[float] = []
    try:
        with controller(work) as client:
            client.create_compute_template(NAMESPACE, parse_body(ComputeTemplate, TEMPLATE))
            body = copy.deepcopy(CLUSTER_BODY)
            for option in FIXED_PORT_PARAMS:
                body["clusterSpec"]["headGroupSpec"]["rayStartParams"].pop(option, None)
            started = time.monotonic()
            client.create_cluster(NAMESPACE, parse_body(Cluster, body))
            client.wait_cluster_ready(NAMESPACE, CLUSTER, 180)
            print(f"cluster create -> ready     {time.monotonic() - started:6.2f} s", flush=True)
            for run in range(1, runs + 1):
                started = time.monotonic()
                client.deploy_serve_applications(NAMESPACE, CLUSTER, text)
                posts.append(time.monotonic() - started)
                through_api.append(first_answer(serve_url(client), started))
                client.delete_serve_applications(NAMESPACE, CLUSTER)
                wait_serve_gone(client)
                floors.append(direct_put(client, work, text))
                client.delete_serve_applications(NAMESPACE, CLUSTER)
                wait_serve_gone(client)
                print(
                    f"run {run}: POST answered {posts[-1]:5.2f} s, first answer"
                    f" {through_api[-1]:6.2f} s (floor: PUT to the dashboard {floors[-1]:6.2f} s)",
                    flush=True,
                )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"median POST answered              {statistics.median(posts):6.2f} s")
    print(f"median POST -> first answer       {statistics.median(through_api):6.2f} s")
    print(f"median floor PUT -> first answer  {statistics.median(floors):6.2f} s")


if __name__ == "__main__":
    main()
