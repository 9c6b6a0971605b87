"""The ClusterProvider on Kubernetes, with the test acting as KubeRay's operator and the kubelet:
it makes the pods a RayCluster asks for, labelled as KubeRay labels them, and marks them ready.
Against the fake API (every scenario), and once end to end through lightkube and the emulated
API server."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from rayservice.kubeapi.base import KubernetesApi, KubernetesConflict
from rayservice.kubeapi.fake import FakeKubernetesApi
from rayservice.kubeapi.lightkube_api import LightkubeApi
from rayservice.kubernetes.kinds import POD, RAY_CLUSTER
from rayservice.providers.kubernetes import KubernetesProvider, kuberay_short_name
from rayservice.spec.cluster_request import ClusterRequest
from rayservice.spec.errors import TemporaryError
from rayservice.spec.observed import NodePhase, NodeRole
from tests.kube_emulator import RunningApiServer
from tests.unit.test_kubernetes_objects import CLUSTER, document, loaded, request_of

NAMESPACE = "default"
CONTROLLER = "alice-laptop"
HEAD = f"{CLUSTER}-head-aaaaa"


def request(**spec_changes: Any) -> ClusterRequest:
    return request_of(loaded(document(**spec_changes)))


def run_pod(
    api: KubernetesApi,
    name: str,
    group: str,
    *,
    ready: bool = True,
    cluster: str = CLUSTER,
    **status: Any,
) -> None:
    """A pod of ``cluster`` as KubeRay makes it and the kubelet reports it."""
    head = group == "headgroup"
    api.apply(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": name,
                "namespace": NAMESPACE,
                "labels": {
                    "ray.io/cluster": cluster,
                    "ray.io/node-type": "head" if head else "worker",
                    "ray.io/group": group,
                },
            },
            "spec": {"containers": [{"name": "ray-head" if head else "ray-worker"}]},
            "status": {
                "phase": "Running",
                "startTime": "2026-01-01T00:00:05Z",
                "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
                **status,
            },
        }
    )


def bring_up(api: KubernetesApi, fake: FakeKubernetesApi | None = None) -> None:
    """KubeRay's pods of CLUSTER, and its head Service (named as KubeRay shortens long ones)."""
    api.apply(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {
                "name": "luster-abcde-head-svc",
                "namespace": NAMESPACE,
                "labels": {"ray.io/cluster": CLUSTER, "ray.io/node-type": "head"},
            },
            "spec": {"ports": [{"name": "dashboard", "port": 8265}]},
        }
    )
    run_pod(api, HEAD, "headgroup")
    run_pod(api, f"{CLUSTER}-small-worker-bbbbb", "small")
    run_pod(api, f"{CLUSTER}-small-worker-ccccc", "small", ready=False)
    if fake is not None:
        fake.answers[NAMESPACE, HEAD, 8000, "/-/healthz"] = "success"


@pytest.fixture
def api() -> FakeKubernetesApi:
    return FakeKubernetesApi()


def test_ensure_applies_the_raycluster_of_the_request(api: FakeKubernetesApi) -> None:
    provider = KubernetesProvider(api, CONTROLLER)

    provider.ensure(request())

    applied = api.get(RAY_CLUSTER, NAMESPACE, CLUSTER)
    assert applied is not None
    assert applied["metadata"]["labels"]["rayservice.io/owner-name"] == "svc"
    assert applied["spec"]["workerGroupSpecs"][0]["replicas"] == 2
    assert provider.clusters(owner=f"{NAMESPACE}/svc") == [CLUSTER]
    assert provider.clusters(owner=f"{NAMESPACE}/other") == []


def test_a_cluster_without_pods_yet_has_no_ready_head(api: FakeKubernetesApi) -> None:
    provider = KubernetesProvider(api, CONTROLLER)
    provider.ensure(request())

    observed = provider.observe(CLUSTER)

    assert observed is not None
    assert (observed.nodes, observed.head_ready, observed.spec_hash) == ((), False, "hash1")
    assert observed.owner == f"{NAMESPACE}/svc"
    assert observed.dashboard_url == ""  # KubeRay has not made its head Service yet


def test_pods_become_nodes_and_proxies_that_answer_become_endpoints(
    api: FakeKubernetesApi,
) -> None:
    provider = KubernetesProvider(api, CONTROLLER)
    provider.ensure(request())
    bring_up(api, api)

    observed = provider.observe(CLUSTER)

    assert observed is not None and observed.head is not None
    assert observed.head_ready
    assert [(n.role, n.group, n.phase) for n in observed.nodes] == [
        (NodeRole.HEAD, "headgroup", NodePhase.RUNNING),
        (NodeRole.WORKER, "small", NodePhase.RUNNING),
        (NodeRole.WORKER, "small", NodePhase.RUNNING),
    ]
    # the head: its proxy asked through the API server; workers: their readiness probe
    assert [n.name for n in observed.serve_endpoints] == [
        f"{CLUSTER}-head-aaaaa",
        f"{CLUSTER}-small-worker-bbbbb",
    ]
    assert observed.head.proxy_answer == "success"
    assert observed.head.started_at == pytest.approx(1767225605.0)
    assert observed.dashboard_url.endswith(
        f"/namespaces/{NAMESPACE}/services/luster-abcde-head-svc:8265/proxy"
    )


def head_label(api: KubernetesApi) -> str | None:
    pod = api.get(POD, NAMESPACE, HEAD)
    assert pod is not None
    label: str | None = pod["metadata"]["labels"].get("ray.io/serve")
    return label


def test_the_head_serves_while_its_proxy_answers(api: FakeKubernetesApi) -> None:
    provider = KubernetesProvider(api, CONTROLLER)
    provider.ensure(request())
    bring_up(api, api)

    provider.observe(CLUSTER)
    answering = head_label(api)
    del api.answers[NAMESPACE, HEAD, 8000, "/-/healthz"]
    provider.observe(CLUSTER)

    assert (answering, head_label(api)) == ("true", "false")


def test_an_excluded_head_never_serves(api: FakeKubernetesApi) -> None:
    provider = KubernetesProvider(api, CONTROLLER)
    provider.ensure(request(excludeHeadPodFromServeSvc=True))
    bring_up(api, api)

    observed = provider.observe(CLUSTER)

    assert observed is not None and observed.head is not None
    assert observed.head.proxy_ready  # healthy, as the planner needs to know
    assert head_label(api) == "false"  # but not in the serve Services


def test_a_head_whose_proxy_does_not_answer_is_no_endpoint(api: FakeKubernetesApi) -> None:
    provider = KubernetesProvider(api, CONTROLLER)
    provider.ensure(request())
    bring_up(api)  # no answer on the head's proxy

    observed = provider.observe(CLUSTER)

    assert observed is not None and observed.head is not None
    assert not observed.head.proxy_ready


def test_a_restarted_or_deleted_pod_says_how_its_ray_container_ended(
    api: FakeKubernetesApi,
) -> None:
    provider = KubernetesProvider(api, CONTROLLER)
    provider.ensure(request())
    crashed = {
        "name": "ray-worker",
        "restartCount": 2,
        "lastState": {"terminated": {"exitCode": 137, "reason": "OOMKilled"}},
    }
    run_pod(api, f"{CLUSTER}-small-worker-bbbbb", "small", containerStatuses=[crashed])
    run_pod(api, f"{CLUSTER}-small-worker-ccccc", "small")
    api.objects[POD, NAMESPACE, f"{CLUSTER}-small-worker-ccccc"]["metadata"][
        "deletionTimestamp"
    ] = "2026-01-01T00:01:00Z"

    observed = provider.observe(CLUSTER)

    assert observed is not None
    [restarted] = observed.workers  # the one being deleted is gone already
    assert (restarted.restarts, restarted.last_exit_code, restarted.last_words) == (
        2,
        137,
        "OOMKilled",
    )


def test_workers_to_delete_are_named_in_their_groups(api: FakeKubernetesApi) -> None:
    provider = KubernetesProvider(api, CONTROLLER)
    provider.ensure(request())
    bring_up(api)
    first = request()
    [workers] = first.workers
    fewer = first.model_copy(
        update={
            "workers": (workers.model_copy(update={"replicas": 1}),),
            "workers_to_delete": (f"{CLUSTER}-small-worker-ccccc",),
        }
    )

    provider.ensure(fewer)

    applied = api.get(RAY_CLUSTER, NAMESPACE, CLUSTER)
    assert applied is not None
    group = applied["spec"]["workerGroupSpecs"][0]
    assert group["replicas"] == 1
    assert group["scaleStrategy"] == {"workersToDelete": [f"{CLUSTER}-small-worker-ccccc"]}


def test_an_autoscaled_cluster_takes_spec_changes_and_keeps_its_autoscalers_counts(
    api: FakeKubernetesApi,
) -> None:
    provider = KubernetesProvider(api, CONTROLLER)
    provider.ensure(request_of(loaded(autoscaled())))
    running = api.objects[RAY_CLUSTER, NAMESPACE, CLUSTER]["spec"]["workerGroupSpecs"][0]
    running["replicas"] = 4  # KubeRay's autoscaler wrote these
    running["scaleStrategy"] = {"workersToDelete": [f"{CLUSTER}-small-worker-aaaaa"]}
    grown = autoscaled()
    groups = grown["spec"]["rayClusterConfig"]["workerGroupSpecs"]
    groups.append({**groups[0], "groupName": "large", "replicas": 1})

    provider.ensure(request_of(loaded(grown)))

    applied = api.get(RAY_CLUSTER, NAMESPACE, CLUSTER)
    assert applied is not None
    small, large = applied["spec"]["workerGroupSpecs"]
    assert small["replicas"] == 4
    assert small["scaleStrategy"] == {"workersToDelete": [f"{CLUSTER}-small-worker-aaaaa"]}
    assert (large["groupName"], large["replicas"]) == ("large", 1)  # the new group, as asked


@pytest.mark.parametrize("writes_between", [1, 2])
def test_an_autoscaled_cluster_written_meanwhile_is_read_again_not_overwritten(
    api: FakeKubernetesApi, monkeypatch: pytest.MonkeyPatch, writes_between: int
) -> None:
    provider = KubernetesProvider(api, CONTROLLER)
    provider.ensure(request_of(loaded(autoscaled())))
    reading, writes = api.get, [writes_between]

    def read_then_the_autoscaler_writes(*args: Any) -> dict[str, Any] | None:
        found = reading(*args)
        if writes[0]:
            writes[0] -= 1
            running = api.objects[RAY_CLUSTER, NAMESPACE, CLUSTER]
            running["spec"]["workerGroupSpecs"][0]["replicas"] = 3
            running["metadata"]["resourceVersion"] += "-written"
        return found

    monkeypatch.setattr(api, "get", read_then_the_autoscaler_writes)
    grown = autoscaled()
    groups = grown["spec"]["rayClusterConfig"]["workerGroupSpecs"]
    groups.append({**groups[0], "groupName": "large", "replicas": 0})

    if writes_between == 2:  # written again after the second read: the next pass tries
        with pytest.raises(KubernetesConflict, match="409"):
            provider.ensure(request_of(loaded(grown)))
        return
    provider.ensure(request_of(loaded(grown)))

    applied = reading(RAY_CLUSTER, NAMESPACE, CLUSTER)
    assert applied is not None
    assert [g["replicas"] for g in applied["spec"]["workerGroupSpecs"]] == [3, 0]


def test_an_autoscaled_cluster_reports_the_bounds_its_autoscaler_keeps(
    api: FakeKubernetesApi,
) -> None:
    provider = KubernetesProvider(api, CONTROLLER)
    provider.ensure(request_of(loaded(autoscaled())))
    bring_up(api)

    observed = provider.observe(CLUSTER)

    assert observed is not None
    assert observed.autoscaler_bounds == (("small", 0, 4),)
    assert observed.autoscaler_running is False  # no autoscaler container reported yet


def test_a_controller_sees_only_the_clusters_it_made(api: FakeKubernetesApi) -> None:
    KubernetesProvider(api, CONTROLLER).ensure(request())
    other = KubernetesProvider(api, "bob-laptop")

    assert other.clusters() == []
    assert other.observe(CLUSTER) is None


def autoscaled() -> dict[str, Any]:
    doc = document()
    doc["spec"]["rayClusterConfig"]["enableInTreeAutoscaling"] = True
    return doc


def test_a_restarted_controller_finds_its_clusters_again(api: FakeKubernetesApi) -> None:
    KubernetesProvider(api, CONTROLLER).ensure(request())
    restarted = KubernetesProvider(api, CONTROLLER)

    observed = restarted.observe(CLUSTER)

    assert observed is not None and observed.name == CLUSTER
    assert restarted.clusters() == [CLUSTER]


def test_delete_removes_the_raycluster_and_an_unknown_cluster_is_none(
    api: FakeKubernetesApi,
) -> None:
    provider = KubernetesProvider(api, CONTROLLER)
    provider.ensure(request())

    provider.delete(CLUSTER)
    provider.delete(CLUSTER)

    assert provider.observe(CLUSTER) is None
    assert api.get(RAY_CLUSTER, NAMESPACE, CLUSTER) is None


def test_logs_of_the_head_or_a_named_node(api: FakeKubernetesApi) -> None:
    provider = KubernetesProvider(api, CONTROLLER)
    provider.ensure(request())
    bring_up(api)
    api.logs[NAMESPACE, f"{CLUSTER}-head-aaaaa", "ray-head"] = "head up\n"
    api.logs[NAMESPACE, f"{CLUSTER}-small-worker-bbbbb", "ray-worker"] = "a\nb\nc\n"

    assert provider.logs(CLUSTER) == "head up\n"
    assert provider.logs(CLUSTER, f"{CLUSTER}-small-worker-bbbbb", tail=1) == "c\n"
    with pytest.raises(TemporaryError, match="has no node 'nope'"):
        provider.logs(CLUSTER, "nope")


@pytest.fixture
def emulated() -> Iterator[RunningApiServer]:
    running = RunningApiServer()
    yield running
    running.stop()


def test_through_lightkube_and_an_api_server(emulated: RunningApiServer, tmp_path: Path) -> None:
    config = tmp_path / "kubeconfig"
    config.write_text(yaml.safe_dump(emulated.kubeconfig()))
    api = LightkubeApi(config)
    server = emulated.server
    assert server is not None
    provider = KubernetesProvider(api, CONTROLLER)

    provider.ensure(request())
    bring_up(api)
    server.answers[NAMESPACE, f"{CLUSTER}-head-aaaaa", 8000, "/-/healthz"] = "success"
    server.logs[NAMESPACE, f"{CLUSTER}-head-aaaaa", "ray-head"] = "head up\n"

    observed = KubernetesProvider(api, CONTROLLER).observe(CLUSTER)  # a new controller, too
    assert observed is not None
    assert len(observed.serve_endpoints) == 2
    assert observed.dashboard_url.startswith(emulated.url)
    assert provider.logs(CLUSTER) == "head up\n"
    stored = server.stored("rayclusters", NAMESPACE, CLUSTER)
    assert stored is not None and stored["metadata"]["uid"]


def test_serve_proxies_in_pods_listen_on_every_interface(api: FakeKubernetesApi) -> None:
    provider = KubernetesProvider(api, CONTROLLER)
    provider.ensure(request())

    observed = provider.observe(CLUSTER)

    assert observed is not None and observed.proxy_host == "0.0.0.0"


def token_secret(api: FakeKubernetesApi, name: str, token: str) -> None:
    encoded = base64.b64encode(token.encode()).decode()
    api.apply(
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": NAMESPACE},
         "data": {"auth_token": encoded}}
    )  # fmt: skip


def with_token_auth(**options: str) -> ClusterRequest:
    document_ = document()
    document_["spec"]["rayClusterConfig"]["authOptions"] = {"mode": "token", **options}
    return request_of(loaded(document_))


def test_with_rays_token_auth_the_token_is_the_one_kuberay_gives_the_pods(
    api: FakeKubernetesApi,
) -> None:
    provider = KubernetesProvider(api, CONTROLLER)
    provider.ensure(with_token_auth())
    token_secret(api, CLUSTER, "from-kuberay")

    observed = provider.observe(CLUSTER)

    assert observed is not None and observed.auth_token == "from-kuberay"


def test_a_token_secret_the_manifest_names_is_read_and_none_means_no_token(
    api: FakeKubernetesApi,
) -> None:
    provider = KubernetesProvider(api, CONTROLLER)
    provider.ensure(with_token_auth(secretName="ray-token"))
    token_secret(api, "ray-token", "mine")

    observed = provider.observe(CLUSTER)
    provider.ensure(request())

    assert observed is not None and observed.auth_token == "mine"
    plain = provider.observe(CLUSTER)
    assert plain is not None and plain.auth_token == ""


def test_kuberay_shortens_long_names_from_the_front() -> None:
    assert kuberay_short_name("short") == "short"
    assert kuberay_short_name("a" * 10 + "b" * 50) == "b" * 50
    assert kuberay_short_name("x" * 9 + "-" + "c" * 49) == "r" + "c" * 49
