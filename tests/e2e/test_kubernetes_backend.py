"""The Kubernetes backend end to end, as a user types it: ``rayservice start --backend
kubernetes --kubeconfig FILE`` against an emulated API server on loopback (no Kubernetes cluster
runs here), ``apply`` of the sample (its ``./apps`` folder shipped to the cluster's GCS), and the
test acting as KubeRay's operator, the kubelet and Ray's dashboard behind the API server's proxy,
until ``get`` says Ready."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from rayservice.kubeapi.lightkube_api import LightkubeApi
from rayservice.kubernetes.kinds import POD, RAY_CLUSTER, RAY_CLUSTER_CRD, SERVICE
from rayservice.serve_client.fake import details_document, running_state
from tests.e2e.conftest import Cli
from tests.e2e.steps import get_json
from tests.helpers import eventually
from tests.kube_emulator import ApiServer, RunningApiServer, Status

NAMESPACE, NAME = "default", "rayservice-sample"
APPLICATIONS = "/api/serve/applications/"
PACKAGES = "/api/packages/gcs/"


@pytest.fixture
def emulated() -> Iterator[RunningApiServer]:
    running = RunningApiServer()
    assert running.server is not None
    running.server.crds.add(RAY_CLUSTER_CRD)
    yield running
    running.stop()


def act_as_kuberay(api: LightkubeApi, server: ApiServer) -> None:
    """For every RayCluster: its head Service, a ready pod per node, a head proxy that answers,
    and Serve running whatever config its dashboard was last given."""
    for cluster in api.select(RAY_CLUSTER, NAMESPACE):
        name = cluster["metadata"]["name"]
        service = f"{name}-head-svc"
        labels = {"ray.io/cluster": name, "ray.io/node-type": "head"}
        api.apply(
            {"apiVersion": "v1", "kind": "Service",
             "metadata": {"name": service, "namespace": NAMESPACE, "labels": labels},
             "spec": {"ports": [{"name": "dashboard", "port": 8265}]}}
        )  # fmt: skip
        spec = cluster["spec"]
        nodes = [("headgroup", f"{name}-head", spec["headGroupSpec"])]
        for group in spec.get("workerGroupSpecs") or []:
            nodes += [
                (group["groupName"], f"{name}-{group['groupName']}-{i}", group)
                for i in range(group["replicas"])
            ]
        for group_name, pod, group in nodes:
            if api.get(POD, NAMESPACE, pod) is None:
                api.apply(pod_of(name, group_name, pod, group))
        server.answers[NAMESPACE, f"{name}-head", 8000, "/-/healthz"] = "success"
        deployed = [
            body for method, path, _, body in server.proxied
            if method == "PUT" and path == APPLICATIONS
        ]  # fmt: skip
        if deployed:
            state = details_document(
                service, running_state(deployed[-1]), deployed[-1], time.time()
            )
            server.service_answers[NAMESPACE, service, "8265", "GET", APPLICATIONS] = state
        server.service_answers[NAMESPACE, service, "8265", "PUT", APPLICATIONS] = {}
        act_as_rays_package_api(server, service)


def act_as_rays_package_api(server: ApiServer, service: str) -> None:
    """The GCS of a head (one for all, enough here): a package asked for is missing until it
    has been put there."""
    asked = {path for _, path, _, _ in server.proxied if PACKAGES in path}
    put = {path for method, path, _, _ in server.proxied if method == "PUT" and PACKAGES in path}
    for path in asked:
        has = Status(200) if path in put else Status(404, "Package does not exist")
        server.service_answers[NAMESPACE, service, "8265", "GET", path] = has
        server.service_answers[NAMESPACE, service, "8265", "PUT", path] = Status(200)


def pod_of(cluster: str, group: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    head = group == "headgroup"
    labels = {
        **(spec["template"].get("metadata", {}).get("labels") or {}),
        "ray.io/cluster": cluster,
        "ray.io/node-type": "head" if head else "worker",
        "ray.io/group": group,
    }
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": NAMESPACE, "labels": labels},
        "spec": {"containers": [{"name": spec["template"]["spec"]["containers"][0]["name"]}]},
        "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]},
    }


def running(cli: Cli) -> bool:
    """Ready, every application RUNNING and the serve Service on the active cluster."""
    status = get_json(cli, "get", "rayservice", NAME).get("status") or {}
    return status.get("serviceStatus") == "Running" and any(
        c["type"] == "Ready" and c["status"] == "True" for c in status.get("conditions") or []
    )


def test_the_sample_comes_up_on_kuberays_raycluster(
    cli: Cli, emulated: RunningApiServer, tmp_path: Path
) -> None:
    server = emulated.server
    assert server is not None
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump(emulated.kubeconfig()))
    api = LightkubeApi(kubeconfig)
    manifest = cli.workdir / "samples" / "ray-service.sample.yaml"  # with ./apps, shipped

    cli.run("start", "--backend", "kubernetes", "--kubeconfig", str(kubeconfig))
    cli.run("apply", "-f", str(manifest))

    def up() -> bool:
        act_as_kuberay(api, server)
        return running(cli)

    eventually(up, timeout=90, interval=0.5, message="the sample Running on Kubernetes")
    [cluster] = api.select(RAY_CLUSTER, NAMESPACE)
    name = cluster["metadata"]["name"]

    def serve_selects() -> str:
        act_as_kuberay(api, server)
        serve = api.get(SERVICE, NAMESPACE, f"{NAME}-serve-svc")
        return str((serve or {}).get("spec", {}).get("selector", {}).get("ray.io/cluster"))

    eventually(lambda: serve_selects() == name, timeout=30, message="serve-svc on the cluster")
    deployed = [b for m, p, _, b in server.proxied if m == "PUT" and p == APPLICATIONS]
    assert deployed and deployed[-1]["http_options"]["host"] == "0.0.0.0"
    shipped = {app["runtime_env"]["working_dir"] for app in deployed[-1]["applications"]}
    [package] = shipped  # both apps run the sample's ./apps
    assert package.startswith("gcs://_ray_pkg_")
    uploads = [p for m, p, _, _ in server.proxied if m == "PUT" and PACKAGES in p]
    assert uploads and set(uploads) == {PACKAGES + package.removeprefix("gcs://")}
    dashboard = cli.run("dashboard", NAME).stdout
    assert f"/api/v1/namespaces/default/services/{name}-head-svc:8265/proxy/" in dashboard
    assert "kubectl proxy" in dashboard
    head = api.get(POD, NAMESPACE, f"{name}-head")
    assert head is not None and head["metadata"]["labels"]["ray.io/serve"] == "true"
    cli.run("delete", "-f", str(manifest))
    eventually(lambda: not api.select(RAY_CLUSTER, NAMESPACE), timeout=60,
               message="the RayCluster deleted with its service")  # fmt: skip
