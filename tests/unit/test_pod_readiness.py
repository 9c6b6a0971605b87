"""Why a pod is not ready, in words; its readiness kept with since when and an event for a lasting
reason; and the ``describe pod`` page that shows it all (seed 002's "why is this worker 0/1?")."""

from __future__ import annotations

from dataclasses import replace

import pytest

from rayservice.cli.describe_pages import describe_pod
from rayservice.controller.views import pod_views
from rayservice.planner.pod_readiness import UNHEALTHY_AFTER_SECONDS, not_ready_reason, track
from rayservice.planner.record import PodReadiness
from rayservice.providers.fake import FakeProvider
from rayservice.spec.cluster_request import ClusterRequest, NodeGroupRequest
from rayservice.spec.observed import (
    AppState,
    DeploymentState,
    NodePhase,
    ObservedCluster,
    ObservedNode,
    Replica,
    ServeState,
)

CLUSTER = "demo-raycluster-x2b4c"
GiB = 1024**3
T0 = 1_714_557_600.0


def cluster(workers: int = 2) -> tuple[ObservedCluster, list[ObservedNode]]:
    """A running cluster: the head ready, ``workers`` workers joined, no proxy healthy yet."""
    provider = FakeProvider(clock=lambda: T0)
    provider.ensure(
        ClusterRequest(
            name=CLUSTER,
            owner="default/demo",
            spec_hash="0123456789abcdef",
            head=NodeGroupRequest(group="headgroup", num_cpus=0, memory_bytes=2 * GiB),
            workers=(
                NodeGroupRequest(
                    group="small-group",
                    replicas=workers,
                    num_cpus=1,
                    memory_bytes=2 * GiB,
                    custom_resources={"fruit": 2.0},
                ),
            ),
        )
    )
    provider.make_head_ready(CLUSTER)
    provider.start_nodes(CLUSTER)
    observed = provider.observe(CLUSTER)
    assert observed is not None
    return observed, list(observed.workers)


def serving_on(*nodes: ObservedNode, proxies: dict[str, str] | None = None) -> ServeState:
    """Serve with one MangoStand replica RUNNING on each of ``nodes``."""
    replicas = tuple(Replica("RUNNING", node.node_id, f"r{i}") for i, node in enumerate(nodes))
    deployment = DeploymentState("MangoStand", "HEALTHY", replicas=replicas)
    default_proxies = {node.node_id: "HEALTHY" for node in nodes}
    return ServeState(
        apps=(AppState("fruit_app", "RUNNING", deployments=(deployment,)),),
        proxies=tuple(sorted((proxies or default_proxies).items())),
    )


def test_a_worker_with_no_replica_is_not_ready_because_serve_runs_no_proxy_there() -> None:
    observed, [busy, idle] = cluster()

    reason = not_ready_reason(idle, observed, serving_on(busy), serves=True)

    # the check's answer is shown beside it, not part of it: the same cause, the same words
    assert reason == "no Serve replica on this node, so Ray Serve runs no proxy here"


@pytest.mark.parametrize(
    ("change", "proxy", "reason"),
    [
        ({}, "DRAINING", "its Serve proxy is draining: no Serve replica is left on this node"),
        ({}, "UNHEALTHY", "its Serve proxy is unhealthy; Ray Serve starts it again"),
        ({}, "STARTING", "starting: its Serve proxy is starting"),
        ({"node_id": ""}, "HEALTHY", "starting: node not registered with the head yet"),
        (
            {"phase": NodePhase.FAILED, "last_words": "raylet died"},
            "HEALTHY",
            "its process exited; it is started again; its log ends: raylet died",
        ),
    ],
)
def test_each_reason_a_worker_is_not_ready_is_said(
    change: dict[str, object], proxy: str, reason: str
) -> None:
    observed, [worker, _] = cluster()
    serve = serving_on(worker, proxies={worker.node_id: proxy})
    worker = replace(worker, **change)  # type: ignore[arg-type]

    assert not_ready_reason(worker, observed, serve, serves=True).startswith(reason)


def test_a_worker_of_a_standalone_cluster_is_ready_once_it_joined() -> None:
    observed, [worker, _] = cluster()

    assert not_ready_reason(worker, observed, None, serves=False) == ""
    assert not_ready_reason(worker, observed, None, serves=True).startswith("starting: ")


def test_readiness_is_kept_since_it_changed_and_a_lasting_reason_is_an_event_once() -> None:
    observed, [busy, idle] = cluster()
    starting = serving_on(busy, proxies={busy.node_id: "STARTING"})
    clusters, serve = {CLUSTER: observed}, {CLUSTER: starting}
    reason = not_ready_reason(idle, observed, serve[CLUSTER], True)

    first, at_once, look_again = track({}, clusters, serve, True, T0)
    soon, still_none, _ = track(first, clusters, serve, True, T0 + 5)
    due, events, _ = track(soon, clusters, serve, True, T0 + UNHEALTHY_AFTER_SECONDS)
    later, repeated, nothing_due = track(due, clusters, serve, True, T0 + 60)

    assert first[idle.name] == PodReadiness(ready=False, since=T0, reason=reason, reason_since=T0)
    # a node Serve still places replicas on passes through this: said only once it lasts
    assert at_once == still_none == [] and look_again == T0 + UNHEALTHY_AFTER_SECONDS
    [event] = events  # the busy worker is only starting (its proxy is): no event
    assert (event.reason, event.involved.name if event.involved else "") == ("Unhealthy", idle.name)
    assert event.message.startswith("Readiness probe failed: no Serve replica on this node")
    assert later == due and due[idle.name].reported and repeated == []
    assert nothing_due is None

    healthy = replace(observed, nodes=tuple(replace(n, proxy_ready=True) for n in observed.nodes))
    ready, none, _ = track(later, {CLUSTER: healthy}, serve, True, T0 + 70)

    assert ready[idle.name] == PodReadiness(ready=True, since=T0 + 70, reason_since=T0 + 70)
    assert none == []


def test_the_pod_page_says_why_a_worker_is_0_of_1_and_what_runs_on_the_other() -> None:
    observed, [busy, idle] = cluster()
    ready_busy = replace(busy, proxy_ready=True, proxy_answer="200 success")
    observed = replace(observed, nodes=(observed.nodes[0], ready_busy, idle))
    serve = serving_on(busy)
    readiness, _, _ = track({}, {CLUSTER: observed}, {CLUSTER: serve}, True, T0)
    views = {
        v.name: v.doc
        for v in pod_views("default", "default/demo", observed, True, serve, readiness)
    }

    idle_page = describe_pod(views[idle.name], [])
    busy_page = describe_pod(views[busy.name], [])

    assert f"Ray Node ID:      {idle.node_id}" in idle_page
    assert "Node Type:        worker, group small-group" in idle_page
    assert "Resources:        cpu 1, memory 2Gi, gpu 0, fruit 2" in idle_page
    assert "Readiness:        GET /-/healthz on the node's Serve proxy, 200 success" in idle_page
    assert "  Last Answer:    connection refused: no Serve proxy listens" in idle_page
    assert "  Reason:   no Serve replica on this node, so Ray Serve runs no proxy here" in idle_page
    assert "Serve Replicas:  <none>" in idle_page
    assert "  Status:   False" in idle_page
    assert "Serve Replicas:\n  fruit_app/MangoStand  RUNNING" in busy_page
    assert "  Status:   True" in busy_page and "Reason:" not in busy_page
    head_page = describe_pod(views[observed.nodes[0].name], [])
    assert "Ports:            gcs 20000, dashboard 20001, serve-proxy 20009" in head_page


def test_the_pod_page_tells_how_the_last_process_of_a_restarted_node_ended() -> None:
    observed, [worker, _] = cluster()
    restarted = replace(worker, restarts=2, last_exit_code=-9, last_words="raylet killed")
    observed = replace(observed, nodes=(observed.nodes[0], restarted))

    [view] = [
        v
        for v in pod_views("default", "default/demo", observed, True, None, {})
        if v.name == worker.name
    ]
    page = describe_pod(view.doc, [])

    assert "  Restart Count:  2" in page
    assert "    Reason:       killed by SIGKILL\n    Exit Code:    137" in page
    assert "    Message:      raylet killed" in page


def test_a_proxy_location_without_worker_proxies_is_said() -> None:
    observed, [worker, _] = cluster()
    serve = replace(serving_on(worker, proxies={}), proxy_location="HeadOnly")

    reason = not_ready_reason(worker, observed, serve, serves=True)

    assert reason.startswith("Serve's proxy_location is HeadOnly: no proxy runs on a worker")


def test_serve_that_cannot_be_read_on_a_cluster_given_a_config_is_not_a_start() -> None:
    observed, [worker, _] = cluster()

    assert not_ready_reason(worker, observed, None, True, deployed=False).startswith("starting: ")
    assert not_ready_reason(worker, observed, None, True, deployed=True) == (
        "Ray Serve's status could not be read from the head"
    )


def test_a_pod_that_was_ready_is_not_starting_when_its_head_stops_answering() -> None:
    observed, [busy, _] = cluster()
    ready = replace(busy, proxy_ready=True)
    up = replace(observed, nodes=(observed.nodes[0], ready))
    serve = {CLUSTER: serving_on(busy)}
    before, _, _ = track({}, {CLUSTER: up}, serve, True, T0)

    silent = replace(up, head_ready=False)  # the head runs, its dashboard stopped answering
    after, _, _ = track(before, {CLUSTER: silent}, serve, True, T0 + 1)
    due = T0 + 1 + UNHEALTHY_AFTER_SECONDS
    _, events, _ = track(after, {CLUSTER: silent}, serve, True, due)

    head = observed.nodes[0].name
    assert after[head].reason == "the head's dashboard does not answer yet"  # no "starting: "
    assert after[busy.name].ready, "a worker whose proxy answers still serves"
    assert [e.involved.name for e in events if e.involved] == [head]


def test_a_process_killed_by_a_signal_with_no_name_is_told_by_its_number() -> None:
    observed, [worker, _] = cluster()
    killed = replace(worker, restarts=1, last_exit_code=-40)
    observed = replace(observed, nodes=(observed.nodes[0], killed))

    docs = {v.name: v.doc for v in pod_views("default", "o/demo", observed, True, None, {})}

    terminated = docs[worker.name]["status"]["containerStatuses"][0]["lastState"]["terminated"]
    assert (terminated["reason"], terminated["exitCode"]) == ("killed by signal 40", 168)
