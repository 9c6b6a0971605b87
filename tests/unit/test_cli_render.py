"""``rayservice render``: the YAML alone on stdout, notes on stderr, every problem of the file
at once with a non-zero exit, and nothing asked of a controller (none runs here)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from rayservice.cli.main import main
from rayservice.planner.cluster import cluster_name
from tests.unit.test_kubernetes_objects import document, loaded

SECRET = {
    "apiVersion": "v1",
    "kind": "Secret",
    "metadata": {"name": "redis-password"},
    "stringData": {"password": "hunter2"},
}
DEPLOYMENT = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "redis"}}


def write(tmp_path: Path, *documents: Any) -> str:
    path = tmp_path / "manifest.yaml"
    path.write_text(yaml.safe_dump_all(documents))
    return str(path)


def test_render_prints_the_objects_as_a_yaml_stream_and_notes_on_stderr(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, document(), SECRET, DEPLOYMENT)

    assert main(["render", "-f", path]) == 0

    out, err = capsys.readouterr()
    objects = list(yaml.safe_load_all(out))
    assert [o["kind"] for o in objects] == ["Secret", "RayCluster", "Service", "Service"]
    assert objects[0]["data"] == {"password": "aHVudGVyMg=="}  # as the API server stores it
    assert "deployment.apps/redis skipped" in err
    assert "an example" in err  # the cluster's suffix, for a service never applied


def test_an_applied_services_uid_and_generation_give_its_clusters_real_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = document()
    doc["metadata"].update(uid="5f1c", generation=3)

    assert main(["render", "-f", write(tmp_path, doc)]) == 0

    out, err = capsys.readouterr()
    cluster = next(yaml.safe_load_all(out))
    assert cluster["metadata"]["name"] == cluster_name(loaded(document()), "5f1c", 3)
    assert err == ""


def test_mid_upgrade_the_pending_cluster_runs_the_spec_and_the_services_keep_the_active(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # scenario: `get -o yaml` of a service in an incremental upgrade, 30% on the new cluster
    doc = document(
        upgradeStrategy={
            "type": "NewClusterWithIncrementalUpgrade",
            "clusterUpgradeOptions": {"gatewayClassName": "istio", "stepSizePercent": 10,
                                      "intervalSeconds": 5, "maxSurgePercent": 100},
        }
    )  # fmt: skip
    doc["metadata"].update(uid="5f1c", generation=7)
    doc["status"] = {
        "activeServiceStatus": {"rayClusterName": "svc-raycluster-old11"},
        "pendingServiceStatus": {
            "rayClusterName": "svc-raycluster-new22",
            "trafficRoutedPercent": 30,
        },
    }

    assert main(["render", "-f", write(tmp_path, doc)]) == 0

    objects = {
        (o["kind"], o["metadata"]["name"]): o for o in yaml.safe_load_all(capsys.readouterr().out)
    }
    assert ("RayCluster", "svc-raycluster-new22") in objects
    serve = objects["Service", "svc-serve-svc"]
    assert serve["spec"]["selector"]["ray.io/cluster"] == "svc-raycluster-old11"
    route = objects["HTTPRoute", "svc-httproute"]
    backends = route["spec"]["rules"][0]["backendRefs"]
    assert [(b["name"], b["weight"]) for b in backends] == [
        ("svc-raycluster-old11-serve-svc", 70),
        ("svc-raycluster-new22-serve-svc", 30),
    ]


def test_steady_the_active_cluster_runs_the_spec(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = document()
    doc["metadata"].update(uid="5f1c", generation=7)  # updated in place since its cluster came
    doc["status"] = {"activeServiceStatus": {"rayClusterName": "svc-raycluster-old11"}}

    assert main(["render", "-f", write(tmp_path, doc)]) == 0

    cluster, _head, serve = yaml.safe_load_all(capsys.readouterr().out)
    assert cluster["metadata"]["name"] == "svc-raycluster-old11"
    assert serve["spec"]["selector"]["ray.io/cluster"] == "svc-raycluster-old11"


def test_a_status_naming_what_no_raycluster_can_be_called_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = document()
    doc["status"] = {"activeServiceStatus": {"rayClusterName": "Not A Name"}}

    assert main(["render", "-f", write(tmp_path, doc)]) == 2
    assert "status.activeServiceStatus.rayClusterName" in capsys.readouterr().err


def test_every_problem_is_refused_at_once_with_nothing_printed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = document(upgradeStrategy={"type": "NewClusterWithIncrementalUpgrade"})
    typo = copy.deepcopy(document())
    typo["metadata"]["name"] = "other"
    typo["spec"]["rayClusterConfig"]["workerGroupSpecs"][0]["replicaz"] = 1

    assert main(["render", "-f", write(tmp_path, bad, typo)]) == 2

    out, err = capsys.readouterr()
    assert out == ""
    assert "(document 1): spec.upgradeStrategy.clusterUpgradeOptions.gatewayClassName" in err
    assert "(document 2): spec.rayClusterConfig.workerGroupSpecs[0].replicaz" in err


def test_autoscaler_v2_which_only_the_local_backend_refuses_renders(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = document()
    cluster = doc["spec"]["rayClusterConfig"]
    cluster.update(enableInTreeAutoscaling=True, autoscalerOptions={"version": "v2"})

    assert main(["render", "-f", write(tmp_path, doc)]) == 0
    assert next(yaml.safe_load_all(capsys.readouterr().out))["spec"]["enableInTreeAutoscaling"]


def test_two_objects_that_would_share_a_name_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first = document()
    second = document(serveService={"metadata": {"name": "svc-head-svc"}})
    second["metadata"]["name"] = "second"

    assert main(["render", "-f", write(tmp_path, first, second)]) == 2
    assert "Service default/svc-head-svc would be made twice" in capsys.readouterr().err


def test_the_local_backend_has_nothing_to_render(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["render", "-f", write(tmp_path, document()), "--backend", "local"]) == 1
    assert "creates no Kubernetes objects" in capsys.readouterr().err


def test_a_file_of_only_foreign_objects_has_nothing_to_render(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["render", "-f", write(tmp_path, DEPLOYMENT)]) == 1
    assert "nothing to render" in capsys.readouterr().err
