"""Where the Services listen: loopback unless their type (NodePort, LoadBalancer) asks to be
reachable from other hosts; then the controller's service address, and for head Services only
when the controller's settings name one. The rules, what the reconciler makes of them, what
``get services`` shows and what the apply says."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from rayservice.api.app import create_app
from rayservice.controller.views import service_views
from rayservice.providers.fake import FakeProvider
from rayservice.spec.manifest import RayCluster, RayService
from rayservice.spec.observed import FrontSpec
from rayservice.spec.service_exposure import (
    ExposureSettings,
    exposure,
    exposure_warnings,
    service_type,
)
from rayservice.spec.vocabulary import ServicePort, ServiceType
from rayservice.store.sqlite import SqliteStore
from tests.unit.world import NAME, World, new_reconciler, sample_manifest, world_around

EVERYWHERE = ExposureSettings()
HEAD_TOO = ExposureSettings(head_service_address="0.0.0.0")
NOWHERE = ExposureSettings(service_address="127.0.0.1")
SERVE, HEAD = ServicePort.SERVE, ServicePort.DASHBOARD


def typed(
    serve: str | None = None, head_group: str | None = None, head_service: str | None = None
) -> dict[str, Any]:
    """The sample RayService with the given Service types (None: not set)."""
    document = sample_manifest()
    head = document["spec"]["rayClusterConfig"]["headGroupSpec"]
    if serve is not None:
        document["spec"]["serveService"] = {"spec": {"type": serve}}
    if head_group is not None:
        head["serviceType"] = head_group
    if head_service is not None:
        head["headService"] = {"spec": {"type": head_service}}
    return document


def service(**types: str | None) -> RayService:
    return RayService.model_validate(typed(**types))


def test_the_type_is_the_services_own_else_the_head_groups_else_cluster_ip() -> None:
    field = "spec.rayClusterConfig.headGroupSpec.serviceType"
    assert service_type(service(), SERVE) == (ServiceType.CLUSTER_IP, None)
    assert service_type(service(head_group="NodePort"), SERVE) == (ServiceType.NODE_PORT, field)
    both = service(serve="LoadBalancer", head_group="NodePort")
    assert service_type(both, SERVE) == (ServiceType.LOAD_BALANCER, "spec.serveService.spec.type")
    assert service_type(both, HEAD) == (ServiceType.NODE_PORT, field)
    head = service(head_group="NodePort", head_service="ClusterIP")
    assert service_type(head, HEAD) == (
        ServiceType.CLUSTER_IP,
        "spec.rayClusterConfig.headGroupSpec.headService.spec.type",
    )


def test_a_standalone_clusters_services_take_the_head_groups_type() -> None:
    cluster = RayCluster.model_validate(
        {
            "apiVersion": "ray.io/v1",
            "kind": "RayCluster",
            "metadata": {"name": "c", "annotations": {"ray.io/enable-serve-service": "true"}},
            "spec": {"headGroupSpec": {"serviceType": "LoadBalancer", "rayStartParams": {}}},
        }
    )

    found = exposure(cluster, SERVE, EVERYWHERE)
    assert (found.service, found.type, found.address) == (
        "c-serve-svc",
        ServiceType.LOAD_BALANCER,
        "0.0.0.0",
    )
    assert exposure(cluster, HEAD, EVERYWHERE).address == "127.0.0.1"
    assert exposure(cluster, HEAD, HEAD_TOO).address == "0.0.0.0"


@pytest.mark.parametrize(
    ("types", "settings", "serve_at", "head_at"),
    [
        ({}, EVERYWHERE, "127.0.0.1", "127.0.0.1"),
        ({"serve": "ClusterIP", "head_group": "ClusterIP"}, HEAD_TOO, "127.0.0.1", "127.0.0.1"),
        ({"serve": "ExternalName"}, EVERYWHERE, "127.0.0.1", "127.0.0.1"),
        ({"serve": "LoadBalancer"}, EVERYWHERE, "0.0.0.0", "127.0.0.1"),
        ({"head_group": "NodePort"}, EVERYWHERE, "0.0.0.0", "127.0.0.1"),
        ({"head_group": "NodePort"}, HEAD_TOO, "0.0.0.0", "0.0.0.0"),
        ({"head_group": "NodePort"}, NOWHERE, "127.0.0.1", "127.0.0.1"),
        ({"serve": "NodePort"}, ExposureSettings("192.0.2.7"), "192.0.2.7", "127.0.0.1"),
    ],
)
def test_where_each_service_listens(
    types: dict[str, str], settings: ExposureSettings, serve_at: str, head_at: str
) -> None:
    manifest = service(**types)

    assert exposure(manifest, SERVE, settings).address == serve_at
    assert exposure(manifest, HEAD, settings).address == head_at


def test_the_apply_says_which_service_leaves_loopback_and_which_stays() -> None:
    manifest = service(serve="LoadBalancer", head_group="NodePort")

    assert exposure_warnings(manifest, True, EVERYWHERE) == [
        "spec.serveService.spec.type is LoadBalancer: rayservice-sample-serve-svc listens on"
        " 0.0.0.0, reachable from other hosts",
        "spec.rayClusterConfig.headGroupSpec.serviceType is NodePort, but"
        " rayservice-sample-head-svc (Ray's dashboard, which runs code for whoever holds the"
        " cluster's token) stays on 127.0.0.1; start the controller with"
        " --head-service-address ADDRESS to expose head Services",
    ]
    assert exposure_warnings(manifest, True, NOWHERE)[0] == (
        "spec.serveService.spec.type is LoadBalancer, but rayservice-sample-serve-svc stays on"
        " loopback: the controller's --service-address is 127.0.0.1"
    )
    assert exposure_warnings(service(), True, HEAD_TOO) == []
    head_on_loopback = ExposureSettings(head_service_address="127.0.0.1")
    assert exposure_warnings(service(head_group="NodePort"), False, head_on_loopback) == [
        "spec.rayClusterConfig.headGroupSpec.serviceType is NodePort, but"
        " rayservice-sample-head-svc stays on loopback: the controller's"
        " --head-service-address is 127.0.0.1"
    ]


def world_with(tmp_path: Path, settings: ExposureSettings, asked: list[tuple[int, str]]) -> World:
    world = world_around(SqliteStore(tmp_path / "store.db"))

    def usable(port: int, address: str) -> bool:
        asked.append((port, address))
        return True

    world.reconciler = new_reconciler(
        world.store, world.provider, world.serve, world.front, world.clock,
        port_usable=usable, exposure=settings,
    )  # fmt: skip
    return world


def last_ensured(world: World) -> FrontSpec:
    specs = [call.spec for call in world.front.calls if call.method == "ensure"]
    assert specs and specs[-1] is not None
    return specs[-1]


def test_a_load_balancer_service_listens_on_all_interfaces_and_goes_back_keeping_its_port(
    tmp_path: Path,
) -> None:
    asked: list[tuple[int, str]] = []
    world = world_with(tmp_path, EVERYWHERE, asked)
    world.apply(typed(serve="LoadBalancer"))

    world.reconcile()

    record = world.resource().record
    assert (record["serve_address"], record["dashboard_address"]) == ("0.0.0.0", "127.0.0.1")
    assert (8000, "0.0.0.0") in asked and (8265, "127.0.0.1") in asked
    spec = last_ensured(world)
    assert (spec.serve_address, spec.serve_port) == ("0.0.0.0", 8000)
    assert spec.dashboard_address == "127.0.0.1"

    world.apply(typed(serve="ClusterIP"))
    world.reconcile()

    spec = last_ensured(world)
    assert (spec.serve_address, spec.serve_port) == ("127.0.0.1", 8000)


def test_get_services_shows_the_type_and_where_other_hosts_reach_it(tmp_path: Path) -> None:
    world = world_with(tmp_path, HEAD_TOO, [])
    world.apply(typed(serve="LoadBalancer", head_group="NodePort"))
    world.reconcile()
    front = world.front.observe(f"default.{NAME}")
    assert front is not None

    views = service_views("default", service(serve="LoadBalancer", head_group="NodePort"),
                          front, 0.0, {})  # fmt: skip

    specs = {view.name: view.doc["spec"] for view in views}
    serve, head = specs[f"{NAME}-serve-svc"], specs[f"{NAME}-head-svc"]
    assert (serve["type"], serve["externalIPs"]) == ("LoadBalancer", ["0.0.0.0"])
    assert (head["type"], head["externalIPs"]) == ("NodePort", ["0.0.0.0"])
    plain = service_views("default", service(), front, 0.0, {})[0].doc["spec"]
    assert plain["type"] == "ClusterIP"


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    app = create_app(
        SqliteStore(tmp_path / "store.db"), FakeProvider(), tmp_path / "packages", lambda: None
    )
    with TestClient(app, client=("127.0.0.1", 50000)) as test_client:
        yield test_client


def put(client: TestClient, document: dict[str, Any]) -> Any:
    path = f"/apis/ray.io/v1/namespaces/default/rayservices/{NAME}"
    return client.put(path, json={"manifest": document, "source": "s.yaml", "baseDir": "/"})


def test_the_apply_warns_of_a_service_reachable_from_other_hosts(client: TestClient) -> None:
    response = put(client, typed(serve="LoadBalancer"))

    assert response.status_code == 200
    warnings = response.headers.get_list("warning")  # (and others when 8000 is taken here)
    assert any("serve-svc listens on 0.0.0.0, reachable from other hosts" in w for w in warnings)


def test_a_requested_port_must_be_free_where_the_service_listens(client: TestClient) -> None:
    with socket.socket() as holder:  # taken on another loopback address only
        holder.bind(("127.0.0.2", 0))
        holder.listen()
        port = holder.getsockname()[1]
        asked = typed(serve="LoadBalancer")
        asked["spec"]["serveService"]["spec"]["ports"] = [{"name": "serve", "port": port}]
        refused = put(client, asked)
        asked["spec"]["serveService"]["spec"]["type"] = "ClusterIP"
        accepted = put(client, asked)

    assert refused.status_code == 422
    [problem] = refused.json()["problems"]
    assert problem["field"] == "spec.serveService.spec.ports[0].port"
    assert f"port {port} on 0.0.0.0 is already in use" in problem["message"]
    assert accepted.status_code == 200
