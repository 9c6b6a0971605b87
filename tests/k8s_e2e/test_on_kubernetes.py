"""The Kubernetes backend on a real Kubernetes cluster with KubeRay's operator (``pytest -m
k8s_e2e``): skipped unless ``$KUBECONFIG`` names one (``scripts/e2e-kind.sh`` makes one on kind).

Through the CLI as a user types it: start on the cluster, apply the sample (its ``./apps`` shipped
to the cluster's GCS), ask it through the API server's proxy of ``<name>-serve-svc``, update the
Serve config in place (no new RayCluster), change the cluster (a new RayCluster, the Service
moved, the old one deleted after the delay), go back mid-upgrade, delete. Nothing runs beyond
what the kubeconfig reaches.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from rayservice.kubeapi.lightkube_api import LightkubeApi
from rayservice.kubernetes.kinds import RAY_CLUSTER, SERVICE

pytestmark = pytest.mark.k8s_e2e

KUBECONFIG = os.environ.get("KUBECONFIG", "")
if not KUBECONFIG:
    pytest.skip("needs $KUBECONFIG (a cluster with KubeRay's operator)", allow_module_level=True)

REPO = Path(__file__).resolve().parents[2]
RAYSERVICE = str(Path(sys.executable).parent / "rayservice")
NAME, NAMESPACE = "rayservice-sample", "default"
READY_WITHIN = 900.0  # pulling Ray's image on a fresh node takes minutes


def wait_for(what: str, check: Callable[[], Any], within: float = READY_WITHIN) -> Any:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(5)
    raise AssertionError(f"not {what} within {within:.0f}s")


class Session:
    def __init__(self, home: Path, workdir: Path) -> None:
        self.env = {**os.environ, "RAYSERVICE_HOME": str(home), "RAYSERVICE_API_PORT": "18990"}
        self.workdir = workdir
        self.api = LightkubeApi(Path(KUBECONFIG))

    def run(self, *args: str) -> str:
        done = subprocess.run(
            [RAYSERVICE, *args], env=self.env, cwd=self.workdir, capture_output=True, text=True,
            timeout=600,
        )  # fmt: skip
        assert done.returncode == 0, f"rayservice {' '.join(args)}: {done.stdout}{done.stderr}"
        return done.stdout

    def status(self) -> dict[str, Any]:
        found: dict[str, Any] = json.loads(self.run("get", "rayservice", NAME, "-o", "json"))
        return found.get("status") or {}

    def running(self) -> bool:
        return self.status().get("serviceStatus") == "Running"

    def clusters(self) -> list[str]:
        return sorted(c["metadata"]["name"] for c in self.api.select(RAY_CLUSTER, NAMESPACE))

    def ask(self, path: str, body: object) -> str:
        url = self.api.service_url(NAMESPACE, f"{NAME}-serve-svc", "serve") + path
        response = self.api.http.post(url, json=body, timeout=30)
        assert response.status_code == 200, response.text
        return response.text


@pytest.fixture
def session(tmp_path: Path) -> Iterator[Session]:
    workdir = tmp_path / "work"
    workdir.mkdir()
    shutil.copy(REPO / "samples" / "ray-service.sample.yaml", workdir / "sample.yaml")
    shutil.copytree(REPO / "samples" / "apps", workdir / "apps")
    started = Session(tmp_path / "home", workdir)
    started.run("start", "--backend", "kubernetes", "--kubeconfig", KUBECONFIG)
    try:
        yield started
    finally:
        subprocess.run([RAYSERVICE, "delete", "-f", "sample.yaml"], env=started.env, cwd=workdir,
                       capture_output=True, timeout=600, check=False)  # fmt: skip
        subprocess.run([RAYSERVICE, "stop"], env=started.env, capture_output=True, check=False)


def edit(session: Session, old: str, new: str) -> None:
    path = session.workdir / "sample.yaml"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


def test_apply_update_upgrade_roll_back_and_delete(session: Session) -> None:
    session.run("apply", "-f", "sample.yaml")
    wait_for("Running", session.running)
    [first] = session.clusters()
    assert session.ask("/fruit", ["MANGO", 2]) == "6"

    edit(session, "price: 3", "price: 4")  # in place
    session.run("apply", "-f", "sample.yaml")
    wait_for("the new price", lambda: session.ask("/fruit", ["MANGO", 2]) == "8", within=300)
    assert session.clusters() == [first]

    edit(session, 'num-cpus: "1"', 'num-cpus: "2"')  # a new cluster
    session.run("apply", "-f", "sample.yaml")
    wait_for("a pending cluster", lambda: len(session.clusters()) == 2, within=120)
    second = next(name for name in session.clusters() if name != first)

    def moved() -> bool:
        serve = session.api.get(SERVICE, NAMESPACE, f"{NAME}-serve-svc")
        return bool(serve and serve["spec"]["selector"]["ray.io/cluster"] == second)

    wait_for("the serve Service on the new cluster", moved)
    assert session.ask("/fruit", ["MANGO", 2]) == "8"
    wait_for("the old cluster deleted", lambda: session.clusters() == [second], within=300)

    edit(session, 'num-cpus: "2"', 'num-cpus: "1"')  # and back, while the next one starts
    session.run("apply", "-f", "sample.yaml")
    edit(session, 'num-cpus: "1"', 'num-cpus: "2"')
    session.run("apply", "-f", "sample.yaml")
    wait_for("only the running cluster left", lambda: session.clusters() == [second], within=300)
    assert session.running()
