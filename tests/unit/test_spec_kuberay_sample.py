"""A RayService written the way KubeRay's samples are written loads unchanged.

The manifest below uses the fields KubeRay users copy from the published samples: images,
ports, volumes, lifecycle hooks, limits and requests, ``dashboard-host`` and ``num-cpus`` given
both as a string and as a number.
"""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from rayservice.spec.hashing import cluster_spec_hash
from rayservice.spec.ignored import ignored_fields
from rayservice.spec.loader import load_manifests
from rayservice.spec.manifest import RayService, replicas_of
from rayservice.spec.resources import NodeResources, node_resources
from rayservice.spec.serve_config import parse_serve_config

GIB = 2**30

MANIFEST = """
apiVersion: ray.io/v1
kind: RayService
metadata:
  name: produce-market
  namespace: shop
  labels:
    team: produce
spec:
  serveConfigV2: |
    proxy_location: EveryNode
    http_options:
      port: 8000
    applications:
      - name: fruit
        route_prefix: /fruit
        import_path: fruit.deployment_graph
        runtime_env:
          working_dir: "https://example.com/archives/fruit.zip"
        deployments:
          - name: MangoStand
            num_replicas: 1
            user_config:
              price: 3
            ray_actor_options:
              num_cpus: 0.1
          - name: FruitMarket
            num_replicas: 1
      - name: calc
        route_prefix: /calc
        import_path: conditional_dag.serve_dag
        deployments:
          - name: Router
            num_replicas: auto
            autoscaling_config:
              min_replicas: 1
              max_replicas: 3
  rayClusterConfig:
    rayVersion: "2.60.0"
    enableInTreeAutoscaling: false
    headGroupSpec:
      serviceType: ClusterIP
      rayStartParams:
        dashboard-host: "0.0.0.0"
        num-cpus: "2"
      template:
        spec:
          containers:
            - name: ray-head
              image: rayproject/ray:2.60.0
              imagePullPolicy: IfNotPresent
              ports:
                - containerPort: 6379
                  name: gcs-server
                - containerPort: 8265
                  name: dashboard
                - containerPort: 8000
                  name: serve
              resources:
                limits:
                  cpu: "2"
                  memory: 4Gi
                requests:
                  cpu: 500m
                  memory: 2Gi
              volumeMounts:
                - mountPath: /tmp/ray
                  name: ray-logs
              lifecycle:
                preStop:
                  exec:
                    command: ["/bin/sh", "-c", "ray stop"]
          volumes:
            - name: ray-logs
              emptyDir: {}
    workerGroupSpecs:
      - groupName: small-group
        replicas: 2
        minReplicas: 1
        maxReplicas: 4
        rayStartParams:
          num-cpus: 1
        template:
          spec:
            containers:
              - name: ray-worker
                image: rayproject/ray:2.60.0
                env:
                  - name: MARKET_MODE
                    value: fresh
                resources:
                  limits:
                    cpu: "1"
                    memory: 2Gi
                    nvidia.com/gpu: 1
                  requests:
                    cpu: 500m
                    memory: 2Gi
                lifecycle:
                  preStop:
                    exec:
                      command: ["/bin/sh", "-c", "ray stop"]
"""

HEAD = "spec.rayClusterConfig.headGroupSpec"
WORKER = "spec.rayClusterConfig.workerGroupSpecs[0]"


@pytest.fixture(scope="module")
def service() -> RayService:
    [manifest] = load_manifests(MANIFEST, "produce-market.yaml")
    assert isinstance(manifest, RayService)
    return manifest


def written() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(MANIFEST)
    return document


def test_the_sample_keeps_its_identity(service: RayService) -> None:
    assert service.key == "shop/produce-market"
    assert service.metadata.labels == {"team": "produce"}


def test_pod_templates_are_kept_exactly_as_written(service: RayService) -> None:
    cluster = written()["spec"]["rayClusterConfig"]

    assert (
        service.spec.rayClusterConfig.headGroupSpec.template == cluster["headGroupSpec"]["template"]
    )
    assert (
        service.spec.rayClusterConfig.workerGroupSpecs[0].template
        == cluster["workerGroupSpecs"][0]["template"]
    )


def test_dumping_gives_back_what_was_written(service: RayService) -> None:
    expected = written()
    worker = expected["spec"]["rayClusterConfig"]["workerGroupSpecs"][0]
    worker["rayStartParams"]["num-cpus"] = "1"  # the one value that is normalised: a number

    assert service.model_dump(mode="json", exclude_unset=True) == expected


def test_num_cpus_as_string_and_as_number_mean_the_same(service: RayService) -> None:
    cluster = service.spec.rayClusterConfig

    assert cluster.headGroupSpec.rayStartParams["num-cpus"] == "2"
    assert cluster.workerGroupSpecs[0].rayStartParams["num-cpus"] == "1"


def test_the_serve_config_passes_rays_schema(service: RayService) -> None:
    config = parse_serve_config(service.spec.serveConfigV2, "produce-market.yaml")

    assert [app["route_prefix"] for app in config["applications"]] == ["/fruit", "/calc"]


def test_node_resources_follow_params_then_limits(service: RayService) -> None:
    head = service.spec.rayClusterConfig.headGroupSpec
    worker = service.spec.rayClusterConfig.workerGroupSpecs[0]

    assert node_resources(head.rayStartParams, head.template) == NodeResources(
        num_cpus=2.0, num_gpus=0.0, memory_bytes=4 * GIB
    )
    assert node_resources(worker.rayStartParams, worker.template) == NodeResources(
        num_cpus=1.0, num_gpus=1.0, memory_bytes=2 * GIB
    )


def test_the_worker_group_wants_two_workers(service: RayService) -> None:
    assert replicas_of(service.spec.rayClusterConfig.workerGroupSpecs[0]) == 2


def test_kubernetes_only_fields_are_listed_as_ignored(service: RayService) -> None:
    assert sorted(ignored_fields(service)) == sorted(
        [
            f"{HEAD}.rayStartParams.dashboard-host",
            f"{HEAD}.template.spec.containers[0].image",
            f"{HEAD}.template.spec.containers[0].imagePullPolicy",
            f"{HEAD}.template.spec.containers[0].ports[0]",  # gcs-server; dashboard, serve used
            f"{HEAD}.template.spec.containers[0].volumeMounts",
            f"{HEAD}.template.spec.containers[0].lifecycle",
            f"{HEAD}.template.spec.volumes",
            f"{WORKER}.template.spec.containers[0].image",
            f"{WORKER}.template.spec.containers[0].lifecycle",
            "spec.serveConfigV2.http_options.port",  # each cluster's proxies get their own
        ]
    )


def test_the_cluster_hash_is_the_same_for_the_same_text(service: RayService) -> None:
    [again] = load_manifests(MANIFEST, "copy.yaml")

    assert isinstance(again, RayService)
    assert cluster_spec_hash(again.spec.rayClusterConfig) == cluster_spec_hash(
        service.spec.rayClusterConfig
    )
