"""Fields that are accepted but have no effect on the local backend."""

from __future__ import annotations

from typing import Any

import pytest

from rayservice.spec.ignored import BACKEND_MANAGED_RAY_START_PARAMS, ignored_fields
from rayservice.spec.manifest import RayCluster, RayService

HEAD = "spec.rayClusterConfig.headGroupSpec"
HEAD_POD = f"{HEAD}.template.spec"


def service_with(
    head_changes: dict[str, Any] | None = None,
    pod_changes: dict[str, Any] | None = None,
    container_changes: dict[str, Any] | None = None,
    spec_changes: dict[str, Any] | None = None,
) -> RayService:
    """A RayService whose head group, head pod, first head container or spec got extra fields."""
    head_container = {"name": "ray-head", **(container_changes or {})}
    head = {
        "rayStartParams": {"num-cpus": "1"},
        "template": {"spec": {"containers": [head_container], **(pod_changes or {})}},
        **(head_changes or {}),
    }
    spec = {
        "serveConfigV2": "applications: []",
        "rayClusterConfig": {"headGroupSpec": head},
        **(spec_changes or {}),
    }
    return RayService.model_validate(
        {"apiVersion": "ray.io/v1", "kind": "RayService", "metadata": {"name": "s"}, "spec": spec}
    )


def test_a_plain_manifest_has_no_ignored_fields() -> None:
    assert ignored_fields(service_with()) == []


def test_container_name_env_and_resources_are_used() -> None:
    container = {
        "env": [{"name": "MODE", "value": "fast"}],
        "resources": {"limits": {"cpu": "1", "memory": "1Gi", "nvidia.com/gpu": 1}},
    }

    assert ignored_fields(service_with(container_changes=container)) == []


@pytest.mark.parametrize(
    "field", ["image", "imagePullPolicy", "ports", "volumeMounts", "lifecycle", "securityContext"]
)
def test_kubernetes_only_container_fields_are_ignored(field: str) -> None:
    service = service_with(container_changes={field: "anything"})

    assert ignored_fields(service) == [f"{HEAD_POD}.containers[0].{field}"]


@pytest.mark.parametrize(
    "field",
    [
        "volumes",
        "tolerations",
        "nodeSelector",
        "affinity",
        "serviceAccountName",
        "initContainers",
    ],
)
def test_kubernetes_only_pod_fields_are_ignored(field: str) -> None:
    assert ignored_fields(service_with(pod_changes={field: []})) == [f"{HEAD_POD}.{field}"]


def test_containers_after_the_first_are_ignored_whole() -> None:
    service = service_with(
        pod_changes={"containers": [{"name": "ray-head"}, {"name": "log-shipper", "image": "x"}]}
    )

    assert ignored_fields(service) == [f"{HEAD_POD}.containers[1]"]


def test_resources_other_than_cpu_memory_and_gpus_are_ignored() -> None:
    resources = {
        "limits": {"cpu": "1", "ephemeral-storage": "1Gi"},
        "requests": {"hugepages-2Mi": 1},
    }

    fields = ignored_fields(service_with(container_changes={"resources": resources}))

    assert fields == [
        f"{HEAD_POD}.containers[0].resources.limits.ephemeral-storage",
        f"{HEAD_POD}.containers[0].resources.requests.hugepages-2Mi",
    ]


def test_environment_values_taken_from_the_pod_are_ignored_those_from_secrets_are_not() -> None:
    env = [
        {"name": "PLAIN", "value": "1"},
        {"name": "SECRET", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}},
        {"name": "SETTING", "valueFrom": {"configMapKeyRef": {"name": "c", "key": "k"}}},
        {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
    ]
    every_key = [{"secretRef": {"name": "s"}}, {"configMapRef": {"name": "c"}, "prefix": "C_"}]

    fields = ignored_fields(service_with(container_changes={"env": env, "envFrom": every_key}))

    assert fields == [f"{HEAD_POD}.containers[0].env[3].valueFrom"]


def test_pod_labels_and_annotations_are_ignored_except_fault_tolerance() -> None:
    service = service_with()
    service.spec.rayClusterConfig.headGroupSpec.template["metadata"] = {
        "labels": {"app": "x"},
        "annotations": {"ray.io/ft-enabled": "true", "example.com/owner": "team"},
    }

    assert ignored_fields(service) == [
        f"{HEAD}.template.metadata.labels",
        f'{HEAD}.template.metadata.annotations["example.com/owner"]',
    ]


@pytest.mark.parametrize(("field", "value"), [("enableIngress", True), ("ingressOptions", {})])
def test_ingress_settings_are_ignored(field: str, value: object) -> None:
    assert ignored_fields(service_with(head_changes={field: value})) == [f"{HEAD}.{field}"]


def test_the_service_type_is_used_and_a_head_service_only_for_its_type() -> None:
    head_service = {
        "metadata": {"name": "my-head", "annotations": {"a": "b"}},
        "spec": {"type": "LoadBalancer", "sessionAffinity": "None"},
    }
    service = service_with(head_changes={"serviceType": "NodePort", "headService": head_service})

    # a RayService's head Service is always <name>-head-svc, as KubeRay names it
    assert ignored_fields(service) == [
        f"{HEAD}.headService.metadata.name",
        f"{HEAD}.headService.metadata.annotations",
        f"{HEAD}.headService.spec.sessionAffinity",
    ]


def test_the_head_ports_that_give_services_their_ports_are_used() -> None:
    ports = [
        {"name": "gcs-server", "containerPort": 6379},
        {"name": "dashboard", "containerPort": 8265, "protocol": "TCP"},
        {"name": "client", "containerPort": 10001},
        {"name": "serve-grpc", "containerPort": 9000},
        {"name": "serve", "containerPort": 8000, "hostPort": 8000},
    ]

    fields = ignored_fields(service_with(container_changes={"ports": ports}))

    assert fields == [
        f"{HEAD_POD}.containers[0].ports[0]",
        f"{HEAD_POD}.containers[0].ports[2]",
        f"{HEAD_POD}.containers[0].ports[3]",
        f"{HEAD_POD}.containers[0].ports[4].hostPort",
    ]


def test_the_proxy_address_of_the_serve_config_is_the_controllers() -> None:
    config = (
        "http_options:\n  host: 0.0.0.0\n  port: 9000\n  request_timeout_s: 5\napplications: []"
    )

    fields = ignored_fields(service_with(spec_changes={"serveConfigV2": config}))

    assert fields == [
        "spec.serveConfigV2.http_options.host",
        "spec.serveConfigV2.http_options.port",
    ]


def test_ray_start_params_the_backend_sets_are_ignored() -> None:
    params = {"num-cpus": "1", "dashboard-host": "0.0.0.0", "port": "6379", "block": "true"}

    fields = ignored_fields(service_with(head_changes={"rayStartParams": params}))

    assert fields == [
        f"{HEAD}.rayStartParams.dashboard-host",
        f"{HEAD}.rayStartParams.port",
        f"{HEAD}.rayStartParams.block",
    ]


def test_every_backend_managed_param_is_a_ray_start_option() -> None:
    from rayservice.spec.loader import ray_start_options

    assert set(ray_start_options()) >= BACKEND_MANAGED_RAY_START_PARAMS


def test_the_gateway_class_is_ignored() -> None:
    upgrade = {
        "type": "NewClusterWithIncrementalUpgrade",
        "clusterUpgradeOptions": {"gatewayClassName": "istio", "stepSizePercent": 10},
    }

    fields = ignored_fields(service_with(spec_changes={"upgradeStrategy": upgrade}))

    assert fields == ["spec.upgradeStrategy.clusterUpgradeOptions.gatewayClassName"]


def test_only_what_is_not_used_of_the_serve_service_is_listed() -> None:
    serve_service = {
        "metadata": {"name": "custom", "labels": {"a": "b"}, "annotations": {"c": "d"},
                     "namespace": "elsewhere"},
        "spec": {
            "type": "LoadBalancer",
            "ports": [
                {"name": "other", "port": 9999},
                {"name": "serve", "port": 12345, "targetPort": 12345, "nodePort": 30000},
            ],
        },
    }  # fmt: skip
    service = service_with(spec_changes={"serveService": serve_service})

    assert ignored_fields(service) == [
        "spec.serveService.metadata.namespace",
        "spec.serveService.spec.ports[0]",
        "spec.serveService.spec.ports[1].targetPort",
        "spec.serveService.spec.ports[1].nodePort",
    ]


def test_ray_cluster_paths_start_at_spec_and_cover_worker_groups() -> None:
    cluster = RayCluster.model_validate(
        {
            "apiVersion": "ray.io/v1",
            "kind": "RayCluster",
            "metadata": {"name": "c"},
            "spec": {
                "headGroupSpec": {
                    "serviceType": "ClusterIP",
                    "headService": {"metadata": {"name": "h", "labels": {"a": "b"}}},
                },
                "workerGroupSpecs": [
                    {"groupName": "g", "template": {"spec": {"nodeSelector": {"a": "b"}}}}
                ],
            },
        }
    )

    # a RayCluster's head Service takes headService.metadata.name
    assert ignored_fields(cluster) == [
        "spec.headGroupSpec.headService.metadata.labels",
        "spec.workerGroupSpecs[0].template.spec.nodeSelector",
    ]


def autoscaled(enabled: bool, options: dict[str, Any]) -> RayService:
    return RayService.model_validate(
        {
            "apiVersion": "ray.io/v1",
            "kind": "RayService",
            "metadata": {"name": "s"},
            "spec": {
                "serveConfigV2": "applications: []",
                "rayClusterConfig": {
                    "enableInTreeAutoscaling": enabled,
                    "autoscalerOptions": options,
                    "headGroupSpec": {"rayStartParams": {}},
                },
            },
        }
    )


def test_of_the_autoscalers_options_only_its_settings_are_used() -> None:
    options = {
        "idleTimeoutSeconds": 60,
        "upscalingMode": "Conservative",
        "image": "rayproject/ray:2.60.0",
        "resources": {"limits": {"cpu": "500m"}},
    }

    assert ignored_fields(autoscaled(True, options)) == [
        "spec.rayClusterConfig.autoscalerOptions.image",
        "spec.rayClusterConfig.autoscalerOptions.resources",
    ]
    # no autoscaler runs without enableInTreeAutoscaling: none of its options means anything
    assert ignored_fields(autoscaled(False, options)) == ["spec.rayClusterConfig.autoscalerOptions"]
