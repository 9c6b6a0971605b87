"""Node resources from rayStartParams and the first container's limits and requests."""

from __future__ import annotations

from typing import Any

import pytest

from rayservice.spec.resources import NodeResources, node_resources, parse_custom_resources

GIB = 2**30


def pod(*containers: dict[str, Any]) -> dict[str, Any]:
    return {"spec": {"containers": list(containers)}}


def container(limits: dict[str, Any] | None = None, requests: dict[str, Any] | None = None) -> Any:
    resources = {"limits": limits or {}, "requests": requests or {}}
    return {"name": "ray", "resources": resources}


def test_nothing_given_means_one_cpu_and_memory_left_to_ray() -> None:
    assert node_resources({}, {}) == NodeResources(num_cpus=1.0, num_gpus=0.0, memory_bytes=None)


def test_container_limits_give_cpu_memory_and_gpus() -> None:
    template = pod(container(limits={"cpu": "2", "memory": "8Gi", "nvidia.com/gpu": 1}))

    resources = node_resources({}, template)

    assert (resources.num_cpus, resources.memory_bytes, resources.num_gpus) == (2.0, 8 * GIB, 1.0)


def test_requests_are_used_when_there_is_no_limit() -> None:
    template = pod(container(requests={"cpu": "500m", "memory": "1Gi"}))

    resources = node_resources({}, template)

    assert (resources.num_cpus, resources.memory_bytes) == (0.5, GIB)


def test_a_limit_wins_over_a_request() -> None:
    template = pod(container(limits={"cpu": "4"}, requests={"cpu": "1"}))

    assert node_resources({}, template).num_cpus == 4.0


def test_limits_and_requests_combine_per_resource() -> None:
    template = pod(container(limits={"cpu": "3"}, requests={"memory": "2Gi"}))

    resources = node_resources({}, template)

    assert (resources.num_cpus, resources.memory_bytes) == (3.0, 2 * GIB)


def test_only_the_first_container_counts() -> None:
    template = pod(container(limits={"cpu": "1"}), container(limits={"cpu": "8", "memory": "9Gi"}))

    resources = node_resources({}, template)

    assert (resources.num_cpus, resources.memory_bytes) == (1.0, None)


def test_ray_start_params_win_over_the_container() -> None:
    template = pod(container(limits={"cpu": "2", "memory": "8Gi", "nvidia.com/gpu": 1}))
    params = {"num-cpus": "6", "num-gpus": "0", "memory": "1073741824"}

    resources = node_resources(params, template)

    assert (resources.num_cpus, resources.num_gpus, resources.memory_bytes) == (6.0, 0.0, GIB)


def test_zero_cpus_on_the_head_is_kept() -> None:
    assert node_resources({"num-cpus": "0"}, pod(container(limits={"cpu": "2"}))).num_cpus == 0.0


def test_other_gpu_vendors_count_as_gpus() -> None:
    assert node_resources({}, pod(container(limits={"amd.com/gpu": "2"}))).num_gpus == 2.0


def test_custom_resources_come_from_the_resources_param() -> None:
    resources = node_resources({"resources": '{"TPU": 4, "accel": 0.5}'}, {})

    assert resources.custom == {"TPU": 4.0, "accel": 0.5}


def test_custom_resources_in_extra_quotes_are_unwrapped() -> None:
    assert parse_custom_resources('"{\\"TPU\\": 4}"') == {"TPU": 4.0}


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("{TPU: 4}", "not valid JSON"),
        ("[1, 2]", "not a JSON object"),
        ('{"TPU": -1}', "non-negative number"),
        ('{"TPU": "four"}', "non-negative number"),
        ('{"TPU": true}', "non-negative number"),
        ('{"CPU": 2}', "num-cpus"),
        ('{"GPU": 1}', "num-gpus"),
    ],
)
def test_bad_custom_resources_are_explained(text: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        parse_custom_resources(text)


def test_a_template_without_containers_gives_the_defaults() -> None:
    assert node_resources({}, {"spec": {"volumes": []}}).num_cpus == 1.0
