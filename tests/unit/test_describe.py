"""``describe pod|service|raycluster`` from the CLI, on an in-process API over the reconciler's
world: each page as ``kubectl describe`` lays it out, several names at once, and an unknown
name refused with the names there are."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from rayservice.api.app import create_app
from rayservice.cli import main as cli_main
from rayservice.cli.main import main
from rayservice.client import RayServiceClient
from rayservice.planner.pod_readiness import UNHEALTHY_AFTER_SECONDS
from rayservice.spec.events import ObjectKind
from rayservice.spec.observed import AppState, DeploymentState, Replica, ServeState
from rayservice.store.base import StoredResource
from rayservice.store.sqlite import SqliteStore
from tests.unit.world import NAME, OWNER, World, world_around


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    """The CLI on an in-process API over a store where the sample service runs on the fakes,
    one worker without a replica."""
    world = world_around(SqliteStore(tmp_path / "store.db"))
    world.apply()
    world.bring_up()
    app = create_app(world.store, world.provider, tmp_path / "p", lambda: None, serve=world.serve)
    with TestClient(app, client=("127.0.0.1", 50000)) as client:

        class InProcess(RayServiceClient):
            def __init__(self, base_url: str, *, token: str | None = None) -> None:
                super().__init__(base_url, token=token)
                self._http = client

        monkeypatch.setattr(cli_main, "RayServiceClient", InProcess)
        yield world


def test_describe_pod_answers_from_the_cli_and_names_what_exists_for_a_wrong_name(
    cli: World, capsys: pytest.CaptureFixture[str]
) -> None:
    [name] = cli.provider.clusters(OWNER)
    worker = cli.cluster().workers[0].name
    cli.provider.mark_proxies_ready(name, [worker], ready=False)  # its replica went elsewhere
    plan = cli.reconcile()
    assert plan.wake_at == cli.clock.now + UNHEALTHY_AFTER_SECONDS, "a pass comes to say it"
    cli.clock.now += UNHEALTHY_AFTER_SECONDS
    cli.reconcile()

    code = main(["describe", "po", worker, "no-such-pod"])

    captured = capsys.readouterr()
    assert code == 1
    assert f"Name:             {worker}" in captured.out
    assert (
        "Reason:   no Serve replica on this node, so Ray Serve runs no proxy here" in captured.out
    )
    assert "Warning   Unhealthy   " in captured.out
    assert "Readiness probe failed: no Serve replica on this node" in captured.out
    pods = sorted(p.name for p in cli.store.views("Pod", "default"))
    assert 'error: pods "no-such-pod" not found in namespace "default" (pods there:' in (
        captured.err
    )
    assert ", ".join(pods) in captured.err


def test_describe_service_shows_its_backends_as_the_front_sees_them(
    cli: World, capsys: pytest.CaptureFixture[str]
) -> None:
    cluster = cli.cluster()
    worker = cluster.workers[0]
    cli.provider.mark_proxies_ready(cluster.name, [worker.name], ready=False)
    cli.reconcile()

    assert main(["describe", "svc", f"{NAME}-serve-svc", f"{NAME}-head-svc"]) == 0

    serve_page, head_page = capsys.readouterr().out.split("\n\n\n")
    assert "Type:             ClusterIP" in serve_page
    assert "Port:             serve 8000/TCP" in serve_page
    assert f"Selector:         the Serve proxies of cluster {cluster.name} (active)" in serve_page
    assert "NAME" in serve_page and "ADDRESS" in serve_page and "WEIGHT" in serve_page
    assert f"{cluster.head.name if cluster.head else ''}" in serve_page
    # the worker left the front: an endpoint removed, and the front updated
    assert "EndpointRemoved" in serve_page and "EndpointsUpdated" in serve_page
    assert f"the dashboard of the head of cluster {cluster.name} (active)" in head_page
    assert "not checked" in head_page


def test_describe_raycluster_shows_its_role_groups_and_apps(
    cli: World, capsys: pytest.CaptureFixture[str]
) -> None:
    cluster = cli.cluster()

    assert main(["describe", "raycluster", cluster.name]) == 0

    page = capsys.readouterr().out
    assert f"Owner:            {NAME} (active)" in page
    assert "State:            ready" in page
    assert "Workers:          1 available of 1 desired (min 1, max 5)" in page
    assert "headgroup" in page and "small-group" in page and "1/1" in page
    assert "Serve Applications:\n  fruit_app  RUNNING\n  math_app  RUNNING" in page
    assert "ClusterCreated" in page


def test_describe_refuses_a_kind_it_does_not_know(cli: World) -> None:
    with pytest.raises(SystemExit, match="describe supports rayservices, pods, services"):
        main(["describe", "deployment", "redis"])


def test_several_rayservices_show_those_there_and_name_the_one_that_is_not(
    cli: World, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["describe", "rayservice", NAME, "nope"])

    captured = capsys.readouterr()
    assert code == 1
    assert f"Name:          {NAME}" in captured.out
    assert f'rayservices "nope" not found in namespace "default" (rayservices there: {NAME})' in (
        captured.err
    )


def store_cluster(cli: World, name: str, **spec: Any) -> StoredResource:
    """A standalone RayCluster ``name`` stored as the API stores it (not reconciled yet)."""
    manifest = {
        "apiVersion": "ray.io/v1",
        "kind": "RayCluster",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"headGroupSpec": {"rayStartParams": {}}, **spec},
    }
    return cli.store.apply(ObjectKind.RAY_CLUSTER, manifest, "cluster.yaml", cli.clock())


def test_a_stored_raycluster_with_no_node_running_is_described_from_the_object(
    cli: World, capsys: pytest.CaptureFixture[str]
) -> None:
    store_cluster(cli, "waiting", suspend=True)

    assert main(["describe", "raycluster", "waiting"]) == 0

    page = capsys.readouterr().out
    assert "Name:             waiting" in page
    assert "Owner:            waiting (standalone; no node runs)" in page


def test_a_standalone_cluster_page_asks_its_head_for_the_serve_applications(
    cli: World, capsys: pytest.CaptureFixture[str]
) -> None:
    workers = [{"groupName": "wg", "replicas": 1, "rayStartParams": {}}]
    stored = store_cluster(cli, "alone", workerGroupSpecs=workers)
    cli.reconciler.reconcile(stored)
    cli.provider.make_ready("alone")
    resource = cli.store.get(ObjectKind.RAY_CLUSTER, "default", "alone")
    assert resource is not None
    cli.reconciler.reconcile(resource)
    alone = cli.provider.observe("alone")
    assert alone is not None
    deployment = DeploymentState("Hello", "HEALTHY", replicas=(Replica("RUNNING"),))
    cli.serve.set_state(
        alone.dashboard_url,
        ServeState(apps=(AppState("hello", "RUNNING", deployments=(deployment,)),)),
    )

    assert main(["describe", "raycluster", "alone"]) == 0

    page = capsys.readouterr().out
    assert "Owner:            alone (standalone)" in page
    assert "Serve Applications:\n  hello  RUNNING" in page


def test_a_serve_service_named_in_the_manifest_is_shown_by_that_name(
    cli: World, capsys: pytest.CaptureFixture[str]
) -> None:
    document = cli.resource().manifest
    document["spec"]["serveService"] = {
        "metadata": {"name": "fruit-stand", "labels": {"team": "fruit"}}
    }
    cli.apply(document)
    cli.reconcile()

    assert main(["get", "services"]) == 0
    assert main(["describe", "svc", "fruit-stand"]) == 0

    out = capsys.readouterr().out
    assert "fruit-stand " in out and f"{NAME}-serve-svc" not in out
    assert f"{NAME}-head-svc" in out
    [view] = [v for v in cli.store.views(ObjectKind.SERVICE) if v.name == "fruit-stand"]
    assert view.doc["metadata"]["labels"] == {"team": "fruit", "ray.io/serve": NAME}
