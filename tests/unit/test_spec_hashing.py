"""Cluster and Serve config hashes, and the detection of appended worker groups."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from rayservice.spec.hashing import cluster_spec_hash, is_worker_group_append, serve_config_hash
from rayservice.spec.manifest import RayClusterSpec

Document = dict[str, Any]


def group(name: str, cpus: str = "1") -> Document:
    return {
        "groupName": name,
        "replicas": 1,
        "minReplicas": 0,
        "maxReplicas": 4,
        "rayStartParams": {"num-cpus": cpus},
        "template": {"spec": {"containers": [{"name": "ray-worker", "image": "ray:2.60.0"}]}},
    }


def cluster_document() -> Document:
    return {
        "rayVersion": "2.60.0",
        "headGroupSpec": {"rayStartParams": {"num-cpus": "0"}, "template": {}},
        "workerGroupSpecs": [group("small")],
    }


def spec_of(document: Document) -> RayClusterSpec:
    return RayClusterSpec.model_validate(document)


def changed(change: Callable[[Document], None]) -> RayClusterSpec:
    document = copy.deepcopy(cluster_document())
    change(document)
    return spec_of(document)


BASE = spec_of(cluster_document())


def first_group(document: Document) -> Document:
    worker: Document = document["workerGroupSpecs"][0]
    return worker


def test_the_hash_is_16_hex_characters_and_stable() -> None:
    digest = cluster_spec_hash(BASE)

    assert len(digest) == 16
    assert set(digest) <= set("0123456789abcdef")
    assert cluster_spec_hash(spec_of(cluster_document())) == digest


@pytest.mark.parametrize(
    "change",
    [
        lambda d: first_group(d).update(replicas=3),
        lambda d: first_group(d).update(minReplicas=1),
        lambda d: first_group(d).update(maxReplicas=10),
        lambda d: first_group(d).update(scaleStrategy={"workersToDelete": ["worker-abc"]}),
        lambda d: first_group(d).update(suspend=True),
        lambda d: d.update(suspend=True),
    ],
    ids=["replicas", "minReplicas", "maxReplicas", "workersToDelete", "group-suspend", "suspend"],
)
def test_scaling_changes_keep_the_hash(change: Callable[[Document], None]) -> None:
    assert cluster_spec_hash(changed(change)) == cluster_spec_hash(BASE)


@pytest.mark.parametrize(
    "change",
    [
        lambda d: first_group(d)["rayStartParams"].update({"num-cpus": "2"}),
        lambda d: d["headGroupSpec"]["rayStartParams"].update({"num-gpus": "1"}),
        lambda d: first_group(d)["template"]["spec"]["containers"][0].update(image="ray:2.61.0"),
        lambda d: d.update(rayVersion="2.61.0"),
        lambda d: d["workerGroupSpecs"].append(group("large")),
    ],
    ids=["worker-param", "head-param", "image", "rayVersion", "new-group"],
)
def test_other_changes_change_the_hash(change: Callable[[Document], None]) -> None:
    assert cluster_spec_hash(changed(change)) != cluster_spec_hash(BASE)


def test_writing_a_default_explicitly_keeps_the_hash() -> None:
    def write_defaults(document: Document) -> None:
        document["enableInTreeAutoscaling"] = False
        first_group(document)["numOfHosts"] = 1

    assert cluster_spec_hash(changed(write_defaults)) == cluster_spec_hash(BASE)


def test_a_number_written_as_a_yaml_int_keeps_the_hash() -> None:
    spec = changed(lambda d: first_group(d)["rayStartParams"].update({"num-cpus": 1}))

    assert cluster_spec_hash(spec) == cluster_spec_hash(BASE)


def test_serve_config_hash_ignores_key_order() -> None:
    first = {"applications": [{"name": "a", "import_path": "m:a"}], "proxy_location": "HeadOnly"}
    second = {"proxy_location": "HeadOnly", "applications": [{"import_path": "m:a", "name": "a"}]}

    assert serve_config_hash(first) == serve_config_hash(second)


def test_serve_config_hash_follows_user_config() -> None:
    def config(price: int) -> Document:
        return {"applications": [{"name": "a", "deployments": [{"user_config": {"price": price}}]}]}

    assert serve_config_hash(config(3)) != serve_config_hash(config(4))


def test_appending_a_group_is_an_append() -> None:
    appended = changed(lambda d: d["workerGroupSpecs"].append(group("large")))

    assert is_worker_group_append(BASE, appended)


def test_appending_with_scaling_changes_is_still_an_append() -> None:
    def append_and_scale(document: Document) -> None:
        first_group(document).update(replicas=4, scaleStrategy={"workersToDelete": ["w"]})
        document["workerGroupSpecs"].append(group("large"))

    assert is_worker_group_append(BASE, changed(append_and_scale))


def test_an_unchanged_spec_is_not_an_append() -> None:
    assert not is_worker_group_append(BASE, spec_of(cluster_document()))


def test_inserting_a_group_before_existing_ones_is_not_an_append() -> None:
    inserted = changed(lambda d: d["workerGroupSpecs"].insert(0, group("large")))

    assert not is_worker_group_append(BASE, inserted)


def test_changing_an_existing_group_while_appending_is_not_an_append() -> None:
    def change_and_append(document: Document) -> None:
        first_group(document)["rayStartParams"]["num-cpus"] = "2"
        document["workerGroupSpecs"].append(group("large"))

    assert not is_worker_group_append(BASE, changed(change_and_append))


def test_changing_the_head_while_appending_is_not_an_append() -> None:
    def change_and_append(document: Document) -> None:
        document["headGroupSpec"]["rayStartParams"]["num-cpus"] = "1"
        document["workerGroupSpecs"].append(group("large"))

    assert not is_worker_group_append(BASE, changed(change_and_append))


def test_removing_a_group_is_not_an_append() -> None:
    assert not is_worker_group_append(BASE, changed(lambda d: d["workerGroupSpecs"].clear()))
