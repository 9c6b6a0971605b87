"""Values a cluster spec takes from Secrets and ConfigMaps: resolved as Kubernetes resolves them
when a container starts (optional references, precedence, what a ConfigMap offers), and what
the resolved spec means downstream (node environments, the Redis password, the cluster hash)."""

from __future__ import annotations

import copy
import stat
from pathlib import Path
from typing import Any

import pytest

from rayservice.planner.cluster import cluster_request
from rayservice.providers.local_state import ClusterRecord, save_record
from rayservice.spec.config_objects import environment_values, load_config_object
from rayservice.spec.events import ObjectKind
from rayservice.spec.fault_tolerance import container_env
from rayservice.spec.hashing import cluster_spec_hash
from rayservice.spec.manifest import RayClusterSpec
from rayservice.spec.references import Found, Source, reference_problems, resolve, sources

PASSWORD = Source(ObjectKind.SECRET, "redis-pw")
SETTINGS = Source(ObjectKind.CONFIG_MAP, "settings")
HEAD_CONTAINER = "spec.rayClusterConfig.headGroupSpec.template.spec.containers[0]"


def cluster_spec(
    env: list[dict[str, Any]] | None = None,
    env_from: list[dict[str, Any]] | None = None,
    sidecar_env: list[dict[str, Any]] | None = None,
    **fields: Any,
) -> RayClusterSpec:
    container: dict[str, Any] = {"name": "ray-head", "image": "rayproject/ray:2.60.0"}
    if env is not None:
        container["env"] = env
    if env_from is not None:
        container["envFrom"] = env_from
    containers = [container]
    if sidecar_env is not None:
        containers.append({"name": "sidecar", "image": "busybox", "env": sidecar_env})
    worker = {"name": "ray-worker", "image": "rayproject/ray:2.60.0", "env": copy.deepcopy(env)}
    return RayClusterSpec.model_validate(
        {
            "headGroupSpec": {
                "rayStartParams": {},
                "template": {"spec": {"containers": containers}},
            },
            "workerGroupSpecs": [
                {
                    "groupName": "small",
                    "replicas": 1,
                    "rayStartParams": {},
                    "template": {"spec": {"containers": [worker]}},
                }
            ],
            **fields,
        }
    )


def from_secret(name: str, key: str, optional: bool | None = None) -> dict[str, Any]:
    reference: dict[str, Any] = {"name": PASSWORD.name, "key": key}
    if optional is not None:
        reference["optional"] = optional
    return {"name": name, "valueFrom": {"secretKeyRef": reference}}


def from_config_map(name: str, key: str) -> dict[str, Any]:
    return {"name": name, "valueFrom": {"configMapKeyRef": {"name": SETTINGS.name, "key": key}}}


FOUND: Found = {
    PASSWORD: {"password": b"hunter2", "user": b"ray"},
    SETTINGS: {"LOG_LEVEL": b"debug", "MODE": b"fast"},
}


def head_env(spec: RayClusterSpec) -> dict[str, str]:
    return container_env(spec.headGroupSpec.template)


def test_key_references_become_the_values_they_name_in_every_group() -> None:
    spec = cluster_spec(
        env=[
            {"name": "PLAIN", "value": "1"},
            from_secret("REDIS_PASSWORD", "password"),
            from_config_map("LOG_LEVEL", "LOG_LEVEL"),
        ]
    )

    resolution = resolve(spec, FOUND, "default")

    assert resolution.missing == ()
    wanted = {"PLAIN": "1", "REDIS_PASSWORD": "hunter2", "LOG_LEVEL": "debug"}
    assert head_env(resolution.spec) == wanted
    assert container_env(resolution.spec.workerGroupSpecs[0].template) == wanted
    assert [(u.source, u.key) for u in resolution.uses][:2] == [
        (PASSWORD, "password"),
        (SETTINGS, "LOG_LEVEL"),
    ]
    assert resolution.uses[0].path == f"{HEAD_CONTAINER}.env[1].valueFrom.secretKeyRef"
    # the stored spec is left as written
    assert "valueFrom" in spec.headGroupSpec.template["spec"]["containers"][0]["env"][1]


def test_a_missing_object_or_key_is_reported_with_where_it_is_named() -> None:
    spec = cluster_spec(env=[from_secret("A", "password"), from_config_map("B", "absent")])

    no_secret = resolve(spec, {SETTINGS: FOUND[SETTINGS]}, "prod")

    assert no_secret.missing[0] == (
        f"Secret prod/redis-pw not found ({HEAD_CONTAINER}.env[0].valueFrom.secretKeyRef);"
        " apply it, or mark the reference optional: true"
    )
    assert no_secret.missing[1].startswith("ConfigMap prod/settings has no key 'absent' (")
    assert len(no_secret.missing) == 4  # the head's and the worker group's


def test_an_optional_reference_to_nothing_leaves_the_variable_unset() -> None:
    spec = cluster_spec(
        env=[from_secret("A", "absent", optional=True), from_secret("B", "password")],
        env_from=[{"configMapRef": {"name": "nowhere", "optional": True}}],
    )

    assert head_env(resolve(spec, FOUND, "default").spec) == {"B": "hunter2"}
    resolution = resolve(spec, {}, "default")
    assert head_env(resolution.spec) == {}
    # only B's reference is missing, in the head and in the worker group
    assert [m.split(" (")[0] for m in resolution.missing] == [
        "Secret default/redis-pw not found"
    ] * 2
    assert all(".env[1].valueFrom" in m for m in resolution.missing)


def test_env_from_takes_every_key_with_its_prefix_and_env_wins_over_it() -> None:
    spec = cluster_spec(
        env=[{"name": "MODE", "value": "literal"}],
        env_from=[
            {"configMapRef": {"name": SETTINGS.name}},
            {"secretRef": {"name": PASSWORD.name}, "prefix": "REDIS_"},
            {"secretRef": {"name": PASSWORD.name}},
            {"configMapRef": {"name": SETTINGS.name}, "prefix": "RE"},  # later source wins
        ],
    )
    found = {**FOUND, SETTINGS: {"LOG_LEVEL": b"debug", "MODE": b"fast", "DIS_user": b"cm"}}

    resolution = resolve(spec, found, "default")

    assert head_env(resolution.spec) == {
        "LOG_LEVEL": "debug",
        "MODE": "literal",
        "DIS_user": "cm",
        "REDIS_password": "hunter2",
        "REDIS_user": "cm",
        "password": "hunter2",
        "user": "ray",
        "RELOG_LEVEL": "debug",
        "REMODE": "fast",
    }
    assert "envFrom" not in resolution.spec.headGroupSpec.template["spec"]["containers"][0]
    assert resolution.uses[0].key is None


def test_a_config_maps_binary_data_is_not_for_the_environment() -> None:
    stored = load_config_object(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "settings"},
            "data": {"MODE": "fast"},
            "binaryData": {"blob": "AAEC"},
        },
        "cm.yaml",
    )
    spec = cluster_spec(env=[from_config_map("BLOB", "blob")])

    resolution = resolve(spec, {SETTINGS: environment_values(stored)}, "default")

    assert environment_values(stored) == {"MODE": b"fast"}
    assert resolution.missing[0].startswith("ConfigMap default/settings has no key 'blob'")


@pytest.mark.parametrize("value", [b"\xff\xfe", b"a\x00b"], ids=["not-utf8", "nul"])
def test_a_value_no_environment_can_hold_is_reported_without_the_value(value: bytes) -> None:
    spec = cluster_spec(env=[from_secret("KEY", "blob")])

    [message, _] = resolve(spec, {PASSWORD: {"blob": value}}, "default").missing

    assert "key 'blob' of Secret default/redis-pw is not text" in message
    assert repr(value) not in message and "a\\x00b" not in message


def test_only_the_ray_container_is_resolved_and_pod_fields_stay_as_written() -> None:
    pod_ip = {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}
    spec = cluster_spec(env=[pod_ip], sidecar_env=[from_secret("SIDE", "password")])

    resolution = resolve(spec, {}, "default")

    assert resolution.missing == () and sources(spec) == frozenset()
    container = resolution.spec.headGroupSpec.template["spec"]["containers"][0]
    assert container["env"] == [pod_ip]


def test_the_redis_password_of_fault_tolerance_comes_from_its_secret() -> None:
    options = {
        "redisAddress": "redis.example.internal:6379",
        "redisPassword": {"valueFrom": {"secretKeyRef": {"name": "redis-pw", "key": "password"}}},
    }
    spec = cluster_spec(gcsFaultToleranceOptions=options)

    resolution = resolve(spec, FOUND, "default")
    request = cluster_request("c", "default/s", resolution.spec, "h", annotations={})

    assert sources(spec) == {PASSWORD}
    assert request.fault_tolerance is not None
    assert request.fault_tolerance.redis_password == "hunter2"
    missing = resolve(spec, {}, "default").missing
    assert missing == (
        "Secret default/redis-pw not found (spec.rayClusterConfig.gcsFaultToleranceOptions"
        ".redisPassword.valueFrom.secretKeyRef); apply it, or mark the reference optional: true",
    )


def test_the_cluster_hash_follows_the_values_taken_and_only_them() -> None:
    spec = cluster_spec(env=[from_secret("REDIS_PASSWORD", "password")])

    def hashed(found: Found) -> str:
        return cluster_spec_hash(resolve(spec, found, "default").spec)

    before = hashed(FOUND)
    assert hashed({**FOUND, PASSWORD: {"password": b"hunter2", "user": b"other"}}) == before
    assert hashed({**FOUND, SETTINGS: {}}) == before
    assert hashed({**FOUND, PASSWORD: {"password": b"rotated", "user": b"ray"}}) != before


def test_the_provider_keeps_the_values_taken_in_a_file_only_its_owner_reads(
    tmp_path: Path,
) -> None:
    spec = resolve(cluster_spec(env=[from_secret("REDIS_PASSWORD", "password")]), FOUND, "ns")
    request = cluster_request("c", "ns/s", spec.spec, "h", annotations={})
    path = tmp_path / "clusters" / "c" / "cluster.json"
    path.parent.mkdir(parents=True)
    path.with_suffix(".tmp").write_text("left by a crash")  # an earlier file keeps its mode
    path.with_suffix(".tmp").chmod(0o644)

    save_record(
        path, ClusterRecord(name="c", owner="ns/s", token="t", created_at=0, request=request)
    )

    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert "hunter2" in path.read_text()


def test_a_spec_that_takes_nothing_is_left_exactly_as_written() -> None:
    spec = cluster_spec(env=[{"name": "PLAIN", "value": "1"}], env_from=[])
    spec.workerGroupSpecs[0].template["spec"]["containers"][0]["env"] = None

    resolution = resolve(spec, FOUND, "default")

    assert resolution.spec == spec and resolution.uses == ()
    assert cluster_spec_hash(resolution.spec) == cluster_spec_hash(spec)


def test_a_pod_field_of_the_same_name_wins_over_env_from() -> None:
    pod_name = {"name": "password", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}
    spec = cluster_spec(env=[pod_name], env_from=[{"secretRef": {"name": PASSWORD.name}}])

    container = resolve(spec, FOUND, "default").spec.headGroupSpec.template["spec"]["containers"][0]

    assert container["env"] == [{"name": "user", "value": "ray"}, pod_name]


@pytest.mark.parametrize(
    ("env", "env_from", "path", "message"),
    [
        (
            [{"name": "A", "value": "x", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}],
            None,
            "env[0]",
            "sets both value and valueFrom",
        ),
        (
            [{"name": "A", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"},
                                         "configMapKeyRef": {"name": "c", "key": "k"}}}],
            None,
            "env[0].valueFrom",
            "names secretKeyRef and configMapKeyRef",
        ),
        ([{"name": "A", "valueFrom": {"secretKeyRef": {"key": "k"}}}], None,
         "env[0].valueFrom.secretKeyRef.name", "is required"),
        ([{"name": "A", "valueFrom": {"configMapKeyRef": {"name": "c"}}}], None,
         "env[0].valueFrom.configMapKeyRef.key", "is required"),
        (None, [{"prefix": "P_"}], "envFrom[0]", "names no object"),
        (None, [{"secretRef": {"name": "s"}, "configMapRef": {"name": "c"}}], "envFrom[0]",
         "names secretRef and configMapRef"),
    ],
)  # fmt: skip
def test_what_kubernetes_api_server_refuses_in_a_reference_is_refused(
    env: list[dict[str, Any]] | None, env_from: list[dict[str, Any]] | None, path: str, message: str
) -> None:
    spec = cluster_spec(env=env, env_from=env_from)

    problems = list(reference_problems(spec, "s.yaml", "spec.rayClusterConfig"))

    assert (problems[0].field, problems[0].message) == (f"{HEAD_CONTAINER}.{path}", message)


def test_a_redis_address_taken_from_a_config_map_is_checked_when_resolved() -> None:
    spec = cluster_spec(env=[from_config_map("RAY_REDIS_ADDRESS", "address")])

    resolution = resolve(spec, {SETTINGS: {"address": b"redis:notaport"}}, "default")

    assert resolution.missing[0].startswith(
        "the head's RAY_REDIS_ADDRESS, taken from a Secret or ConfigMap, is not a Redis address"
    )
    assert resolve(spec, {SETTINGS: {"address": b"redis.example:6380"}}, "default").missing == ()
