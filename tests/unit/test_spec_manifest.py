"""The manifest models: defaults, unknown fields, coercion of ray start parameters."""

from __future__ import annotations

from typing import Any

import pydantic
import pytest

from rayservice.spec.manifest import (
    INT32_MAX,
    RayCluster,
    RayService,
    WorkerGroupSpec,
    node_groups,
    replicas_of,
)


def service_document(**spec_changes: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "serveConfigV2": "applications: []",
        "rayClusterConfig": {
            "headGroupSpec": {"rayStartParams": {}, "template": {}},
            "workerGroupSpecs": [{"groupName": "workers"}],
        },
    }
    spec.update(spec_changes)
    return {
        "apiVersion": "ray.io/v1",
        "kind": "RayService",
        "metadata": {"name": "svc"},
        "spec": spec,
    }


def test_omitted_fields_get_kuberay_defaults() -> None:
    service = RayService.model_validate(service_document())

    assert service.metadata.namespace == "default"
    assert service.spec.upgradeStrategy.type == "NewCluster"
    assert service.spec.rayClusterDeletionDelaySeconds == 60
    assert service.spec.excludeHeadPodFromServeSvc is False
    assert service.spec.rayClusterConfig.enableInTreeAutoscaling is False


def test_pending_cluster_timeout_defaults_to_ten_minutes() -> None:
    assert RayService.model_validate(service_document()).spec.pendingClusterTimeoutSeconds == 600


def test_worker_group_defaults() -> None:
    group = RayService.model_validate(service_document()).spec.rayClusterConfig.workerGroupSpecs[0]

    assert (group.replicas, group.minReplicas, group.maxReplicas) == (None, 0, INT32_MAX)
    assert group.scaleStrategy.workersToDelete == []
    assert (group.suspend, group.numOfHosts) == (False, 1)


def test_a_stored_document_read_back_drops_fields_kuberay_does_not_know() -> None:
    document = service_document(futureSpecField={"a": 1})
    document["status"] = {"serviceStatus": "Running"}
    document["spec"]["rayClusterConfig"]["workerGroupSpecs"][0]["idleTimeoutSeconds"] = 30

    dumped = RayService.model_validate(document).model_dump()

    assert "status" not in dumped  # the controller's, never stored with the manifest
    assert "futureSpecField" not in dumped["spec"]  # admission refuses it (test_spec_strict)
    assert dumped["spec"]["rayClusterConfig"]["workerGroupSpecs"][0]["idleTimeoutSeconds"] == 30


@pytest.mark.parametrize(
    ("value", "text"),
    [(4, "4"), (True, "true"), (False, "false"), (0.5, "0.5"), (None, ""), ("0.0.0.0", "0.0.0.0")],
)
def test_ray_start_param_scalars_become_text(value: object, text: str) -> None:
    document = service_document()
    document["spec"]["rayClusterConfig"]["headGroupSpec"]["rayStartParams"] = {"param": value}

    service = RayService.model_validate(document)

    assert service.spec.rayClusterConfig.headGroupSpec.rayStartParams == {"param": text}


def test_ray_start_param_lists_are_rejected() -> None:
    document = service_document()
    document["spec"]["rayClusterConfig"]["headGroupSpec"]["rayStartParams"] = {"param": [1]}

    with pytest.raises(pydantic.ValidationError):
        RayService.model_validate(document)


def test_unknown_upgrade_type_is_rejected() -> None:
    with pytest.raises(pydantic.ValidationError):
        RayService.model_validate(service_document(upgradeStrategy={"type": "Rolling"}))


def test_key_joins_namespace_and_name() -> None:
    document = service_document()
    document["metadata"]["namespace"] = "shop"

    assert RayService.model_validate(document).key == "shop/svc"


def test_key_uses_the_default_namespace() -> None:
    assert RayService.model_validate(service_document()).key == "default/svc"


def test_a_ray_service_document_is_not_a_ray_cluster() -> None:
    with pytest.raises(pydantic.ValidationError):
        RayCluster.model_validate(service_document())


def test_ray_cluster_holds_a_cluster_spec_directly() -> None:
    cluster = RayCluster.model_validate(
        {
            "apiVersion": "ray.io/v1",
            "kind": "RayCluster",
            "metadata": {"name": "c"},
            "spec": {"headGroupSpec": {}},
        }
    )

    assert cluster.spec.workerGroupSpecs == []


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"replicas": 3, "minReplicas": 1, "maxReplicas": 5}, 3),
        ({"minReplicas": 2, "maxReplicas": 5}, 2),
        ({"replicas": 9, "minReplicas": 1, "maxReplicas": 5}, 5),
        ({"replicas": 0, "minReplicas": 1, "maxReplicas": 5}, 1),
        ({}, 0),
    ],
)
def test_replicas_of_prefers_replicas_and_stays_within_bounds(
    fields: dict[str, int], expected: int
) -> None:
    assert replicas_of(WorkerGroupSpec(groupName="g", **fields)) == expected


def test_node_groups_list_the_head_then_the_workers_with_their_paths() -> None:
    document = service_document()
    document["spec"]["rayClusterConfig"]["workerGroupSpecs"].append({"groupName": "more"})
    spec = RayService.model_validate(document).spec.rayClusterConfig

    groups = node_groups(spec)

    assert [path for path, _ in groups] == [
        "headGroupSpec",
        "workerGroupSpecs[0]",
        "workerGroupSpecs[1]",
    ]
    assert groups[0][1] is spec.headGroupSpec
    assert groups[2][1] is spec.workerGroupSpecs[1]
