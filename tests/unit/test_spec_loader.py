"""Loading manifests: every kind of bad input is located at its exact field path."""

from __future__ import annotations

import textwrap
from typing import Any

import pytest
import yaml

from rayservice.spec.errors import InvalidSpec, SpecProblem
from rayservice.spec.loader import load_manifest, load_manifests, ray_start_options
from rayservice.spec.manifest import RayCluster, RayService

HEAD = "spec.rayClusterConfig.headGroupSpec"
WORKER = "spec.rayClusterConfig.workerGroupSpecs[0]"
SERVE_CONFIG = "applications:\n  - {name: app, route_prefix: /, import_path: app:graph}\n"


def service(name: str = "svc", **spec_changes: Any) -> dict[str, Any]:
    """A small valid RayService document to break one field at a time."""
    spec: dict[str, Any] = {
        "serveConfigV2": SERVE_CONFIG,
        "rayClusterConfig": {
            "headGroupSpec": {
                "rayStartParams": {"num-cpus": "1"},
                "template": {"spec": {"containers": [{"name": "ray-head"}]}},
            },
            "workerGroupSpecs": [
                {"groupName": "workers", "replicas": 1, "minReplicas": 0, "maxReplicas": 2}
            ],
        },
    }
    spec.update(spec_changes)
    return {
        "apiVersion": "ray.io/v1",
        "kind": "RayService",
        "metadata": {"name": name},
        "spec": spec,
    }


def cluster(name: str = "cluster") -> dict[str, Any]:
    return {
        "apiVersion": "ray.io/v1",
        "kind": "RayCluster",
        "metadata": {"name": name},
        "spec": {"headGroupSpec": {"rayStartParams": {}, "template": {}}},
    }


def problems_of(*documents: Any) -> list[SpecProblem]:
    text = yaml.safe_dump_all(documents)
    with pytest.raises(InvalidSpec) as caught:
        load_manifests(text, "manifest.yaml")
    return caught.value.problems


def the_problem(document: Any) -> SpecProblem:
    [problem] = problems_of(document)
    return problem


def head_of(document: dict[str, Any]) -> dict[str, Any]:
    head: dict[str, Any] = document["spec"]["rayClusterConfig"]["headGroupSpec"]
    return head


def worker_of(document: dict[str, Any]) -> dict[str, Any]:
    worker: dict[str, Any] = document["spec"]["rayClusterConfig"]["workerGroupSpecs"][0]
    return worker


def test_a_valid_service_loads() -> None:
    [manifest] = load_manifests(yaml.safe_dump(service()), "manifest.yaml")

    assert isinstance(manifest, RayService)
    assert manifest.key == "default/svc"


def test_documents_load_in_order_and_empty_ones_are_skipped() -> None:
    text = "---\n" + yaml.safe_dump(service()) + "---\n---\n" + yaml.safe_dump(cluster())

    manifests = load_manifests(text, "manifest.yaml")

    assert [type(manifest) for manifest in manifests] == [RayService, RayCluster]


def test_an_empty_text_holds_no_manifests() -> None:
    assert load_manifests("# nothing here\n", "manifest.yaml") == []


def test_load_manifest_accepts_an_already_decoded_document() -> None:
    assert isinstance(load_manifest(cluster(), "<request body>"), RayCluster)


def test_malformed_yaml_gives_line_and_column() -> None:
    text = "apiVersion: ray.io/v1\nkind: RayService\nmetadata: {name: [svc\n"

    with pytest.raises(InvalidSpec) as caught:
        load_manifests(text, "manifest.yaml")

    [problem] = caught.value.problems
    assert (problem.source, problem.field) == ("manifest.yaml", "<yaml>")
    assert "line 4, column 1" in problem.message


def test_a_document_that_is_not_a_mapping_is_rejected() -> None:
    problem = the_problem(["apiVersion", "ray.io/v1"])

    assert problem.field == "<document>"
    assert "list" in problem.message


def test_a_missing_api_version_is_reported_with_the_valid_one() -> None:
    document = service()
    del document["apiVersion"]

    problem = the_problem(document)

    assert (problem.field, problem.message, problem.valid) == (
        "apiVersion",
        "is required",
        "ray.io/v1",
    )


def test_an_unknown_api_version_is_reported_once() -> None:
    document = service()
    document["apiVersion"] = "ray.io/v1alpha1"

    problem = the_problem(document)

    assert problem.field == "apiVersion"
    assert "ray.io/v1alpha1" in problem.message


@pytest.mark.parametrize("kind", [None, "ConfigMap"])
def test_a_missing_or_unknown_kind_lists_the_supported_kinds(kind: str | None) -> None:
    document = service()
    document["kind"] = kind

    problem = the_problem(document)

    assert (problem.field, problem.valid) == ("kind", "RayService, RayCluster")


@pytest.mark.parametrize(
    ("field", "path"),
    [
        ("serveConfigV2", "spec.serveConfigV2"),
        ("rayClusterConfig", "spec.rayClusterConfig"),
    ],
)
def test_missing_service_sections_are_required(field: str, path: str) -> None:
    document = service()
    del document["spec"][field]

    problem = the_problem(document)

    assert (problem.field, problem.message) == (path, "is required")
    assert problem.valid


def test_a_missing_head_group_is_required() -> None:
    document = service()
    del document["spec"]["rayClusterConfig"]["headGroupSpec"]

    assert the_problem(document).field == HEAD


def test_a_cluster_without_head_group_is_located_under_spec() -> None:
    document = cluster()
    del document["spec"]["headGroupSpec"]

    assert the_problem(document).field == "spec.headGroupSpec"


def test_a_serve_config_that_is_not_yaml_is_located_at_the_field() -> None:
    problem = the_problem(service(serveConfigV2="applications: [\n"))

    assert problem.field == "spec.serveConfigV2"
    assert "not valid YAML" in problem.message


def test_serve_schema_problems_point_inside_the_serve_config() -> None:
    config = yaml.safe_dump(
        {
            "applications": [
                {"import_path": "m:a", "deployments": [{"name": "A", "num_replicas": -2}]}
            ]
        }
    )

    problem = the_problem(service(serveConfigV2=config))

    assert problem.field == "spec.serveConfigV2.applications[0].deployments[0].num_replicas"


def test_a_missing_name_is_required() -> None:
    document = service()
    del document["metadata"]["name"]

    problem = the_problem(document)

    assert (problem.field, problem.message) == ("metadata.name", "is required")


@pytest.mark.parametrize("name", ["Svc", "my_svc", "1svc", "svc-", "-svc", ""])
def test_names_must_be_dns_1035_labels(name: str) -> None:
    problem = the_problem(service(name=name))

    assert problem.field == "metadata.name"
    assert "DNS-1035" in problem.message
    assert "lowercase" in problem.valid


def test_a_service_name_may_have_47_characters() -> None:
    assert load_manifest(service(name="s" * 47), "manifest.yaml").metadata.name == "s" * 47


def test_a_service_name_of_48_characters_is_too_long() -> None:
    problem = the_problem(service(name="s" * 48))

    assert problem.field == "metadata.name"
    assert "48 characters" in problem.message


def test_a_cluster_name_may_have_53_characters_but_not_54_as_on_kuberay() -> None:
    assert load_manifest(cluster(name="c" * 53), "manifest.yaml").metadata.name == "c" * 53
    assert the_problem(cluster(name="c" * 54)).field == "metadata.name"


def test_a_namespace_must_be_a_dns_1123_label() -> None:
    document = service()
    document["metadata"]["namespace"] = "My Team"

    assert the_problem(document).field == "metadata.namespace"


@pytest.mark.parametrize("field", ["replicas", "minReplicas", "maxReplicas"])
def test_negative_replica_counts_are_located(field: str) -> None:
    document = service()
    worker_of(document)[field] = -1

    problem = the_problem(document)

    assert problem.field == f"{WORKER}.{field}"
    assert problem.valid == "an integer >= 0"


def test_min_replicas_above_max_replicas_is_located_at_min_replicas() -> None:
    document = service()
    worker_of(document).update(replicas=None, minReplicas=3, maxReplicas=2)

    problem = the_problem(document)

    assert problem.field == f"{WORKER}.minReplicas"
    assert "3" in problem.message


@pytest.mark.parametrize("replicas", [0, 3])
def test_replicas_outside_the_bounds_are_located(replicas: int) -> None:
    document = service()
    worker_of(document).update(replicas=replicas, minReplicas=1, maxReplicas=2)

    problem = the_problem(document)

    assert problem.field == f"{WORKER}.replicas"
    assert problem.valid == "an integer from 1 to 2"


def test_a_repeated_group_name_is_located_at_the_second_group() -> None:
    document = service()
    groups = document["spec"]["rayClusterConfig"]["workerGroupSpecs"]
    groups.append(dict(groups[0]))

    problem = the_problem(document)

    assert problem.field == "spec.rayClusterConfig.workerGroupSpecs[1].groupName"
    assert "workerGroupSpecs[0]" in problem.message


def test_the_head_group_name_is_reserved() -> None:
    document = service()
    worker_of(document)["groupName"] = "headgroup"

    assert the_problem(document).field == f"{WORKER}.groupName"


def test_an_unknown_ray_start_param_suggests_close_names() -> None:
    document = service()
    head_of(document)["rayStartParams"] = {"num-cpu": "1"}

    problem = the_problem(document)

    assert problem.field == f"{HEAD}.rayStartParams.num-cpu"
    assert "num-cpus" in problem.valid


def test_a_ray_start_param_value_that_ray_start_refuses_is_located() -> None:
    document = service()
    worker_of(document)["rayStartParams"] = {"num-gpus": "two"}

    problem = the_problem(document)

    assert problem.field == f"{WORKER}.rayStartParams.num-gpus"
    assert problem.valid == "an integer"


def test_kuberay_style_ray_start_params_are_accepted() -> None:
    document = service()
    head_of(document)["rayStartParams"] = {
        "dashboard-host": "0.0.0.0",
        "num-cpus": 0,
        "block": True,
        "redis-password": "$REDIS_PASSWORD",
        "resources": '"{\\"TPU\\": 4}"',
    }

    manifest = load_manifest(document, "manifest.yaml")

    assert isinstance(manifest, RayService)
    assert manifest.spec.rayClusterConfig.headGroupSpec.rayStartParams["num-cpus"] == "0"


def test_a_resources_param_that_is_not_json_is_located() -> None:
    document = service()
    head_of(document)["rayStartParams"] = {"resources": "{TPU: 4}"}

    problem = the_problem(document)

    assert problem.field == f"{HEAD}.rayStartParams.resources"
    assert "JSON" in problem.valid


def test_a_bad_cpu_limit_is_located_exactly() -> None:
    document = service()
    head_of(document)["template"]["spec"]["containers"][0]["resources"] = {"limits": {"cpu": "two"}}

    problem = the_problem(document)

    assert problem.field == f"{HEAD}.template.spec.containers[0].resources.limits.cpu"
    assert "quantity" in problem.valid


def test_a_bad_memory_request_of_a_second_container_is_located() -> None:
    document = service()
    head_of(document)["template"]["spec"]["containers"].append(
        {"name": "sidecar", "resources": {"requests": {"memory": "lots"}}}
    )

    problem = the_problem(document)

    assert problem.field == f"{HEAD}.template.spec.containers[1].resources.requests.memory"


def test_model_type_errors_are_located_with_a_hint() -> None:
    document = service()
    worker_of(document)["replicas"] = "three"

    problem = the_problem(document)

    assert problem.field == f"{WORKER}.replicas"
    assert problem.valid == "an integer"


def test_an_unknown_upgrade_type_lists_the_valid_types() -> None:
    problem = the_problem(service(upgradeStrategy={"type": "Rolling"}))

    assert problem.field == "spec.upgradeStrategy.type"
    assert "NewClusterWithIncrementalUpgrade" in problem.valid


def test_negative_deletion_delay_is_rejected() -> None:
    problem = the_problem(service(rayClusterDeletionDelaySeconds=-5))

    assert problem.field == "spec.rayClusterDeletionDelaySeconds"


def test_a_surge_above_100_percent_is_rejected() -> None:
    problem = the_problem(
        service(upgradeStrategy={"clusterUpgradeOptions": {"maxSurgePercent": 150}})
    )

    assert problem.field == "spec.upgradeStrategy.clusterUpgradeOptions.maxSurgePercent"
    assert problem.valid == "an integer from 1 to 100"


def test_all_problems_of_a_document_are_collected() -> None:
    document = service(name="Bad_Name")
    head_of(document)["rayStartParams"] = {"num-cpu": "1"}
    worker_of(document).update(replicas=None, minReplicas=3, maxReplicas=1)

    fields = {problem.field for problem in problems_of(document)}

    assert fields == {"metadata.name", f"{HEAD}.rayStartParams.num-cpu", f"{WORKER}.minReplicas"}


def test_problems_of_several_documents_name_their_document() -> None:
    problems = problems_of(service(), service(name="Bad"))

    assert [problem.source for problem in problems] == ["manifest.yaml (document 2)"]


def test_an_object_defined_twice_is_rejected() -> None:
    problems = problems_of(service(), service())

    assert [(p.source, p.field) for p in problems] == [
        ("manifest.yaml (document 2)", "metadata.name")
    ]


def test_a_service_and_a_cluster_may_share_a_name() -> None:
    assert len(load_manifests(yaml.safe_dump_all([service("x"), cluster("x")]), "m.yaml")) == 2


def test_ray_start_options_come_from_ray_without_dashes() -> None:
    options = ray_start_options()

    assert {"num-cpus", "dashboard-host", "resources", "block"} <= set(options)
    assert not any(name.startswith("-") for name in options)


def test_the_rendered_error_carries_the_hint() -> None:
    text = textwrap.dedent(
        """
        apiVersion: ray.io/v1
        kind: Service
        """
    )
    with pytest.raises(InvalidSpec) as caught:
        load_manifests(text, "manifest.yaml")

    assert str(caught.value) == (
        "manifest.yaml: kind: 'Service' is not supported (valid: RayService, RayCluster)"
    )
