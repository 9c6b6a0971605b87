"""Cluster upgrades under load, through the CLI: not one request may fail.

Each test brings the sample up, starts a constant load on ``<name>-serve-svc``, changes the
cluster spec (a rayStartParam) and checks what the issue promises: zero failed requests, the
right answers from the right cluster (the fruit app answers 6 before and 8 after a config and
cluster change), and no cluster left behind. In the NewCluster upgrade the controller is killed
while the pending cluster starts: the next one adopts both clusters and finishes the upgrade.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from tests.e2e.conftest import Cli
from tests.e2e.steps import edit, get_json, post, service_port
from tests.helpers import eventually
from tests.load import ConstantLoad

pytestmark = pytest.mark.e2e
SAMPLE = "samples/ray-service.sample.yaml"
NAME = "rayservice-sample"
MANGO = ["MANGO", 2]
HEAD_CPUS = '        num-cpus: "1"'
MORE_HEAD_CPUS = '        num-cpus: "2"'


def with_settings(cli: Cli, *settings: str) -> Path:
    """The sample with extra ``spec`` settings (YAML lines at spec level)."""
    path = cli.workdir / SAMPLE
    lines = "".join(f"  {line}\n" for line in settings)
    edit(path, "spec:\n", f"spec:\n{lines}")
    return path


def clusters(cli: Cli) -> list[str]:
    return sorted(c["metadata"]["name"] for c in get_json(cli, "get", "raycluster")["items"])


def cluster_of(cli: Cli, which: str) -> str:
    """The active or pending cluster's name ("" when there is none)."""
    status = get_json(cli, "get", "rayservice", NAME)["status"]
    return str(status[f"{which}ServiceStatus"]["rayClusterName"])


def active_cluster(cli: Cli) -> str:
    return cluster_of(cli, "active")


def pending_cluster(cli: Cli) -> str:
    return cluster_of(cli, "pending")


def start_sample(cli: Cli, *settings: str) -> tuple[Path, int]:
    path = with_settings(cli, *settings)
    cli.run("start")
    cli.run("apply", "-f", SAMPLE, "--wait", "--timeout", "240")
    port = service_port(cli, f"{NAME}-serve-svc")
    assert post(port, "/fruit/", MANGO) == "6"
    return path, port


def assert_no_failures(load: ConstantLoad, at_least: int) -> None:
    failures = load.failures()
    assert not failures, f"{len(failures)} of {len(load.outcomes)} failed: {failures[:5]}"
    assert len(load.outcomes) >= at_least, len(load.outcomes)


def test_new_cluster_upgrade_survives_a_killed_controller_without_a_failed_request(
    cli: Cli,
) -> None:
    path, port = start_sample(cli, "rayClusterDeletionDelaySeconds: 5")
    old = active_cluster(cli)
    edit(path, "price: 3", "price: 4")
    edit(path, HEAD_CPUS, MORE_HEAD_CPUS)

    with ConstantLoad(f"http://127.0.0.1:{port}/fruit/", MANGO) as load:
        eventually(lambda: load.outcomes, timeout=10)
        cli.run("apply", "-f", SAMPLE)
        pending = eventually(lambda: pending_cluster(cli), timeout=60, interval=0.5)
        # the controller dies mid-upgrade; the next one adopts both clusters and finishes
        os.kill(int((cli.home / "controller.pid").read_text().split()[0]), signal.SIGKILL)
        cli.run("start")
        upgraded = cli.run("apply", "-f", SAMPLE, "--wait", "--timeout", "300")
        eventually(lambda: load.in_order()[-20:] == ["8"] * 20, timeout=30)

    assert_no_failures(load, at_least=200)
    answers = load.in_order()
    assert answers[0] == "6" and answers[-1] == "8", load.answers()
    assert "applied (generation 2)" in upgraded.stdout, upgraded.stdout
    new = active_cluster(cli)
    assert new == pending, "the upgrade finished on the cluster the first controller started"
    assert new != old
    assert pending_cluster(cli) == ""
    eventually(lambda: clusters(cli) == [new], timeout=60, message="old cluster deleted after 5 s")
    described = cli.run("describe", "rayservice", NAME).stdout
    assert "UpgradeStarted" in described and "UpgradeCompleted" in described


def test_going_back_to_the_active_spec_drops_the_pending_cluster(cli: Cli) -> None:
    path, port = start_sample(cli)
    active = active_cluster(cli)

    with ConstantLoad(f"http://127.0.0.1:{port}/fruit/", MANGO) as load:
        edit(path, HEAD_CPUS, MORE_HEAD_CPUS)
        cli.run("apply", "-f", SAMPLE)
        pending = eventually(lambda: pending_cluster(cli), timeout=30, message="a pending cluster")
        edit(path, MORE_HEAD_CPUS, HEAD_CPUS)
        cli.run("apply", "-f", SAMPLE, "--wait", "--timeout", "120")
        eventually(lambda: clusters(cli) == [active], timeout=60, message="pending dropped")
        # the rollback can be over in two seconds: keep the load on for a fair count
        eventually(lambda: len(load.outcomes) >= 100, timeout=30)

    assert_no_failures(load, at_least=100)
    assert set(load.answers()) == {"6"}
    assert active_cluster(cli) == active and pending_cluster(cli) == ""
    described = cli.run("describe", "rayservice", NAME).stdout
    assert "RollbackStarted" in described and f"deleting {pending}" in described


def test_a_pending_cluster_that_never_gets_ready_is_given_up(cli: Cli) -> None:
    path, port = start_sample(cli, "pendingClusterTimeoutSeconds: 30")
    active = active_cluster(cli)
    edit(path, "import_path: fruit:app", "import_path: fruit:no_such_app")
    edit(path, HEAD_CPUS, MORE_HEAD_CPUS)

    with ConstantLoad(f"http://127.0.0.1:{port}/fruit/", MANGO) as load:
        failed = cli.run("apply", "-f", SAMPLE, "--wait", "--timeout", "240", check=False)
        eventually(lambda: clusters(cli) == [active], timeout=60, message="pending deleted")

    assert failed.returncode == 1
    assert "pendingClusterTimeoutSeconds" in failed.stderr
    assert_no_failures(load, at_least=100)
    assert set(load.answers()) == {"6"}, "the active cluster kept serving"
    described = cli.run("describe", "rayservice", NAME).stdout
    assert "UpgradeTimedOut" in described and "PendingClusterTimedOut" in described


def test_incremental_upgrade_moves_traffic_in_steps(cli: Cli) -> None:
    path, port = start_sample(
        cli,
        "rayClusterDeletionDelaySeconds: 5",
        "upgradeStrategy:",
        "  type: NewClusterWithIncrementalUpgrade",
        "  clusterUpgradeOptions:",
        "    maxSurgePercent: 50",
        "    stepSizePercent: 50",
        "    intervalSeconds: 2",
    )
    old = active_cluster(cli)
    edit(path, "price: 3", "price: 4")
    edit(path, HEAD_CPUS, MORE_HEAD_CPUS)

    with ConstantLoad(f"http://127.0.0.1:{port}/fruit/", MANGO) as load:
        cli.run("apply", "-f", SAMPLE, "--wait", "--timeout", "300")
        eventually(lambda: load.in_order()[-20:] == ["8"] * 20, timeout=30)

    assert_no_failures(load, at_least=200)
    assert {"6", "8"} <= set(load.answers())
    described = cli.run("describe", "rayservice", NAME).stdout
    assert "traffic to the target 0% -> 50%" in described  # half the traffic on each, then
    assert "traffic to the target 50% -> 100%" in described
    assert "UpgradeCompleted" in described
    new = active_cluster(cli)
    assert new != old
    eventually(lambda: clusters(cli) == [new], timeout=60, message="old cluster deleted")


def test_upgrade_strategy_none_holds_the_change_and_says_so(cli: Cli) -> None:
    path, port = start_sample(cli, "upgradeStrategy:", "  type: None")
    active = active_cluster(cli)
    edit(path, HEAD_CPUS, MORE_HEAD_CPUS)
    edit(path, "price: 3", "price: 4")

    applied = cli.run("apply", "-f", SAMPLE, "--wait", "--timeout", "120")

    assert "upgradeStrategy.type is None" in applied.stdout
    assert applied.stderr.startswith("Warning: samples/ray-service.sample.yaml:")
    assert clusters(cli) == [active]
    assert post(port, "/fruit/", MANGO) == "8", "the Serve change still applies in place"
    assert "UpgradeStrategyNone" in cli.run("describe", "rayservice", NAME).stdout
