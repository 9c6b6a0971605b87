"""Ray's own autoscaler on a cluster: the settings taken from the manifest, what is refused, the
config Ray's monitor reads (checked with Ray's own validation), the node provider that talks to
the controller's API, and the controller making the scale it asks for."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from ray.autoscaler._private.util import validate_config
from ray.autoscaler.batching_node_provider import ScaleRequest as RayScaleRequest
from ray.autoscaler.tags import (
    NODE_KIND_HEAD,
    NODE_KIND_WORKER,
    STATUS_UP_TO_DATE,
    TAG_RAY_NODE_KIND,
    TAG_RAY_NODE_STATUS,
)

from rayservice.api.app import create_app
from rayservice.autoscaler import node_provider
from rayservice.cli.describe_pages import describe_raycluster
from rayservice.client import RayServiceClient
from rayservice.planner.actions import EnsureCluster
from rayservice.planner.cluster import cluster_drift, cluster_request, keeping_an_endpoint
from rayservice.providers import ray_autoscaler
from rayservice.providers.autoscaling_config import NODE_PROVIDER, autoscaling_config
from rayservice.providers.local_state import ClusterRecord
from rayservice.spec.autoscaling import (
    AutoscaledNode,
    ScaleRequest,
    autoscaling_of,
    scaled_replicas,
)
from rayservice.spec.cluster_request import Autoscaling
from rayservice.spec.errors import InvalidSpec
from rayservice.spec.loader import load_manifest
from rayservice.spec.manifest import RayClusterSpec, RayService
from rayservice.spec.observed import NodePhase, NodeRole, ObservedCluster, ObservedNode
from rayservice.store.sqlite import SqliteStore
from tests.unit.world import NAME, OWNER, World, sample_manifest, world_around

GROUP = "small-group"


def autoscaled_manifest(**options: Any) -> dict[str, Any]:
    """The sample RayService with Ray's autoscaler on and its worker group 0..2, no replicas."""
    document = sample_manifest()
    cluster = document["spec"]["rayClusterConfig"]
    cluster["enableInTreeAutoscaling"] = True
    if options:
        cluster["autoscalerOptions"] = options
    group = cluster["workerGroupSpecs"][0]
    group.pop("replicas", None)
    group.update(minReplicas=0, maxReplicas=2)
    return document


def spec_of(document: dict[str, Any]) -> RayClusterSpec:
    return RayService.model_validate(document).spec.rayClusterConfig


def test_the_autoscalers_settings_follow_kuberays_defaults_and_modes() -> None:
    assert autoscaling_of(spec_of(sample_manifest())) is None
    assert autoscaling_of(spec_of(autoscaled_manifest())) == Autoscaling(
        idle_timeout_seconds=60.0, upscaling_speed=1000.0
    )
    conservative = autoscaled_manifest(idleTimeoutSeconds=15, upscalingMode="Conservative")
    assert autoscaling_of(spec_of(conservative)) == Autoscaling(
        idle_timeout_seconds=15.0, upscaling_speed=1.0
    )


def test_what_the_autoscaler_asks_is_kept_within_the_groups_bounds() -> None:
    [group] = spec_of(autoscaled_manifest()).workerGroupSpecs

    assert scaled_replicas(group, None) == 0, "no replicas: a cluster starts at minReplicas"
    assert scaled_replicas(group, ScaleRequest(replicas={GROUP: 1})) == 1
    assert scaled_replicas(group, ScaleRequest(replicas={GROUP: 9})) == 2
    assert scaled_replicas(group, ScaleRequest(replicas={"other": 2})) == 0


def refusal(document: dict[str, Any]) -> list[tuple[str, str]]:
    with pytest.raises(InvalidSpec) as refused:
        load_manifest(document, "auto.yaml")
    return [(p.field, p.message) for p in refused.value.problems]


def test_autoscaler_v2_and_unknown_options_are_refused_at_apply() -> None:
    prefix = "spec.rayClusterConfig"
    assert refusal(autoscaled_manifest(version="v2")) == [
        (f"{prefix}.autoscalerOptions.version", "Ray's autoscaler v2 is not supported here")
    ]
    assert refusal(autoscaled_manifest(upscalingMode="Fast"))[0][0] == (
        f"{prefix}.autoscalerOptions.upscalingMode"
    )
    assert refusal(autoscaled_manifest(idleTimeoutSeconds=-1))[0][0] == (
        f"{prefix}.autoscalerOptions.idleTimeoutSeconds"
    )
    unbounded = autoscaled_manifest()
    unbounded["spec"]["rayClusterConfig"]["workerGroupSpecs"][0].pop("maxReplicas")
    [(field, message)] = refusal(unbounded)
    assert field == f"{prefix}.workerGroupSpecs[0].maxReplicas"
    assert "is required with enableInTreeAutoscaling" in message
    with_env = autoscaled_manifest()
    head = with_env["spec"]["rayClusterConfig"]["headGroupSpec"]["template"]["spec"]
    head["containers"][0]["env"] = [{"name": "RAY_enable_autoscaler_v2", "value": "1"}]
    [(field, message)] = refusal(with_env)
    assert field == f"{prefix}.headGroupSpec.template.spec.containers[0].env[0]"
    assert "autoscaler v2, which is not supported here yet" in message


def test_the_config_rays_monitor_reads_passes_rays_own_validation() -> None:
    request = cluster_request(
        "c1", OWNER, spec_of(autoscaled_manifest(idleTimeoutSeconds=30)), "h", annotations={}
    )
    assert request.autoscaling is not None

    config = autoscaling_config(request, request.autoscaling, "http://127.0.0.1:8888", "default")

    validate_config(copy.deepcopy(config))  # raises on anything Ray would not read
    assert config["provider"]["module"] == NODE_PROVIDER
    assert config["provider"]["use_node_id_as_ip"] is True
    assert config["idle_timeout_minutes"] == 0.5 and config["max_workers"] == 2
    head, worker = (
        config["available_node_types"]["headgroup"],
        config["available_node_types"][GROUP],
    )
    assert (head["min_workers"], head["max_workers"]) == (0, 0)
    assert (worker["min_workers"], worker["max_workers"]) == (0, 2)
    assert worker["resources"] == {"CPU": 1, "memory": 2 * 1024**3}


def test_a_request_follows_the_autoscaler_only_when_the_spec_runs_it() -> None:
    asked = ScaleRequest(replicas={GROUP: 2}, workers_to_delete=("w-1",))

    plain = cluster_request(
        "c1", OWNER, spec_of(sample_manifest()), "h", annotations={}, scale=asked
    )
    scaled = cluster_request(
        "c1", OWNER, spec_of(autoscaled_manifest()), "h", annotations={}, scale=asked
    )

    assert [g.replicas for g in plain.workers] == [1] and plain.workers_to_delete == ()
    assert [g.replicas for g in scaled.workers] == [2] and scaled.workers_to_delete == ("w-1",)


def node(name: str, role: NodeRole, serving: bool) -> ObservedNode:
    return ObservedNode(
        name=name, role=role, group=GROUP if role is NodeRole.WORKER else "headgroup",
        phase=NodePhase.RUNNING, proxy_port=1, proxy_ready=serving, restarts=0, started_at=0.0,
    )  # fmt: skip


def test_the_last_serve_endpoint_is_never_removed() -> None:
    request = cluster_request(
        "c1", OWNER, spec_of(autoscaled_manifest()), "h", annotations={},
        scale=ScaleRequest(replicas={GROUP: 0}, workers_to_delete=("w-1",)),
    )  # fmt: skip

    def cluster(head_serves: bool, *workers: ObservedNode) -> ObservedCluster:
        nodes = (node("h", NodeRole.HEAD, head_serves), *workers)
        return ObservedCluster("c1", OWNER, "h", 0.0, nodes, "http://127.0.0.1:1", True, "t")

    only_worker = node("w-1", NodeRole.WORKER, True)
    alone = keeping_an_endpoint(request, cluster(False, only_worker), exclude_head=False)
    assert alone.workers_to_delete == () and [g.replicas for g in alone.workers] == [1]
    with_head = keeping_an_endpoint(request, cluster(True, only_worker), exclude_head=False)
    assert with_head == request
    # a head the serve Service leaves out (excludeHeadPodFromServeSvc) serves nobody
    excluded = keeping_an_endpoint(request, cluster(True, only_worker), exclude_head=True)
    assert excluded == alone
    others = cluster(False, only_worker, node("w-2", NodeRole.WORKER, True))
    assert keeping_an_endpoint(request, others, exclude_head=False) == request


def test_the_controller_makes_the_scale_the_autoscaler_asks_for(tmp_path: Path) -> None:
    world = world_around(SqliteStore(tmp_path / "store.db"))
    world.apply(autoscaled_manifest())
    world.reconcile()
    cluster = next(iter(world.provider.clusters(owner=OWNER)))
    world.provider.make_ready(cluster)
    assert world.provider.observe(cluster) is not None

    world.store.put_scale_request(cluster, OWNER, {"replicas": {GROUP: 2}, "workersToDelete": []})
    plan = world.reconcile()

    [ensure] = [a for a in plan.actions if isinstance(a, EnsureCluster)]
    assert [g.replicas for g in ensure.request.workers] == [2]
    assert ensure.reason == f"Ray's autoscaler asks for 2 worker(s) of group {GROUP} (has 0)"
    world.reconcile()
    view = next(v for v in world.store.views("RayCluster") if v.name == cluster)
    assert view.doc["status"]["desiredWorkerReplicas"] == 2


def test_a_deleted_clusters_requests_are_forgotten(tmp_path: Path) -> None:
    world = world_around(SqliteStore(tmp_path / "store.db"))
    world.apply(autoscaled_manifest())
    world.reconcile()
    world.store.put_scale_request("gone-cluster", OWNER, {"replicas": {GROUP: 1}})

    world.reconcile()

    assert "gone-cluster" not in world.store.scale_requests(OWNER)


class ScriptedRayStatus:
    """What ``ray status`` prints, scripted (the dashboard is fake here)."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, str]] = []

    def ray_status(self, dashboard_url: str, token: str) -> str:
        self.asked.append((dashboard_url, token))
        return "Node status\nPending Demands:\n (no resource demands)"


@pytest.fixture
def api(tmp_path: Path) -> Iterator[tuple[TestClient, World]]:
    world = world_around(SqliteStore(tmp_path / "store.db"))
    wakes: list[None] = []
    app = create_app(
        world.store, world.provider, tmp_path / "packages", lambda: wakes.append(None),
        ray_status=ScriptedRayStatus(),
    )  # fmt: skip
    with TestClient(app, client=("127.0.0.1", 50000)) as client:
        world.apply(autoscaled_manifest())
        world.reconcile()
        yield client, world


def test_the_node_provider_reads_nodes_and_sends_the_scale_through_the_api(
    api: tuple[TestClient, World], monkeypatch: pytest.MonkeyPatch
) -> None:
    client, world = api
    [cluster] = world.provider.clusters(owner=OWNER)
    world.provider.make_ready(cluster)
    world.store.put_scale_request(cluster, OWNER, {"replicas": {GROUP: 1}})
    world.reconcile()  # one worker
    world.provider.make_ready(cluster)
    monkeypatch.setattr(
        node_provider,
        "RayServiceClient",
        lambda url, token: RayServiceClient(url, token=token, transport=client._transport),
    )
    config = {
        "api_url": "http://testserver", "namespace": "default", "disable_node_updaters": True,
        "disable_launch_config_check": True, "foreground_node_launch": True,
    }  # fmt: skip
    provider = node_provider.RayServiceNodeProvider(config, cluster)

    nodes = provider.non_terminated_nodes({})

    kinds = {n: provider.node_tags(n)[TAG_RAY_NODE_KIND] for n in nodes}
    assert sorted(kinds.values()) == [NODE_KIND_HEAD, NODE_KIND_WORKER]
    worker = next(n for n, kind in kinds.items() if kind == NODE_KIND_WORKER)
    assert provider.node_tags(worker)[TAG_RAY_NODE_STATUS] == STATUS_UP_TO_DATE
    assert provider.internal_ip(worker), "a registered node's IP is its Ray node id"
    provider.submit_scale_request(RayScaleRequest({GROUP: 0}, {worker}))
    provider.non_terminated_nodes({})  # a round starts with the nodes, then asks if it is safe
    assert not provider.safe_to_scale(), "not while a worker asked to go still runs"
    assert world.store.scale_requests(OWNER)[cluster] == {
        "replicas": {GROUP: 0},
        "workersToDelete": [worker],
    }
    world.reconcile()  # the controller removes it
    provider.non_terminated_nodes({})
    assert provider.safe_to_scale()


def autoscaling_path(world: World) -> tuple[str, str]:
    """The service's one cluster, and the path of its autoscaler's API."""
    [cluster] = world.provider.clusters(owner=OWNER)
    return cluster, f"/apis/ray.io/v1/namespaces/default/rayclusters/{cluster}/autoscaling"


def test_the_api_refuses_an_unknown_cluster_and_a_bad_request(
    api: tuple[TestClient, World],
) -> None:
    client, world = api
    cluster, path = autoscaling_path(world)

    unknown = client.get("/apis/ray.io/v1/namespaces/default/rayclusters/nope/autoscaling")
    elsewhere = client.get(path.replace("/default/", "/other/"))
    negative = client.put(path, json={"replicas": {GROUP: -1}})
    huge = client.put(path, json={"replicas": {GROUP: 10**6}})
    misspelt = client.put(path, json={"replica": {GROUP: 1}})
    state = client.get(path)

    assert (unknown.status_code, elsewhere.status_code) == (404, 404)
    assert (negative.status_code, huge.status_code, misspelt.status_code) == (422, 422, 422)
    assert negative.json()["detail"].startswith(f"replicas.{GROUP}: Input should be greater")
    assert misspelt.json()["detail"].startswith("replica: Extra inputs are not permitted")
    assert '"workersToDelete": [pod names]' in misspelt.json()["detail"]
    assert state.status_code == 200
    nodes = [AutoscaledNode.model_validate(n) for n in state.json()["nodes"]]
    assert any(n.head for n in nodes)
    assert state.json()["scale"] == {"replicas": {}, "workersToDelete": []}
    assert NAME in cluster


def test_describe_raycluster_shows_the_autoscaler_its_request_and_ray_status(
    api: tuple[TestClient, World],
) -> None:
    client, world = api
    cluster, path = autoscaling_path(world)
    client.put(path, json={"replicas": {GROUP: 1}, "workersToDelete": ["idle-pod"]})

    state = client.get(path, params={"rayStatus": "true"}).json()
    plain = client.get(path).json()
    metadata: dict[str, Any] = {"name": cluster, "namespace": "default", "labels": {}}
    metadata["creationTimestamp"] = None
    status = {"role": "active", "autoscaler": {"running": True, **state}}
    page = describe_raycluster({"metadata": metadata, "status": status}, [])

    assert plain["rayStatus"] == ""
    assert "Autoscaler:\n  State:          running" in page
    assert f"Last Request:   workers: {GROUP} 1; removing idle-pod" in page
    assert "  Ray Status:\n    Node status\n    Pending Demands:" in page


def test_a_pending_cluster_of_an_upgrade_follows_its_own_autoscaler(tmp_path: Path) -> None:
    world = world_around(SqliteStore(tmp_path / "store.db"))
    world.apply(autoscaled_manifest())
    world.bring_up()
    [active] = world.provider.clusters(owner=OWNER)
    upgraded = autoscaled_manifest()
    upgraded["spec"]["rayClusterConfig"]["headGroupSpec"]["rayStartParams"]["num-cpus"] = "2"
    world.apply(upgraded)
    world.reconcile()  # the pending cluster is created
    [pending] = [c for c in world.provider.clusters(owner=OWNER) if c != active]
    world.provider.make_head_ready(pending)

    world.store.put_scale_request(pending, OWNER, {"replicas": {GROUP: 2}})
    plan = world.reconcile()

    ensured = {a.request.name: a.request for a in plan.actions if isinstance(a, EnsureCluster)}
    assert [g.replicas for g in ensured[pending].workers] == [2]
    assert active not in ensured, "the active cluster keeps what its own autoscaler asked"


def test_a_worker_the_user_names_to_delete_still_goes_under_the_autoscaler() -> None:
    document = autoscaled_manifest()
    group = document["spec"]["rayClusterConfig"]["workerGroupSpecs"][0]
    group["scaleStrategy"] = {"workersToDelete": ["named-by-user"]}
    asked = ScaleRequest(replicas={GROUP: 1}, workers_to_delete=("idle-one",))

    request = cluster_request("c1", OWNER, spec_of(document), "h", annotations={}, scale=asked)

    assert request.workers_to_delete == ("named-by-user", "idle-one")
    assert [g.replicas for g in request.workers] == [1], "the autoscaler's count wins"


def test_the_autoscaler_runs_as_a_process_of_its_own_with_the_clusters_token(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[tuple[list[str], dict[str, str]]] = []

    def start_session(command: list[str], output: Any, *, env: dict[str, str]) -> int:
        started.append((command, env))
        return 4242

    monkeypatch.setattr(ray_autoscaler, "start_session", start_session)
    monkeypatch.setattr(ray_autoscaler, "start_ticks", lambda pid: 1)
    request = cluster_request("c1", OWNER, spec_of(autoscaled_manifest()), "h", annotations={})
    record = ClusterRecord(name="c1", owner=OWNER, token="ray-token", created_at=0.0,
                           request=request)  # fmt: skip
    api = ray_autoscaler.ApiAccess("http://127.0.0.1:8888", "api-token")

    ray_autoscaler.keep_running(record, tmp_path, "127.0.0.2:20000", api)

    [(command, env)] = started
    assert command[1:3] == ["-m", "ray.autoscaler._private.monitor"]
    assert "--gcs-address=127.0.0.2:20000" in command
    assert f"--autoscaling-config={tmp_path / 'autoscaling.json'}" in command
    assert (env["RAY_AUTH_TOKEN"], env["RAYSERVICE_TOKEN"]) == ("ray-token", "api-token")
    config = json.loads((tmp_path / "autoscaling.json").read_text())
    assert config["provider"]["api_url"] == "http://127.0.0.1:8888"
    assert record.autoscaler is not None and record.autoscaler.pid == 4242
    monkeypatch.setattr(ray_autoscaler, "is_alive", lambda pid, ticks: False)
    monkeypatch.setattr(ray_autoscaler, "exit_status", lambda pid: 1)
    ray_autoscaler.keep_running(record, tmp_path, "127.0.0.2:20000", api)
    assert len(started) == 1, "a monitor that just died waits out its back-off"
    assert ray_autoscaler.running(record) is None, "nothing to do before the back-off ends"
    monkeypatch.setattr(ray_autoscaler, "is_alive", lambda pid, ticks: True)
    monkeypatch.setattr(ray_autoscaler, "stop_process_sessions", lambda pids: None)
    ray_autoscaler.keep_running(record, tmp_path, "127.0.0.2:20000", api)
    assert len(started) == 1, "a running monitor given the same API is left alone"
    moved = ray_autoscaler.ApiAccess("http://127.0.0.1:9999", "api-token")
    ray_autoscaler.keep_running(record, tmp_path, "127.0.0.2:20000", moved)
    assert len(started) == 2, "Ray builds its node provider once: a new API needs a new monitor"


def test_a_request_naming_some_groups_keeps_the_others_counts(
    api: tuple[TestClient, World],
) -> None:
    client, world = api
    cluster, path = autoscaling_path(world)
    client.put(path, json={"replicas": {GROUP: 0, "gpu-group": 2}})

    answer = client.put(path, json={"replicas": {GROUP: 1}, "workersToDelete": ["w"]})

    # Ray names only the groups it has nodes of: the others keep what it asked before
    assert answer.json() == {"replicas": {GROUP: 1, "gpu-group": 2}, "workersToDelete": ["w"]}
    assert world.store.scale_requests(OWNER)[cluster] == answer.json()


def test_removed_workers_leave_the_request_and_a_named_one_goes_even_at_the_same_count(
    tmp_path: Path,
) -> None:
    world = world_around(SqliteStore(tmp_path / "store.db"))
    world.apply(autoscaled_manifest())
    world.reconcile()
    [cluster] = world.provider.clusters(owner=OWNER)
    world.store.put_scale_request(cluster, OWNER, {"replicas": {GROUP: 1}})
    world.reconcile()
    world.provider.make_ready(cluster)
    [worker] = [n.name for n in world.cluster().workers]
    # Ray ended one worker and asked for another in the same round: the count stays 1
    world.store.put_scale_request(
        cluster, OWNER, {"replicas": {GROUP: 1}, "workersToDelete": [worker]}
    )

    plan = world.reconcile()

    [ensure] = [a for a in plan.actions if isinstance(a, EnsureCluster)]
    assert ensure.reason == f"removing {worker} as Ray's autoscaler asks"
    world.reconcile()
    assert [n.name for n in world.cluster().workers] != [worker]
    assert world.store.scale_requests(OWNER)[cluster]["workersToDelete"] == []


def test_changed_bounds_reach_the_running_autoscaler() -> None:
    request = cluster_request("c1", OWNER, spec_of(autoscaled_manifest()), "h", annotations={})
    running = ObservedCluster(
        "c1", OWNER, "h", 0.0, (node("h", NodeRole.HEAD, True),), "http://127.0.0.1:1", True,
        "t", autoscaler_running=True, autoscaler_bounds=((GROUP, 0, 5),),
    )  # fmt: skip

    assert cluster_drift(request, running) == (
        "the worker bounds of cluster c1 changed; Ray's autoscaler takes them"
    )
