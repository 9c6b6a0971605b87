"""The CLI's tables, describe page, ``apply --wait`` outcomes, ``diff`` and ``apply --dry-run``
reports (through the real API, in process) and its unreachable-controller message. Objects are
built the way the API builds them (stored resources, views of a fake provider's cluster), so the
tables are checked against the real shapes."""

from __future__ import annotations

import io
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from rayservice.api.app import create_app
from rayservice.api.objects import event_object, resource_object
from rayservice.cli import main as cli_main
from rayservice.cli import tables
from rayservice.cli.main import main
from rayservice.cli.waiting import summarize
from rayservice.client import RayServiceClient
from rayservice.controller.views import cluster_view, pod_views, service_views
from rayservice.planner.cluster_status import WorkerBounds, observed_status
from rayservice.providers.fake import FakeProvider
from rayservice.spec.cluster_request import ClusterRequest, NodeGroupRequest
from rayservice.spec.events import ObjectKind, ObjectRef
from rayservice.spec.manifest import RayService
from rayservice.spec.observed import Backend, FrontSpec, FrontState, NodeRole, ObservedCluster
from rayservice.spec.status import (
    AppStatus,
    Condition,
    RayServiceStatus,
    ServeDeploymentStatus,
    ServiceStatus,
    rfc3339,
)
from rayservice.spec.vocabulary import KIND
from rayservice.store.base import Event, StoredResource
from rayservice.store.sqlite import SqliteStore
from tests.unit.test_api import LOCAL_CALLER
from tests.unit.world import sample_manifest

CLUSTER = "demo-raycluster-bbbbb"
DEMO = ObjectRef(ObjectKind.RAY_SERVICE, "demo")
FOUR_DAYS_AGO = time.time() - (4 * 24 + 5) * 3600  # prints "4d5h" whatever the seconds
GiB = 2**30


def columns(line: str) -> list[str]:
    """A table line split into its cells (cells are at least two spaces apart)."""
    return re.split(r"\s{2,}", line.strip())


def table(rows: tuple[list[str], list[list[str]]]) -> list[list[str]]:
    headers, body = rows
    return [columns(line) for line in tables.render(headers, body).splitlines()]


def fake_cluster(*, head_ready: bool = True, worker_proxy: bool = False) -> ObservedCluster:
    provider = FakeProvider(clock=lambda: FOUR_DAYS_AGO)
    provider.ensure(
        ClusterRequest(
            name=CLUSTER,
            owner="default/demo",
            spec_hash="0123456789abcdef",
            head=NodeGroupRequest(group="headgroup", num_cpus=1, memory_bytes=2 * GiB),
            workers=(NodeGroupRequest(group="small", num_cpus=1, memory_bytes=2 * GiB),),
        )
    )
    if head_ready:
        provider.make_head_ready(CLUSTER)
    if worker_proxy:
        provider.mark_proxies_ready(CLUSTER)
    cluster = provider.observe(CLUSTER)
    assert cluster is not None
    return cluster


def status(*, ready: bool = True, app: str = "RUNNING", message: str = "") -> RayServiceStatus:
    return RayServiceStatus(
        conditions=[
            Condition(
                type="Ready",
                status="True" if ready else "False",
                reason="NonZeroServeEndpoints" if ready else "Initializing",
                message="2 serve endpoint(s)" if ready else "waiting for the head",
                lastTransitionTime="2024-05-01T10:00:00Z",
                observedGeneration=1,
            )
        ],
        activeServiceStatus=ServiceStatus(
            rayClusterName=CLUSTER,
            applicationStatuses={
                "fruit_app": AppStatus(
                    status=app,
                    message=message,
                    healthLastUpdateTime="2024-05-01T10:00:00Z",
                    serveDeploymentStatuses={
                        "MangoStand": ServeDeploymentStatus(
                            status="HEALTHY",
                            healthLastUpdateTime="2024-05-01T10:00:00Z",
                            lastUpdateTime="2024-05-01T10:00:00Z",
                        )
                    },
                )
            },
        ),
        numServeEndpoints=2 if ready else 0,
        observedGeneration=1,
        serviceStatus="Running" if ready else "",
    )


def event(
    reason: str,
    message: str,
    first_seen: float,
    *,
    last_seen: float | None = None,
    count: int = 1,
    involved: ObjectRef = DEMO,
) -> Event:
    """An event of the service demo, of type Normal."""
    return Event(
        namespace="default",
        name="demo",
        involved_kind=involved.kind,
        involved_name=involved.name,
        type="Normal",
        reason=reason,
        message=message,
        first_seen=first_seen,
        last_seen=first_seen if last_seen is None else last_seen,
        count=count,
    )


def rayservice(serve_status: RayServiceStatus | None = None) -> dict[str, Any]:
    manifest = {
        "apiVersion": "ray.io/v1",
        "kind": "RayService",
        "metadata": {"name": "demo", "namespace": "default"},
        "spec": {
            "serveConfigV2": (
                "applications:\n"
                "  - name: fruit_app\n"
                "    import_path: fruit:app\n"
                "    deployments:\n"
                "      - name: MangoStand\n"
                "        health_check_period_s: 2\n"
                "      - name: FruitMarket\n"
            ),
            "rayClusterConfig": {
                "headGroupSpec": {"enableIngress": True, "rayStartParams": {}},
                "workerGroupSpecs": [{"groupName": "small", "replicas": 1}],
            },
        },
    }
    resource = StoredResource(
        kind="RayService",
        namespace="default",
        name="demo",
        uid="uid-1",
        generation=1,
        resource_version=3,
        created_at=FOUR_DAYS_AGO,
        manifest=manifest,
        status=(serve_status or status()).model_dump(mode="json"),
        source="demo.yaml",
    )
    return resource_object(resource)


# -- get tables ---------------------------------------------------------------------------


def test_rayservice_table() -> None:
    rows = table(tables.rayservice_rows([rayservice()], wide=False))

    assert rows[0] == ["NAME", "SERVICE STATUS", "NUM SERVE ENDPOINTS", "AGE"]
    assert rows[1] == ["demo", "Running", "2", "4d5h"]


def test_rayservice_wide_table_names_the_clusters() -> None:
    rows = table(tables.rayservice_rows([rayservice()], wide=True))

    assert rows[0][4:] == ["READY", "ACTIVE CLUSTER", "PENDING CLUSTER"]
    assert rows[1][4:] == ["True", CLUSTER, "<none>"]


def test_raycluster_table() -> None:
    cluster = fake_cluster()
    status = observed_status(cluster, WorkerBounds(desired=1, minimum=0, maximum=1))
    view = cluster_view("default", "default/demo", cluster, status, "active", None)

    headers, rows = tables.raycluster_rows([view.doc], wide=False)

    assert headers == [
        "NAME",
        "DESIRED WORKERS",
        "AVAILABLE WORKERS",
        "CPUS",
        "MEMORY",
        "GPUS",
        "STATUS",
        "AGE",
    ]
    # the worker has not joined yet: desired 1, available 0, so not ready (KubeRay's state is
    # empty until every pod is ready)
    assert rows == [[CLUSTER, "1", "0", "2", "4Gi", "0", "", "4d5h"]]


def test_pod_table_shows_readiness_and_restarts() -> None:
    provider_cluster = fake_cluster(head_ready=True, worker_proxy=False)
    docs = [v.doc for v in pod_views("default", "default/demo", provider_cluster, True, None, {})]

    rows = table(tables.pod_rows(docs, wide=False))

    assert rows[0] == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    head = next(n.name for n in provider_cluster.nodes if n.role is NodeRole.HEAD)
    worker = provider_cluster.workers[0].name
    assert {r[0]: r[1:] for r in rows[1:]} == {
        head: ["1/1", "Running", "0", "4d5h"],
        worker: ["0/1", "Pending", "0", "4d5h"],
    }


def test_pod_table_counts_a_restart_and_readiness_follows_the_proxy() -> None:
    provider = FakeProvider(clock=lambda: FOUR_DAYS_AGO)
    provider.ensure(
        ClusterRequest(
            name=CLUSTER,
            owner="default/demo",
            spec_hash="0123456789abcdef",
            head=NodeGroupRequest(group="headgroup"),
            workers=(NodeGroupRequest(group="small"),),
        )
    )
    [worker] = provider.node_names(CLUSTER, NodeRole.WORKER)
    provider.kill_node(CLUSTER, worker)
    provider.ensure(provider.request_of(CLUSTER))  # restarts it
    provider.make_ready(CLUSTER)
    cluster = provider.observe(CLUSTER)
    assert cluster is not None

    rows = table(
        tables.pod_rows(
            [v.doc for v in pod_views("default", "o/demo", cluster, True, None, {})], False
        )
    )

    assert {r[0]: (r[1], r[3]) for r in rows[1:]}[worker] == ("1/1", "1")


def test_service_table() -> None:
    cluster = fake_cluster()
    assert cluster.head is not None
    front = FrontSpec(
        serve_port=8000,
        dashboard_port=8265,
        serve_backends=(Backend(cluster.head.name, "127.0.0.1", cluster.head.proxy_port),),
        dashboard_backend=Backend(cluster.head.name, "127.0.0.1", 20001),
    )
    state = FrontState(front, pid=1, healthy_backends=(cluster.head.name,))
    roles = {cluster.name: "active"}
    owner = RayService.model_validate(sample_manifest() | {"metadata": {"name": "demo"}})
    docs = [v.doc for v in service_views("default", owner, state, FOUR_DAYS_AGO, roles)]

    rows = table(tables.service_rows(docs, wide=True))

    assert rows[0] == ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE", "BACKENDS"]
    assert rows[1:] == [
        [
            "demo-serve-svc",
            "ClusterIP",
            "127.0.0.1",
            "<none>",
            "8000/TCP",
            "4d5h",
            cluster.head.name,
        ],
        [
            "demo-head-svc",
            "ClusterIP",
            "127.0.0.1",
            "<none>",
            "8265/TCP",
            "4d5h",
            cluster.head.name,
        ],
    ]


def test_render_pads_columns_to_the_widest_cell() -> None:
    text = tables.render(["NAME", "AGE"], [["a-long-name", "5s"], ["b", "10d"]])

    assert text.splitlines() == [
        "NAME          AGE",
        "a-long-name   5s",
        "b             10d",
    ]


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [
        (0, "0s"),
        (42, "42s"),
        (119, "119s"),
        (200, "3m20s"),
        (180, "3m"),  # no zero second part, as kubectl prints it
        (15 * 60 + 30, "15m"),
        (2 * 3600 + 5 * 60, "125m"),  # minutes up to three hours
        (3 * 3600, "3h"),
        (5 * 3600 + 5 * 60, "5h5m"),
        (12 * 3600, "12h"),
        (47 * 3600, "47h"),
        (4 * 86400 + 3600, "4d1h"),
        (10 * 86400, "10d"),
        (3 * 365 * 86400 + 5 * 86400, "3y5d"),
        (9 * 365 * 86400, "9y"),
        (-30, "0s"),  # a clock slightly behind the server's
    ],
)
def test_age(seconds: int, expected: str) -> None:
    then = 1_714_557_600

    assert tables.age(rfc3339(then), now=then + seconds) == expected


def test_age_of_an_unknown_time() -> None:
    assert tables.age(None) == "<unknown>"
    assert tables.age("") == "<unknown>"


# -- describe -------------------------------------------------------------------------------


def test_describe_shows_conditions_apps_deployments_ignored_fields_and_events() -> None:
    cluster = fake_cluster(worker_proxy=True)
    pods = [v.doc for v in pod_views("default", "default/demo", cluster, True, None, {})]
    four_days_ago = time.time() - (4 * 24 + 5) * 3600  # now, not when the module was imported
    events = [
        event_object(event("ClusterCreated", f"creating cluster {CLUSTER}", four_days_ago)),
        event_object(
            event(
                "Unhealthy",
                "head not ready",
                four_days_ago,
                last_seen=four_days_ago + 4 * 86400,  # 5h ago
                count=5,
                involved=ObjectRef(ObjectKind.RAY_CLUSTER, CLUSTER),
            )
        ),
    ]

    text = tables.describe_rayservice(rayservice(), events, pods)

    assert "Name:          demo" in text
    assert "Applied From:  demo.yaml" in text
    assert "Generation:    1 (observed 1)" in text
    assert "GCS Fault Tolerance:  off: the cluster starts over when its head is lost" in text
    assert re.search(r"Type:\s+Ready\n\s+Status:\s+True\n\s+Reason:\s+NonZeroServeEndpoints", text)
    assert "Application Statuses:" in text and "      fruit_app:" in text
    assert "Serve Deployment Statuses:" in text and "          MangoStand:" in text
    assert re.search(r"Status:\s+HEALTHY", text)
    assert "Num Serve Endpoints:  2" in text
    for node in cluster.nodes:
        assert f"{node.name} (127.0.0.1:{node.proxy_port})" in text
    checks = text.split("Serve Health Checks (serveConfigV2; Serve's defaults where it sets none):")
    assert checks[1].splitlines()[1:3] == [
        "  fruit_app/MangoStand: every 2s, timeout 30s",
        "  fruit_app/FruitMarket: every 10s, timeout 30s",
    ]
    ignored = text.split("Ignored Fields (no meaning on the local backend):")[1]
    assert "spec.rayClusterConfig.headGroupSpec.enableIngress" in ignored.split("Events:")[0]
    event_lines = text.split("Events:")[1].strip().splitlines()
    assert columns(event_lines[0]) == ["Type", "Reason", "Age", "Object", "Message"]
    assert columns(event_lines[1]) == [
        "Normal",
        "ClusterCreated",
        "4d5h",
        "RayService/demo",
        f"creating cluster {CLUSTER}",
    ]
    assert columns(event_lines[2]) == [
        "Normal",
        "Unhealthy",
        "5h (x5 over 4d5h)",
        f"RayCluster/{CLUSTER}",
        "head not ready",
    ]


@pytest.mark.parametrize(
    ("first", "last", "count", "expected"),
    [
        (300, 300, 1, "5m"),
        (180, 10, 5, "10s (x5 over 3m)"),
        (7200, 0, 2, "0s (x2 over 120m)"),
    ],
)
def test_event_age_says_how_often_and_over_how_long_like_kubectl(
    first: int, last: int, count: int, expected: str
) -> None:
    now = 1_714_557_600.0
    repeated = event("Unhealthy", "head not ready", now - first, last_seen=now - last, count=count)

    assert tables.event_age(event_object(repeated), now=now) == expected


def test_describe_without_events_or_endpoints_says_none() -> None:
    text = tables.describe_rayservice(rayservice(status(ready=False)), [], [])

    assert "Serve Endpoints:  <none>" in text
    assert text.rstrip().endswith("Events:  <none>")


# -- apply --wait ---------------------------------------------------------------------------


def test_a_generation_not_yet_observed_has_no_outcome() -> None:
    line, outcome = summarize(rayservice(), generation=2)

    assert outcome is None
    assert "waiting for the controller" in line


def test_a_generation_in_progress_shows_the_controllers_progress_but_no_outcome() -> None:
    # The controller works on generation 2 (its Ready condition says so) while the old
    # apps still run: their states are not generation 2's, so there is no outcome yet.
    in_progress = status(ready=False, app="DEPLOY_FAILED")
    in_progress.conditions[0].observedGeneration = 2

    line, outcome = summarize(rayservice(in_progress), generation=2)

    assert outcome is None
    assert line == "waiting for the head"


def test_a_failed_application_is_a_failure_with_its_message() -> None:
    obj = rayservice(status(ready=False, app="DEPLOY_FAILED", message="ImportError: fruit"))

    _, outcome = summarize(obj, generation=1)

    assert outcome is not None and outcome.ok is False
    assert "fruit_app DEPLOY_FAILED: ImportError: fruit" in outcome.message


def failing(serve_status: RayServiceStatus, reason: str, message: str) -> RayServiceStatus:
    """``serve_status`` with a ReconcileFailed condition."""
    condition = Condition.model_validate(
        serve_status.conditions[0].model_dump()
        | {"type": "ReconcileFailed", "status": "True", "reason": reason, "message": message}
    )
    return serve_status.model_copy(update={"conditions": [*serve_status.conditions, condition]})


@pytest.mark.parametrize("ready", [False, True], ids=["no-endpoints", "old-config-serving"])
def test_a_rejected_config_is_a_failure(ready: bool) -> None:
    rejected = failing(status(ready=ready), "ServeConfigRejected", "Ray says: bad config")

    _, outcome = summarize(rayservice(rejected), generation=1)

    assert outcome is not None and not outcome.ok
    assert outcome.message == "Ray says: bad config"


def test_an_initializing_timeout_ends_the_wait_as_a_failure() -> None:
    timed_out = status(ready=False)
    timed_out.conditions[0].reason = "InitializingTimeout"
    timed_out.conditions[0].message = "not ready after initializing for 1m30s"

    _, outcome = summarize(rayservice(timed_out), generation=1)

    assert outcome is not None and not outcome.ok
    assert outcome.message == "initializing timed out: not ready after initializing for 1m30s"


def test_the_outcome_comes_from_the_condition_not_from_message_text() -> None:
    worded = status(ready=False)
    worded.conditions[0].message = "Ray rejected the Serve config: bad"

    _, outcome = summarize(rayservice(worded), generation=1)

    assert outcome is None  # still waiting: no condition says the apply failed


def test_a_temporary_failure_is_shown_while_waiting() -> None:
    retrying = failing(status(ready=False), "TemporaryError", "dashboard not answering")

    line, outcome = summarize(rayservice(retrying), generation=1)

    assert outcome is None
    assert "retrying: dashboard not answering" in line


def test_ready_with_every_app_running_is_a_success() -> None:
    _, outcome = summarize(rayservice(), generation=1)

    assert outcome is not None and outcome.ok is True
    assert outcome.message == "Ready: 2 serve endpoint(s); fruit_app RUNNING"


def test_ready_with_an_app_still_deploying_has_no_outcome_yet() -> None:
    line, outcome = summarize(rayservice(status(ready=True, app="DEPLOYING")), generation=1)

    assert outcome is None
    assert "fruit_app DEPLOYING" in line


def test_a_rollback_in_progress_has_no_outcome_yet() -> None:
    # Generation 3 went back to the active cluster's spec: its apps run and it is Ready, but
    # traffic still steps back from the pending cluster, so apply --wait keeps following it.
    rolling_back = status(ready=True)
    rolling_back.observedGeneration = 3
    rolling_back.conditions[0].observedGeneration = 3
    message = "rayClusterConfig is back to the active cluster's spec: traffic steps back"
    rolling_back.conditions.append(
        Condition(
            type="RollbackInProgress",
            status="True",
            reason="StepTrafficBack",
            message=message,
            lastTransitionTime="2024-05-01T10:00:00Z",
            observedGeneration=3,
        )
    )

    line, outcome = summarize(rayservice(rolling_back), generation=3)

    assert outcome is None
    assert line.startswith("rollback: ")
    assert line == f"rollback: {message}"


# -- the command line -----------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@pytest.mark.parametrize(
    "argv",
    [["get", "rayservice"], ["describe", "rayservice", "demo"], ["delete", "rayservice", "demo"]],
    ids=["get", "describe", "delete"],
)
def test_an_unreachable_controller_exits_1_and_says_how_to_start_one(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    port = free_port()
    monkeypatch.setenv("RAYSERVICE_API_PORT", str(port))

    code = main(argv)

    assert code == 1
    err = capsys.readouterr().err
    assert f"no rayservice controller answers at http://127.0.0.1:{port}" in err
    assert "rayservice start" in err and "rayservice controller" in err


def test_an_unknown_resource_type_lists_the_valid_ones() -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["get", "deployments"])

    assert 'unknown resource type "deployments"' in str(exit_info.value)
    assert "rayservice" in str(exit_info.value)


class RecordingClient:
    """Stands in for RayServiceClient: remembers what apply sent and answers like the API."""

    applied: ClassVar[list[tuple[str, str]]] = []

    def __init__(self, base_url: str, *, token: str | None = None) -> None:
        self.base_url = base_url

    def apply(
        self, manifest: dict[str, Any], source: str, base_dir: str
    ) -> tuple[dict[str, Any], list[str]]:
        self.applied.append((source, base_dir))
        meta = manifest["metadata"]
        obj = {"metadata": {"name": meta["name"], "namespace": "default", "generation": 1}}
        return obj, []


MINIMAL = "apiVersion: ray.io/v1\nkind: RayService\nmetadata:\n  name: demo\nspec: {}\n"


def test_apply_of_a_file_sends_the_files_folder(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(cli_main, "RayServiceClient", RecordingClient)
    monkeypatch.setattr(RecordingClient, "applied", [])
    manifest_file = tmp_path / "svc.yaml"
    manifest_file.write_text(MINIMAL)

    assert main(["apply", "-f", str(manifest_file)]) == 0

    assert RecordingClient.applied == [(str(manifest_file), str(tmp_path.resolve()))]
    assert "rayservice.ray.io/demo applied (generation 1)" in capsys.readouterr().out


def test_apply_prints_the_controllers_warnings_on_stderr(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    class WarnedClient(RecordingClient):
        def apply(
            self, manifest: dict[str, Any], source: str, base_dir: str
        ) -> tuple[dict[str, Any], list[str]]:
            obj, _ = super().apply(manifest, source, base_dir)
            return obj, ["svc.yaml: spec.rayClusterConfig changed, but it is held"]

    monkeypatch.setattr(cli_main, "RayServiceClient", WarnedClient)
    monkeypatch.setattr(RecordingClient, "applied", [])
    manifest_file = tmp_path / "svc.yaml"
    manifest_file.write_text(MINIMAL)

    assert main(["apply", "-f", str(manifest_file)]) == 0

    captured = capsys.readouterr()
    assert captured.err == "Warning: svc.yaml: spec.rayClusterConfig changed, but it is held\n"
    assert "applied (generation 1)" in captured.out


def test_apply_from_stdin_sends_the_current_folder(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(cli_main, "RayServiceClient", RecordingClient)
    monkeypatch.setattr(RecordingClient, "applied", [])
    monkeypatch.setattr("sys.stdin", io.StringIO(MINIMAL))
    monkeypatch.chdir(tmp_path)

    assert main(["apply", "-f", "-"]) == 0

    [(_, base_dir)] = RecordingClient.applied
    assert Path(base_dir).is_absolute() and Path(base_dir) == tmp_path.resolve()


# -- diff and apply --dry-run -------------------------------------------------------------

SAMPLES = Path(__file__).resolve().parents[2] / "samples"


class InProcessClient(RayServiceClient):
    """The real RayServiceClient, speaking to an API app in this process instead of a controller."""

    app: ClassVar[FastAPI]

    def __init__(self, base_url: str, *, token: str | None = None) -> None:
        super().__init__(base_url, token=token)
        self._http = TestClient(self.app, client=LOCAL_CALLER)


@dataclass
class Workspace:
    """A folder with the sample's apps, and the store behind the in-process API."""

    folder: Path
    store: SqliteStore
    wakes: list[None]

    def manifest(self, *replacements: tuple[str, str]) -> Path:
        """The sample manifest with text replaced, written next to the apps folder."""
        text = (SAMPLES / "ray-service.sample.yaml").read_text()
        for old, new in replacements:
            assert old in text, old
            text = text.replace(old, new, 1)
        path = self.folder / "svc.yaml"
        path.write_text(text)
        return path


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Workspace]:
    store = SqliteStore(tmp_path / "store.db")
    wakes: list[None] = []
    app = create_app(store, FakeProvider(), tmp_path / "packages", lambda: wakes.append(None))
    monkeypatch.setattr(InProcessClient, "app", app, raising=False)
    monkeypatch.setattr(cli_main, "RayServiceClient", InProcessClient)
    shutil.copytree(SAMPLES / "apps", tmp_path / "apps")
    yield Workspace(tmp_path, store, wakes)


PRICE_3_TO_4 = ("price: 3", "price: 4")
HEAD_CPUS_1_TO_2 = ('num-cpus: "1"', 'num-cpus: "2"')
REPLICAS_1_TO_2 = ("replicas: 1\n        minReplicas", "replicas: 2\n        minReplicas")
NEGATIVE_REPLICAS = ("replicas: 1\n        minReplicas", "replicas: -1\n        minReplicas")


def applied(workspace: Workspace, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["apply", "-f", str(workspace.manifest())]) == 0
    capsys.readouterr()


def test_diff_of_a_serve_change_names_the_path_inside_the_config_and_exits_1(
    workspace: Workspace, capsys: pytest.CaptureFixture[str]
) -> None:
    applied(workspace, capsys)

    code = main(["diff", "-f", str(workspace.manifest(PRICE_3_TO_4))])

    assert code == 1
    assert capsys.readouterr().out == (
        "rayservice-sample: in-place Serve update\n"
        "  The running cluster is kept and the new Serve config is deployed to it in place.\n"
        "  serve:\n"
        "    spec.serveConfigV2: applications[0].deployments[0].user_config.price: 3 -> 4\n"
    )


def test_diff_of_a_mixed_change_lists_every_field_by_group(
    workspace: Workspace, capsys: pytest.CaptureFixture[str]
) -> None:
    applied(workspace, capsys)
    changed = workspace.manifest(PRICE_3_TO_4, HEAD_CPUS_1_TO_2, REPLICAS_1_TO_2)

    code = main(["diff", "-f", str(changed)])

    assert code == 1
    assert capsys.readouterr().out.splitlines() == [
        "rayservice-sample: new cluster",
        "  A new cluster is created with the new spec; traffic switches to it once it serves,"
        " and the old cluster is deleted after spec.rayClusterDeletionDelaySeconds (60 s).",
        "  cluster:",
        '    spec.rayClusterConfig.headGroupSpec.rayStartParams.num-cpus: "1" -> "2"',
        "  workers:",
        "    spec.rayClusterConfig.workerGroupSpecs[0].replicas: 1 -> 2",
        "  serve:",
        "    spec.serveConfigV2: applications[0].deployments[0].user_config.price: 3 -> 4",
    ]


def test_diff_of_an_unchanged_file_exits_0(
    workspace: Workspace, capsys: pytest.CaptureFixture[str]
) -> None:
    applied(workspace, capsys)

    code = main(["diff", "-f", str(workspace.manifest())])

    assert code == 0
    assert capsys.readouterr().out == (
        "rayservice-sample: no-op\n  Nothing that takes effect changes.\n"
    )


def test_diff_of_a_service_not_stored_yet_is_a_create_and_stores_nothing(
    workspace: Workspace, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["diff", "-f", str(workspace.manifest())])

    assert code == 1
    assert capsys.readouterr().out.startswith("rayservice-sample: create\n")
    assert workspace.store.list_resources(KIND) == []
    assert workspace.wakes == []


def test_diff_reads_stdin_with_working_dirs_relative_to_the_current_folder(
    workspace: Workspace, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    applied(workspace, capsys)
    monkeypatch.setattr("sys.stdin", io.StringIO(workspace.manifest(PRICE_3_TO_4).read_text()))
    monkeypatch.chdir(workspace.folder)

    code = main(["diff", "-f", "-"])

    assert code == 1
    assert "user_config.price: 3 -> 4" in capsys.readouterr().out


def test_apply_dry_run_prints_the_report_and_changes_nothing(
    workspace: Workspace, capsys: pytest.CaptureFixture[str]
) -> None:
    applied(workspace, capsys)
    before = workspace.store.get(KIND, "default", "rayservice-sample")

    code = main(["apply", "-f", str(workspace.manifest(REPLICAS_1_TO_2)), "--dry-run"])

    assert code == 0
    assert capsys.readouterr().out.splitlines() == [
        "rayservice-sample: in-place worker-count change",
        "  The running cluster is kept; its worker groups change in place.",
        "  workers:",
        "    spec.rayClusterConfig.workerGroupSpecs[0].replicas: 1 -> 2",
        "(dry run: nothing was changed)",
    ]
    assert workspace.store.get(KIND, "default", "rayservice-sample") == before
    assert len(workspace.wakes) == 1


@pytest.mark.parametrize("argv", [["diff"], ["apply", "--dry-run"]], ids=["diff", "dry-run"])
def test_invalid_input_exits_2_with_the_located_problem(
    workspace: Workspace, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    code = main([*argv, "-f", str(workspace.manifest(NEGATIVE_REPLICAS))])

    assert code == 2
    captured = capsys.readouterr()
    assert "error: the manifest was refused; nothing was changed:" in captured.err
    assert "spec.rayClusterConfig.workerGroupSpecs[0].replicas" in captured.err
    assert workspace.store.list_resources(KIND) == []


@pytest.mark.parametrize(("argv", "code"), [(["diff"], 2), (["apply", "--dry-run"], 1)])
def test_a_dry_run_without_a_controller_says_how_to_start_one(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    argv: list[str],
    code: int,
) -> None:
    monkeypatch.setenv("RAYSERVICE_API_PORT", str(free_port()))
    manifest_file = tmp_path / "svc.yaml"
    manifest_file.write_text(MINIMAL)

    assert main([*argv, "-f", str(manifest_file)]) == code
    assert "Start one with `rayservice start`" in capsys.readouterr().err


def test_diff_of_an_unreadable_file_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["diff", "-f", str(tmp_path / "missing.yaml")])

    assert code == 2
    assert "error: cannot read" in capsys.readouterr().err


def test_apply_dry_run_and_wait_do_not_go_together() -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["apply", "-f", "svc.yaml", "--dry-run", "--wait"])

    assert exit_info.value.code == 2


def test_output_cut_short_by_its_reader_is_no_error(tmp_path: Path) -> None:
    script = (
        "import sys\n"
        "from rayservice.cli import main as cli\n"
        "def many_lines(args):\n"
        "    for n in range(100000):\n"
        "        print(f'line {n}')\n"
        "    return 0\n"
        "cli.cmd_get = many_lines\n"
        "sys.exit(cli.main(['get', 'rayservice']))\n"
    )
    reader = subprocess.Popen(["head", "-n", "1"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert reader.stdin is not None
    writer = subprocess.run(
        [sys.executable, "-c", script], stdout=reader.stdin, stderr=subprocess.PIPE, timeout=60
    )
    reader.stdin.close()
    assert reader.stdout is not None
    first = reader.stdout.read()
    reader.wait(timeout=10)

    assert first == b"line 0\n"
    assert writer.returncode == 0
    assert b"Traceback" not in writer.stderr


REDIS_NEXT_TO_IT = """
---
apiVersion: v1
kind: Secret
metadata:
  name: redis-password
stringData:
  password: hunter2
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: redis
spec: {}
"""


def test_apply_skips_and_names_the_objects_not_kept_here_and_applies_the_rest(
    workspace: Workspace, capsys: pytest.CaptureFixture[str]
) -> None:
    path = workspace.manifest()
    path.write_text(path.read_text() + REDIS_NEXT_TO_IT)

    code = main(["apply", "-f", str(path)])

    assert code == 0
    assert capsys.readouterr().out.splitlines() == [
        "deployment.apps/redis skipped: Deployment objects (apps/v1) are not applied on this"
        " machine; only ray.io objects, Secrets and ConfigMaps are",
        "secret/redis-password applied",  # first: the RayService may take values from it
        "rayservice.ray.io/rayservice-sample applied (generation 1)",
    ]
    assert [r.name for r in workspace.store.list_resources(KIND)] == ["rayservice-sample"]
    [secret] = workspace.store.list_resources("Secret")
    assert secret.manifest["data"] == {"password": "aHVudGVyMg=="}  # stringData, as base64


def test_a_file_with_nothing_to_apply_is_refused(
    workspace: Workspace, capsys: pytest.CaptureFixture[str]
) -> None:
    path = workspace.folder / "redis.yaml"
    path.write_text(REDIS_NEXT_TO_IT.split("---")[2])

    code = main(["apply", "-f", str(path)])

    assert code != 0
    captured = capsys.readouterr()
    assert "deployment.apps/redis skipped" in captured.out
    assert f"nothing to apply in {path}: no ray.io object, Secret or ConfigMap" in captured.err
    assert workspace.store.list_resources(KIND) == []


def test_nothing_of_a_file_is_applied_when_one_of_its_objects_is_refused(
    workspace: Workspace, capsys: pytest.CaptureFixture[str]
) -> None:
    good = workspace.manifest().read_text()
    bad = good.replace("name: rayservice-sample", "name: second", 1).replace(
        "replicas: 1\n        minReplicas", "replicas: -1\n        minReplicas", 1
    )
    path = workspace.folder / "two.yaml"
    path.write_text(good + "\n---\n" + bad)

    code = main(["apply", "-f", str(path)])

    assert code != 0
    assert "replicas" in capsys.readouterr().err
    assert workspace.store.list_resources(KIND) == []
    assert workspace.wakes == []


def test_a_problem_names_its_document_by_its_place_in_the_file(
    workspace: Workspace, capsys: pytest.CaptureFixture[str]
) -> None:
    path = workspace.folder / "three.yaml"
    nameless = "apiVersion: ray.io/v1\nkind: RayService\nmetadata: {}\nspec: {}\n"
    path.write_text(REDIS_NEXT_TO_IT.split("---")[2] + "---\n" + nameless)

    code = main(["apply", "-f", str(path)])

    assert code != 0
    assert f"{path} (document 2): metadata.name: is required" in capsys.readouterr().err
