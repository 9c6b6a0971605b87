"""GCS fault tolerance: the rules of :mod:`rayservice.spec.fault_tolerance` and what the planner
asks for.

Covers which Redis addresses rayservice runs itself (``redis_is_managed``), how an address is
parsed (``redis_location``), when fault tolerance is on (``is_enabled``), where the GCS state
lives in Redis (``storage_namespace``), every validation rule of ``problems`` with its exact
field path, and the ``FaultTolerance`` that ``cluster_request`` puts in a ClusterRequest
(managed or external Redis, the password, RocksDB, the namespace), including that the Redis
password never reaches the head's ``ray start`` parameters.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from rayservice.planner.cluster import cluster_request
from rayservice.spec.cluster_request import FaultTolerance
from rayservice.spec.fault_tolerance import (
    is_enabled,
    problems,
    redacted,
    redis_is_managed,
    redis_location,
    storage_namespace,
    summary,
)
from rayservice.spec.manifest import RayClusterSpec
from rayservice.spec.vocabulary import GcsBackend

FT = "ray.io/ft-enabled"
NAMESPACE_KEY = "ray.io/external-storage-namespace"
SOURCE = "svc.yaml"
PREFIX = "spec.rayClusterConfig"
OPTIONS = f"{PREFIX}.gcsFaultToleranceOptions"
HEAD_PARAMS = f"{PREFIX}.headGroupSpec.rayStartParams"
HEAD_ENV = f"{PREFIX}.headGroupSpec.template.spec.containers[0].env"


def make_spec(
    *,
    options: dict[str, Any] | None = None,
    env: dict[str, str] | None = None,
    params: dict[str, str] | None = None,
    head_annotations: dict[str, str] | None = None,
    head_template: dict[str, Any] | None = None,
    worker_annotations: dict[str, str] | None = None,
) -> RayClusterSpec:
    """A minimal cluster spec; the head's container gets ``env``, a worker group is added
    when ``worker_annotations`` is given (after a plain one, so that its index is 1)."""
    container: dict[str, Any] = {"name": "ray-head", "image": "rayproject/ray:2.9.0"}
    if env:
        container["env"] = [{"name": name, "value": value} for name, value in env.items()]
    template: dict[str, Any] = {"spec": {"containers": [container]}}
    if head_annotations is not None:
        template["metadata"] = {"annotations": head_annotations}
    document: dict[str, Any] = {
        "headGroupSpec": {
            "rayStartParams": params or {},
            "template": template if head_template is None else head_template,
        }
    }
    if options is not None:
        document["gcsFaultToleranceOptions"] = options
    if worker_annotations is not None:
        document["workerGroupSpecs"] = [
            {"groupName": "small", "replicas": 1, "rayStartParams": {}, "template": {}},
            {
                "groupName": "big",
                "replicas": 1,
                "rayStartParams": {},
                "template": {"metadata": {"annotations": worker_annotations}},
            },
        ]
    return RayClusterSpec.model_validate(document)


# --- redis_is_managed and redis_location -----------------------------------------------------


@pytest.mark.parametrize(
    ("address", "managed"),
    [
        ("", True),
        ("redis:6379", True),
        ("redis", True),
        ("redis://redis:6379", True),
        ("redis://:pw@redis-master.default.svc.cluster.local:6379/0", True),
        ("my-redis.ns.svc:6379", True),
        ("127.0.0.1:6379", False),
        ("localhost:6379", False),
        ("redis.example.com:6379", False),
        ("rediss://10.0.0.5:6380", False),
        ("redis:abc", False),
        ("redis.ns.svc:port", False),
    ],
)
def test_redis_is_managed(address: str, managed: bool) -> None:
    assert redis_is_managed(address) is managed


@pytest.mark.parametrize("address", ["[::1]:6379", "redis://[fd00::5]:6379"])
def test_an_ipv6_address_is_used_as_given(address: str) -> None:
    assert redis_is_managed(address) is False


@pytest.mark.parametrize(
    ("address", "location"),
    [
        ("", ("", 6379)),
        ("redis", ("redis", 6379)),
        ("redis:6380", ("redis", 6380)),
        (" 10.0.0.5:7000 ", ("10.0.0.5", 7000)),
        ("redis://redis-master:6379/0", ("redis-master", 6379)),
        ("redis://:pw@Redis.NS.svc:6390/2", ("redis.ns.svc", 6390)),
        ("redis://user:secret@redis.example.com", ("redis.example.com", 6379)),
        ("rediss://10.0.0.5:6380", ("10.0.0.5", 6380)),
    ],
)
def test_redis_location(address: str, location: tuple[str, int]) -> None:
    assert redis_location(address) == location


@pytest.mark.parametrize(
    "address", ["redis:abc", "redis://user:pw@redis:port/0", "redis:99999", "redis:0"]
)
def test_redis_location_refuses_a_bad_port(address: str) -> None:
    with pytest.raises(ValueError, match=r"[Pp]ort"):
        redis_location(address)


# --- is_enabled and storage_namespace --------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "annotations", "enabled"),
    [
        (make_spec(options={}), {}, True),
        (make_spec(options={"redisAddress": "redis:6379"}), {}, True),
        (make_spec(), {FT: "true"}, True),
        (make_spec(), {FT: "True"}, True),
        (make_spec(head_annotations={FT: "true"}), {}, True),
        (make_spec(), {FT: "false"}, False),
        (make_spec(head_annotations={FT: "false"}), {}, False),
        (make_spec(head_annotations={FT: "true"}), {FT: "false"}, False),  # the object's wins
        (make_spec(worker_annotations={FT: "true"}), {}, False),
        (make_spec(), {}, False),
    ],
)
def test_is_enabled(spec: RayClusterSpec, annotations: dict[str, str], enabled: bool) -> None:
    assert is_enabled(spec, annotations) is enabled


ENV_NAMESPACE = {"RAY_external_storage_namespace": "from-env"}


@pytest.mark.parametrize(
    ("spec", "annotations", "namespace"),
    [
        (
            make_spec(options={"externalStorageNamespace": "from-options"}, env=ENV_NAMESPACE),
            {NAMESPACE_KEY: "from-annotation"},
            "from-options-c1",
        ),
        (
            make_spec(options={}, env=ENV_NAMESPACE),
            {NAMESPACE_KEY: "from-annotation"},
            "from-annotation-c1",
        ),
        (make_spec(env=ENV_NAMESPACE), {NAMESPACE_KEY: "from-annotation"}, "from-annotation-c1"),
        (make_spec(env=ENV_NAMESPACE), {FT: "true"}, "from-env-c1"),
        (make_spec(options={}), {}, "c1"),
        (make_spec(), {NAMESPACE_KEY: ""}, "c1"),
    ],
)
def test_storage_namespace_always_holds_the_cluster_name(
    spec: RayClusterSpec, annotations: dict[str, str], namespace: str
) -> None:
    """Two clusters of one service (an upgrade) never share, nor wipe, each other's state."""
    assert storage_namespace(spec, annotations, "c1") == namespace


# --- problems --------------------------------------------------------------------------------

MALFORMED_TEMPLATES: list[dict[str, Any]] = [
    {"spec": {"containers": "not a list"}},
    {"spec": {"containers": []}},
    {"spec": {"containers": ["not a mapping"]}},
    {"spec": {"containers": [{"name": "ray-head", "env": "not a list"}]}},
    {"spec": "not a mapping", "metadata": "not a mapping"},
]


@pytest.mark.parametrize(
    ("spec", "annotations", "expected"),
    [
        (
            make_spec(options={"redisAddress": "redis:6379"}),
            {FT: "true"},
            [(OPTIONS, f"is set together with the annotation {FT}")],
        ),
        (
            make_spec(options={}, head_annotations={FT: "true"}),
            {},
            [(OPTIONS, f"is set together with the annotation {FT}")],
        ),
        (
            make_spec(env={"RAY_REDIS_ADDRESS": "redis:6379"}),
            {},
            [(HEAD_ENV, "RAY_REDIS_ADDRESS is set but GCS fault tolerance is not enabled")],
        ),
        (
            make_spec(params={"redis-username": "admin"}),
            {},
            [(HEAD_PARAMS, "a Redis username is set")],
        ),
        (
            make_spec(env={"REDIS_USERNAME": "admin"}, options={}),
            {},
            [(HEAD_PARAMS, "a Redis username is set")],
        ),
        (
            make_spec(options={"redisAddress": "redis:6379"}, params={"redis-password": "pw"}),
            {},
            [(f"{HEAD_PARAMS}.redis-password", "cannot be set when gcsFaultToleranceOptions")],
        ),
        *[
            (
                make_spec(options={"redisAddress": "redis:6379"}, env={name: "x:6379"}),
                {},
                [(HEAD_ENV, f"{name} cannot be set when gcsFaultToleranceOptions is set")],
            )
            for name in ("REDIS_PASSWORD", "RAY_REDIS_ADDRESS", "RAY_external_storage_namespace")
        ],
        (
            make_spec(options={"redisAddress": "redis:6379"}),
            {NAMESPACE_KEY: "ns"},
            [(f"metadata.annotations.{NAMESPACE_KEY}", "cannot be set when gcsFaultToleranceOpt")],
        ),
        *[
            (
                make_spec(options={"backend": "rocksdb", option: "x"}),
                {},
                [(f"{OPTIONS}.{option}", "applies to the redis backend only")],
            )
            for option in ("redisAddress", "redisPassword", "redisUsername")
        ],
        (
            make_spec(options={"backend": "rocksdb", "externalStorageNamespace": "ns"}),
            {},
            [(f"{OPTIONS}.externalStorageNamespace", "applies to the redis backend only")],
        ),
        *[
            (
                make_spec(options={"backend": "rocksdb"}, env={name: "/data"}),
                {},
                [(HEAD_ENV, f"{name} is chosen by rayservice with the rocksdb backend")],
            )
            for name in ("RAY_gcs_storage", "RAY_gcs_storage_path")
        ],
        (
            make_spec(options={"redisAddress": "redis:6379", "storage": {"size": "1Gi"}}),
            {},
            [(f"{OPTIONS}.storage", "applies to the rocksdb backend only")],
        ),
        (
            make_spec(options={"redisAddress": "redis:abc"}),
            {},
            [(f"{OPTIONS}.redisAddress", "'redis:abc' is not a Redis address")],
        ),
        (
            make_spec(env={"RAY_REDIS_ADDRESS": "redis:abc"}),
            {FT: "true"},
            [(HEAD_ENV, "'redis:abc' is not a Redis address")],
        ),
        (  # two rules at once, in the order they are checked
            make_spec(options={"redisAddress": "redis:6379"}, params={"redis-username": "u"}),
            {FT: "true"},
            [(OPTIONS, "together with the annotation"), (HEAD_PARAMS, "a Redis username")],
        ),
        # valid specs
        (make_spec(options={"redisAddress": "redis:6379"}), {}, []),
        (make_spec(options={"backend": "rocksdb", "storage": {"size": "1Gi"}}), {}, []),
        (
            make_spec(env={"RAY_REDIS_ADDRESS": "redis:6379"}, params={"redis-password": "pw"}),
            {FT: "true", NAMESPACE_KEY: "ns"},
            [],
        ),
        *[
            (make_spec(options={"redisAddress": "redis:6379"}, head_template=template), {}, [])
            for template in MALFORMED_TEMPLATES
        ],
    ],
)
def test_problems(
    spec: RayClusterSpec, annotations: dict[str, str], expected: Sequence[tuple[str, str]]
) -> None:
    found = list(problems(spec, annotations, SOURCE, PREFIX))
    assert [problem.field for problem in found] == [field for field, _ in expected]
    for problem, (_, message) in zip(found, expected, strict=True):
        assert message in problem.message
        assert problem.source == SOURCE
        assert problem.valid


def test_the_annotation_on_a_worker_template_is_a_problem() -> None:
    spec = make_spec(worker_annotations={FT: "true"})
    (problem,) = problems(spec, {}, SOURCE, "spec")
    assert problem.field.startswith("spec.workerGroupSpecs[1].template")
    assert FT in problem.field
    assert problem.message == "fault tolerance is a property of the cluster, not of a worker group"


def test_the_path_of_the_annotation_on_a_worker_template() -> None:
    spec = make_spec(worker_annotations={FT: "true"})
    (problem,) = problems(spec, {}, SOURCE, "spec")
    assert problem.field in {
        f'spec.workerGroupSpecs[1].template.metadata.annotations["{FT}"]',
        f"spec.workerGroupSpecs[1].template.metadata.annotations.{FT}",
    }


# --- cluster_request -------------------------------------------------------------------------


def managed(namespace: str = "c1") -> FaultTolerance:
    return FaultTolerance(managed_redis=True, storage_namespace=namespace)


@pytest.mark.parametrize(
    ("spec", "annotations", "expected"),
    [
        (make_spec(options={}), {}, managed()),
        (make_spec(options={"redisAddress": "redis:6379", "redisPassword": "pw"}), {}, managed()),
        (make_spec(), {FT: "true"}, managed()),
        (make_spec(head_annotations={FT: "true"}), {NAMESPACE_KEY: "kept"}, managed("kept-c1")),
        (
            make_spec(
                options={
                    "redisAddress": "10.0.0.5:6380",
                    "redisPassword": "s3cret",
                    "externalStorageNamespace": "shared",
                }
            ),
            {},
            FaultTolerance(
                redis_address="10.0.0.5:6380",
                redis_password="s3cret",
                storage_namespace="shared-c1",
            ),
        ),
        (
            make_spec(options={"redisAddress": "redis.example.com:6379"}),
            {},
            FaultTolerance(redis_address="redis.example.com:6379", storage_namespace="c1"),
        ),
        (
            make_spec(
                env={"RAY_REDIS_ADDRESS": "redis://redis.example.com:6379"},
                params={"redis-password": "from-params"},
            ),
            {FT: "true"},
            FaultTolerance(
                redis_address="redis://redis.example.com:6379",
                redis_password="from-params",
                storage_namespace="c1",
            ),
        ),
        (
            make_spec(options={"backend": "rocksdb"}),
            {},
            FaultTolerance(backend=GcsBackend.ROCKSDB, storage_namespace="c1"),
        ),
        (make_spec(), {}, None),
        (make_spec(env={"RAY_REDIS_ADDRESS": "10.0.0.5:6379"}), {FT: "false"}, None),
    ],
)
def test_cluster_request_fault_tolerance(
    spec: RayClusterSpec, annotations: dict[str, str], expected: FaultTolerance | None
) -> None:
    request = cluster_request("c1", "default/svc", spec, "hash", annotations=annotations)
    assert request.fault_tolerance == expected


def test_cluster_request_takes_a_password_in_kuberays_form() -> None:
    options = {"redisAddress": "10.0.0.5:6379", "redisPassword": {"value": "s3cret"}}
    request = cluster_request("c1", "default/svc", make_spec(options=options), "h", annotations={})
    assert request.fault_tolerance is not None
    assert request.fault_tolerance.redis_password == "s3cret"


@pytest.mark.parametrize("annotations", [{FT: "true"}, {}])
def test_the_redis_password_is_not_a_ray_start_param(annotations: dict[str, str]) -> None:
    params = {"redis-password": "pw", "log-style": "record"}
    spec = make_spec(env={"RAY_REDIS_ADDRESS": "10.0.0.5:6379"}, params=params)
    request = cluster_request("c1", "default/svc", spec, "hash", annotations=annotations)
    assert request.head.ray_start_params == {"log-style": "record"}


@pytest.mark.parametrize(
    ("options", "annotations", "expected"),
    [
        (None, {}, "off: the cluster starts over when its head is lost"),
        (
            {"backend": "rocksdb"},
            {},
            "on: embedded RocksDB files of the head, kept with the cluster",
        ),
        (
            {"redisAddress": "redis:6379"},
            {},
            "on: the Redis rayservice runs (loopback, $RAYSERVICE_HOME/redis; the manifest names "
            "'redis:6379', a Kubernetes Service)",
        ),
        (
            None,
            {FT: "true"},
            "on: the Redis rayservice runs (loopback, $RAYSERVICE_HOME/redis; none named)",
        ),
        ({"redisAddress": "10.0.0.5:6379"}, {}, "on: the Redis at 10.0.0.5:6379"),
    ],
    ids=["off", "rocksdb", "service-name", "annotation-only", "external"],
)
def test_describe_says_where_the_gcs_state_lives(
    options: dict[str, Any] | None, annotations: dict[str, str], expected: str
) -> None:
    assert summary(make_spec(options=options), annotations) == expected


@pytest.mark.parametrize(
    ("address", "shown"),
    [
        ("redis://:s3cret@10.0.0.5:6379/0", "redis://10.0.0.5:6379/0"),
        ("rediss://user:pw@redis.example.com:6380", "rediss://redis.example.com:6380"),
        ("user:pw@10.0.0.5:6379", "10.0.0.5:6379"),
        ("10.0.0.5:6379", "10.0.0.5:6379"),
    ],
)
def test_a_password_in_an_address_is_never_shown(address: str, shown: str) -> None:
    assert redacted(address) == shown
    spec = make_spec(options={"redisAddress": address})
    assert "pw" not in summary(spec, {}) and "s3cret" not in summary(spec, {})
