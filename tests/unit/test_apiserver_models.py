"""KubeRay API server v1 bodies: their JSON spelling, their checks and their manifests."""

from __future__ import annotations

import pytest

from rayservice.spec.apiserver import (
    REQUEST_BODY,
    Cluster,
    ComputeTemplate,
    Environment,
    ErrorBody,
    GrpcCode,
    JobSubmissionInfo,
    ListClustersResponse,
    ListComputeTemplatesResponse,
    PodToleration,
    RayJobSubmission,
    RayService,
    ServeApplicationsReply,
    SubmissionYaml,
    VolumeType,
    cluster_manifest,
    job_submission_problems,
    parse_body,
    service_manifest,
    service_problems,
    submission_yaml_problems,
    to_wire,
    validate_cluster,
    validate_compute_template,
    validate_service,
)
from rayservice.spec.errors import InvalidSpec
from rayservice.spec.ignored import ignored_fields
from rayservice.spec.loader import load_manifest
from rayservice.spec.manifest import RayCluster
from rayservice.spec.manifest import RayService as RayServiceManifest
from tests.seed_003 import SEED_CLUSTER, SEED_TEMPLATE, SERVE_CONFIG


def _templates() -> dict[str, ComputeTemplate]:
    template = parse_body(ComputeTemplate, SEED_TEMPLATE)
    return {template.name: template}


def _fields(error: pytest.ExceptionInfo[InvalidSpec]) -> list[str]:
    return [problem.field for problem in error.value.problems]


# --- spelling on the wire -------------------------------------------------------------------


def test_cluster_round_trips_in_camel_case() -> None:
    cluster = parse_body(Cluster, SEED_CLUSTER)

    assert to_wire(cluster) == SEED_CLUSTER


def test_proto_field_names_are_accepted_on_input() -> None:
    body = {
        "name": "c",
        "namespace": "default",
        "user": "u",
        "cluster_spec": {
            "head_group_spec": {"compute_template": "t", "ray_start_params": {"num-cpus": "1"}},
            "worker_group_spec": [{"group_name": "g", "compute_template": "t", "max_replicas": 2}],
        },
    }

    wire = to_wire(parse_body(Cluster, body))

    assert wire["clusterSpec"]["headGroupSpec"]["computeTemplate"] == "t"
    assert wire["clusterSpec"]["headGroupSpec"]["rayStartParams"] == {"num-cpus": "1"}
    group = wire["clusterSpec"]["workerGroupSpec"][0]
    assert (group["groupName"], group["maxReplicas"]) == ("g", 2)


def test_template_spells_resource_fields_in_camel_case() -> None:
    template = parse_body(
        ComputeTemplate,
        {
            "name": "gpu",
            "namespace": "default",
            "cpu": 4,
            "memory": 16,
            "gpu": 1,
            "gpu_accelerator": "nvidia.com/gpu",
            "extended_resources": {"vpc.amazonaws.com/efa": 2},
            "tolerations": [{"key": "k", "operator": "Exists", "effect": "NoSchedule"}],
        },
    )

    wire = to_wire(template)

    assert wire["gpuAccelerator"] == "nvidia.com/gpu"
    assert wire["extendedResources"] == {"vpc.amazonaws.com/efa": 2}
    assert wire["tolerations"] == [{"key": "k", "operator": "Exists", "effect": "NoSchedule"}]
    assert to_wire(ListComputeTemplatesResponse(compute_templates=[template])) == {
        "computeTemplates": [wire]
    }


def test_service_reads_every_spelling_of_serve_config_v2() -> None:
    for key in ("serveConfigV2", "serve_config_V2", "serve_config_v2"):
        service = parse_body(RayService, {"name": "s", key: SERVE_CONFIG})
        assert to_wire(service)["serveConfigV2"] == SERVE_CONFIG


def test_enums_are_read_by_name_or_number_and_written_as_numbers() -> None:
    by_name = parse_body(Cluster, {"environment": "PRODUCTION"})
    by_number = parse_body(Cluster, {"environment": 3})

    assert by_name.environment is by_number.environment is Environment.PRODUCTION
    assert to_wire(by_name)["environment"] == 3
    volume_body = {"clusterSpec": {"headGroupSpec": {"volumes": [{"volumeType": "HOST_PATH"}]}}}
    volume_cluster = parse_body(Cluster, volume_body)
    assert volume_cluster.cluster_spec is not None
    assert volume_cluster.cluster_spec.head_group_spec is not None
    assert volume_cluster.cluster_spec.head_group_spec.volumes is not None
    assert volume_cluster.cluster_spec.head_group_spec.volumes[0].volume_type is (
        VolumeType.HOST_PATH
    )


def test_output_only_fields_and_list_tokens() -> None:
    cluster = parse_body(
        Cluster,
        {
            "name": "c",
            "createdAt": "2024-05-06T07:08:09Z",
            "clusterState": "ready",
            "serviceEndpoint": {"dashboard": "8265"},
            "events": [{"id": "e1", "reason": "Created", "count": 2}],
        },
    )
    wire = to_wire(ListClustersResponse(clusters=[cluster], continue_="next"))

    assert wire["continue"] == "next"
    listed = wire["clusters"][0]
    assert listed["createdAt"] == "2024-05-06T07:08:09Z"
    assert listed["serviceEndpoint"] == {"dashboard": "8265"}
    assert listed["events"] == [{"id": "e1", "reason": "Created", "count": 2}]


def test_unknown_fields_are_dropped() -> None:
    assert "bogus" not in to_wire(parse_body(Cluster, {"name": "c", "bogus": 1}))


def test_job_bodies() -> None:
    job = parse_body(
        RayJobSubmission,
        {"entrypoint": "python x.py", "runtimeEnv": "pip:\n  - numpy\n", "entrypoint_num_cpus": 1},
    )
    info = JobSubmissionInfo(submission_id="raysubmit_1", start_time=1700000000000)

    assert to_wire(job)["entrypointNumCpus"] == 1.0
    assert job.runtime_env == "pip:\n  - numpy\n"
    # protojson writes 64-bit integers as strings
    assert to_wire(info) == {"submissionId": "raysubmit_1", "startTime": "1700000000000"}
    assert job_submission_problems(RayJobSubmission())[0].field == "entrypoint"


def test_serve_applications_reply_in_camel_case() -> None:
    ray_answer = {
        "deploy_mode": "MULTI_APP",
        "proxy_location": "EveryNode",
        "controller_info": {"node_id": "n1", "actor_name": "SERVE_CONTROLLER_ACTOR"},
        "http_options": {"host": "0.0.0.0", "port": 8000},
        "applications": {
            "fruit_app": {
                "name": "fruit_app",
                "route_prefix": "/fruit",
                "status": "RUNNING",
                "last_deployed_time_s": 1.5,
                "deployed_app_config": {"import_path": "fruit.deployment_graph"},
                "deployments": {
                    "MangoStand": {
                        "name": "MangoStand",
                        "status": "HEALTHY",
                        "deployment_config": {"num_replicas": 1, "user_config": {"price": 3}},
                        "replicas": [{"replica_id": "r1", "state": "RUNNING", "pid": 7}],
                    }
                },
            }
        },
    }

    wire = to_wire(parse_body(ServeApplicationsReply, ray_answer))

    assert wire["deployMode"] == "MULTI_APP"
    assert wire["controllerInfo"]["actorName"] == "SERVE_CONTROLLER_ACTOR"
    app = wire["applications"]["fruit_app"]
    assert app["routePrefix"] == "/fruit"
    assert app["deployedAppConfig"]["importPath"] == "fruit.deployment_graph"
    deployment = app["deployments"]["MangoStand"]
    assert deployment["deploymentConfig"]["userConfig"] == {"price": 3}
    assert deployment["replicas"][0] == {"replicaId": "r1", "state": "RUNNING", "pid": 7}


def test_error_body() -> None:
    assert to_wire(ErrorBody(code=GrpcCode.NOT_FOUND, message="no such cluster")) == {
        "code": 5,
        "message": "no such cluster",
    }
    assert ErrorBody.model_validate({"code": 3, "message": "m"}).code is GrpcCode.INVALID_ARGUMENT


def test_submission_yaml() -> None:
    assert parse_body(SubmissionYaml, {"configyaml": SERVE_CONFIG}).configyaml == SERVE_CONFIG
    assert [p.field for p in submission_yaml_problems(SubmissionYaml())] == ["configyaml"]


# --- validation -------------------------------------------------------------------------------


def test_shape_problems_are_located_as_the_client_wrote_them() -> None:
    body = {"clusterSpec": {"workerGroupSpec": [{"maxReplicas": "many"}]}}

    with pytest.raises(InvalidSpec) as error:
        parse_body(Cluster, body)

    assert _fields(error) == ["clusterSpec.workerGroupSpec[0].maxReplicas"]
    assert error.value.problems[0].source == REQUEST_BODY


def test_template_problems() -> None:
    template = ComputeTemplate(name="", namespace="other", cpu=0, memory=0)

    with pytest.raises(InvalidSpec) as error:
        validate_compute_template(template, "default")

    assert _fields(error) == ["namespace", "name", "cpu", "memory"]


def test_cluster_problems_are_all_reported_with_paths() -> None:
    body = {
        "name": "Bad_Name",
        "namespace": "other",
        "clusterSpec": {
            "headGroupSpec": {"image": "x"},
            "workerGroupSpec": [
                {"computeTemplate": "t", "maxReplicas": 0},
                {"groupName": "g", "computeTemplate": "t", "minReplicas": 3, "maxReplicas": 2},
            ],
        },
    }

    with pytest.raises(InvalidSpec) as error:
        validate_cluster(parse_body(Cluster, body), "default")

    assert _fields(error) == [
        "namespace",
        "name",
        "user",
        "clusterSpec.headGroupSpec.computeTemplate",
        "clusterSpec.headGroupSpec.rayStartParams",
        "clusterSpec.workerGroupSpec[0].groupName",
        "clusterSpec.workerGroupSpec[0].maxReplicas",
        "clusterSpec.workerGroupSpec[1].minReplicas",
    ]


def test_cluster_needs_a_spec_and_a_head() -> None:
    with pytest.raises(InvalidSpec) as no_spec:
        validate_cluster(Cluster(name="c", namespace="default", user="u"), "default")
    with pytest.raises(InvalidSpec) as no_head:
        validate_cluster(parse_body(Cluster, {**SEED_CLUSTER, "clusterSpec": {}}), "default")

    assert _fields(no_spec) == ["clusterSpec"]
    assert _fields(no_head) == ["clusterSpec.headGroupSpec"]


def test_seed_cluster_is_valid() -> None:
    validate_cluster(parse_body(Cluster, SEED_CLUSTER), "default")


def test_service_problems() -> None:
    service = parse_body(
        RayService,
        {"name": "svc", "namespace": "default", "clusterSpec": SEED_CLUSTER["clusterSpec"]},
    )

    fields = [problem.field for problem in service_problems(service, "default", "other")]

    assert fields == ["name", "user", "serveConfigV2"]


def test_service_name_is_at_most_47_characters() -> None:
    service = RayService(name="s" * 48, namespace="default", user="u")

    assert "name" in [p.field for p in service_problems(service, "default")]


# --- conversion to manifests -----------------------------------------------------------------


def test_seed_cluster_converts_to_a_loadable_manifest() -> None:
    manifest = cluster_manifest(parse_body(Cluster, SEED_CLUSTER), _templates())

    loaded = load_manifest(manifest, REQUEST_BODY)

    assert isinstance(loaded, RayCluster)
    assert loaded.metadata.labels == {"ray.io/user": "boris"}
    assert loaded.metadata.annotations == {"ray.io/enable-serve-service": "true"}
    head = loaded.spec.headGroupSpec
    assert head.serviceType == "ClusterIP"
    assert head.rayStartParams["dashboard-host"] == "0.0.0.0"
    container = head.template["spec"]["containers"][0]
    assert container["name"] == "ray-head"
    assert container["image"] == "rayproject/ray:2.8.0-py310"
    assert container["resources"] == {
        "limits": {"cpu": "2", "memory": "4Gi"},
        "requests": {"cpu": "2", "memory": "4Gi"},
    }
    worker = loaded.spec.workerGroupSpecs[0]
    assert worker.groupName == "small-wg"
    assert worker.template["spec"]["containers"][0]["name"] == "ray-worker"
    # a zero minReplicas means "replicas", as KubeRay's API server reads it
    assert (worker.replicas, worker.minReplicas, worker.maxReplicas) == (1, 1, 5)


def test_seed_cluster_params_the_backend_chooses_are_reported_as_ignored() -> None:
    loaded = load_manifest(
        cluster_manifest(parse_body(Cluster, SEED_CLUSTER), _templates()), REQUEST_BODY
    )

    ignored = ignored_fields(loaded)

    assert "spec.headGroupSpec.rayStartParams.dashboard-host" in ignored
    assert "spec.workerGroupSpecs[0].rayStartParams.node-ip-address" in ignored


def test_template_resources_gpus_and_tolerations_reach_the_pod() -> None:
    template = ComputeTemplate(
        name="gpu",
        namespace="default",
        cpu=8,
        memory=32,
        gpu=2,
        extended_resources={"example.com/fpga": 1},
        tolerations=[PodToleration(key="gpu", operator="Equal", value="yes", effect="NoSchedule")],
    )
    body = {
        "name": "c",
        "namespace": "default",
        "user": "u",
        "version": "2.9.0",
        "clusterSpec": {
            "headGroupSpec": {
                "computeTemplate": "gpu",
                "rayStartParams": {"num-cpus": "0"},
                "environment": {"values": {"A": "1"}},
            }
        },
    }

    manifest = cluster_manifest(parse_body(Cluster, body), {"gpu": template})
    loaded = load_manifest(manifest, REQUEST_BODY)

    assert isinstance(loaded, RayCluster)
    assert loaded.spec.rayVersion == "2.9.0"
    pod = manifest["spec"]["headGroupSpec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["image"] == "rayproject/ray:2.9.0"
    assert container["resources"]["limits"] == {
        "cpu": "8",
        "memory": "32Gi",
        "nvidia.com/gpu": "2",
        "example.com/fpga": "1",
    }
    assert container["env"] == [{"name": "A", "value": "1"}]
    assert pod["tolerations"] == [
        {"key": "gpu", "operator": "Equal", "effect": "NoSchedule", "value": "yes"}
    ]


def test_missing_templates_are_reported_with_the_templates_that_exist() -> None:
    body = {
        **SEED_CLUSTER,
        "clusterSpec": {
            **SEED_CLUSTER["clusterSpec"],
            "headGroupSpec": {
                **SEED_CLUSTER["clusterSpec"]["headGroupSpec"],
                "computeTemplate": "missing",
            },
        },
    }

    with pytest.raises(InvalidSpec) as error:
        cluster_manifest(parse_body(Cluster, body), _templates())

    (problem,) = error.value.problems
    assert problem.field == "clusterSpec.headGroupSpec.computeTemplate"
    assert "'missing'" in problem.message
    assert problem.valid == "default-template"


def test_missing_template_with_no_templates_at_all() -> None:
    with pytest.raises(InvalidSpec) as error:
        cluster_manifest(parse_body(Cluster, SEED_CLUSTER), {})

    assert _fields(error) == [
        "clusterSpec.headGroupSpec.computeTemplate",
        "clusterSpec.workerGroupSpec[0].computeTemplate",
    ]
    assert "create a compute template" in error.value.problems[0].valid


def test_service_converts_to_a_loadable_manifest() -> None:
    service = parse_body(
        RayService,
        {
            "name": "fruit",
            "namespace": "default",
            "user": "boris",
            "version": "2.9.0",
            "serveConfigV2": SERVE_CONFIG,
            "clusterSpec": SEED_CLUSTER["clusterSpec"],
        },
    )
    validate_service(service, "default", "fruit")

    manifest = service_manifest(service, _templates())
    loaded = load_manifest(manifest, REQUEST_BODY)

    assert isinstance(loaded, RayServiceManifest)
    assert loaded.spec.serveConfigV2 == SERVE_CONFIG
    cluster = loaded.spec.rayClusterConfig
    assert cluster.rayVersion == "2.9.0"
    assert [group.groupName for group in cluster.workerGroupSpecs] == ["small-wg"]
    assert cluster.headGroupSpec.template["spec"]["containers"][0]["resources"]["limits"] == {
        "cpu": "2",
        "memory": "4Gi",
    }
