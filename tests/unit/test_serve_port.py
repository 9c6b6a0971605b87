"""The Services' ports as KubeRay manifests say them: ``spec.serveService`` ports are a hard
request (tested with the API's admission), the head container's port named ``serve`` (for the
serve Service) or ``dashboard`` (for the head Service) a preference, used when free, else the
next free port; a running port moves only when what is asked changes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rayservice.spec.manifest import RayClusterSpec, preferred_serve_port
from rayservice.store.sqlite import SqliteStore
from tests.unit.world import World, new_reconciler, sample_manifest, world_around


def with_head_ports(*ports: tuple[str, int]) -> dict[str, Any]:
    document = sample_manifest()
    head = document["spec"]["rayClusterConfig"]["headGroupSpec"]["template"]["spec"]
    head["containers"][0]["ports"] = [{"name": n, "containerPort": p} for n, p in ports]
    return document


def world_where(tmp_path: Path, taken: set[int]) -> World:
    world = world_around(SqliteStore(tmp_path / "store.db"))
    world.reconciler = new_reconciler(
        world.store, world.provider, world.serve, world.front, world.clock,
        port_usable=lambda port, address: port not in taken,
    )  # fmt: skip
    return world


def serve_port(world: World) -> int:
    return int(world.resource().record["serve_port"])


def test_the_head_containers_serve_port_is_preferred() -> None:
    def spec(*ports: tuple[str, int]) -> RayClusterSpec:
        return RayClusterSpec.model_validate(with_head_ports(*ports)["spec"]["rayClusterConfig"])

    assert preferred_serve_port(spec(("dashboard", 8265), ("serve", 9000))) == 9000
    assert preferred_serve_port(spec(("serve-grpc", 9001), ("serve", 9000))) == 9000
    assert preferred_serve_port(spec(("serve-grpc", 9001))) == 9001
    assert preferred_serve_port(spec(("server", 9002), ("gcs-server", 6379))) is None
    assert preferred_serve_port(spec()) is None


def test_a_free_preferred_port_is_taken(tmp_path: Path) -> None:
    world = world_where(tmp_path, taken=set())
    world.apply(with_head_ports(("gcs-server", 6379), ("serve", 9000)))

    world.reconcile()

    assert serve_port(world) == 9000


def test_a_taken_preferred_port_gives_the_next_free_one_which_then_stays(tmp_path: Path) -> None:
    taken = {9000}
    world = world_where(tmp_path, taken)
    world.apply(with_head_ports(("serve", 9000)))
    world.reconcile()
    assert serve_port(world) == 9001

    taken.clear()  # 9000 is free now: clients know 9001, so it stays
    world.reconcile()
    assert serve_port(world) == 9001

    world.apply(with_head_ports(("serve", 9100)))  # what is asked changed: it moves
    world.reconcile()
    assert serve_port(world) == 9100


def test_a_record_of_an_earlier_release_keeps_its_port(tmp_path: Path) -> None:
    world = world_where(tmp_path, taken=set())
    world.apply()
    world.reconcile()
    assert serve_port(world) == 8000
    record = dict(world.resource().record)
    record.pop("serve_port_asked")  # written before the preference was kept
    world.store.write_record("RayService", "default", "rayservice-sample", record)

    world.apply(with_head_ports(("serve", 9000)))
    world.reconcile()

    assert serve_port(world) == 8000, "clients know 8000: an upgrade moves no port"


def test_a_record_of_an_earlier_release_keeps_its_dashboard_port(tmp_path: Path) -> None:
    world = world_where(tmp_path, taken=set())
    world.apply(with_head_ports())
    world.reconcile()
    record = dict(world.resource().record)
    assert record["dashboard_port"] == 8265
    record.pop("dashboard_port_asked")  # written before the head Service had a preference
    world.store.write_record("RayService", "default", "rayservice-sample", record)

    world.apply(with_head_ports(("dashboard", 8400)))
    world.reconcile()

    assert world.resource().record["dashboard_port"] == 8265


def test_a_preferred_port_another_service_holds_moves_nothing(tmp_path: Path) -> None:
    world = world_where(tmp_path, taken=set())
    world.apply(with_head_ports(("serve", 9000)))
    world.reconcile()
    other = with_head_ports(("serve", 9000))
    other["metadata"]["name"] = "other"
    world.apply(other)
    world.reconcile(name="other")
    assert world.resource(name="other").record["serve_port"] == 9001

    other = with_head_ports(("serve", 9100))
    other["metadata"]["name"] = "other"
    world.apply(other)
    world.reconcile(name="other")  # asks 9100 now: free, so it moves
    assert world.resource(name="other").record["serve_port"] == 9100
    other = with_head_ports(("serve", 9000))
    other["metadata"]["name"] = "other"
    world.apply(other)
    world.reconcile(name="other")  # asks 9000 again, held by the first: it stays

    assert world.resource(name="other").record["serve_port"] == 9100


def test_the_head_containers_dashboard_port_is_the_head_services_preference(
    tmp_path: Path,
) -> None:
    taken = {8300}
    world = world_where(tmp_path, taken)
    world.apply(with_head_ports(("dashboard", 8300), ("client", 10001), ("gcs-server", 6379)))
    world.reconcile()
    record = world.resource().record
    assert record["dashboard_port"] == 8301, "taken: the next free one"

    taken.clear()
    world.reconcile()
    assert world.resource().record["dashboard_port"] == 8301, "clients know it: it stays"

    world.apply(with_head_ports(("dashboard", 8400)))
    world.reconcile()
    assert world.resource().record["dashboard_port"] == 8400

    world.apply(with_head_ports())  # no preference any more: nothing to move to
    world.reconcile()
    assert world.resource().record["dashboard_port"] == 8400


def test_ports_named_alike_by_two_services_give_each_a_port_of_its_own(tmp_path: Path) -> None:
    world = world_where(tmp_path, taken=set())
    ports = (("gcs-server", 6379), ("dashboard", 8265), ("client", 10001), ("serve", 8000))
    world.apply(with_head_ports(*ports))
    other = with_head_ports(*ports)
    other["metadata"]["name"] = "other"
    world.apply(other)

    world.reconcile()
    world.reconcile(name="other")

    first = world.resource().record
    second = world.resource(name="other").record
    assert (first["serve_port"], first["dashboard_port"]) == (8000, 8265)
    assert (second["serve_port"], second["dashboard_port"]) == (8001, 8266)
