"""The dry-run classifier: which kind of change an applied RayService brings, and its fields.

Each row of ``CASES`` edits a base manifest and states the kind and the exact causing fields
(path, before, after, group) in order; the summaries' notes are checked separately.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
import yaml

from rayservice.planner.change import (
    ABSENT,
    ChangeKind,
    FieldGroup,
    changed_leaves,
    classify_change,
)
from rayservice.spec.manifest import RayService, WorkerGroupSpec

Document = dict[str, Any]
Edit = Callable[[Document], None]
CLUSTER = FieldGroup.CLUSTER
WORKERS = FieldGroup.WORKERS
SERVE = FieldGroup.SERVE
SETTINGS = FieldGroup.SETTINGS
GROUPS = "spec.rayClusterConfig.workerGroupSpecs"
HEAD_CPUS = "spec.rayClusterConfig.headGroupSpec.rayStartParams.num-cpus"
PRICE = "spec.serveConfigV2.applications[0].deployments[0].user_config.price"


def serve_config(price: object = 3) -> Document:
    return {
        "applications": [
            {
                "name": "fruit_app",
                "import_path": "fruit:app",
                "route_prefix": "/fruit",
                "deployments": [{"name": "MangoStand", "user_config": {"price": price}}],
            }
        ]
    }


def worker_group(name: str = "small", replicas: int = 1) -> Document:
    return {"groupName": name, "replicas": replicas, "minReplicas": 0, "maxReplicas": 3}


def base_document() -> Document:
    return {
        "apiVersion": "ray.io/v1",
        "kind": "RayService",
        "metadata": {"name": "demo"},
        "spec": {
            "serveConfigV2": yaml.safe_dump(serve_config(), sort_keys=False),
            "rayClusterConfig": {
                "headGroupSpec": {"rayStartParams": {"num-cpus": "1"}, "template": {}},
                "workerGroupSpecs": [worker_group()],
            },
        },
    }


def service(*edits: Edit) -> RayService:
    document = copy.deepcopy(base_document())
    for edit in edits:
        edit(document)
    return RayService.model_validate(document)


def cluster(document: Document) -> Document:
    config: Document = document["spec"]["rayClusterConfig"]
    return config


def set_price(price: object) -> Edit:
    def edit(document: Document) -> None:
        document["spec"]["serveConfigV2"] = yaml.safe_dump(serve_config(price))

    return edit


def reformat_serve_config(document: Document) -> None:
    document["spec"]["serveConfigV2"] = (
        '{"applications": [{"route_prefix": "/fruit", "deployments": [{"user_config":'
        ' {"price": 3}, "name": "MangoStand"}], "import_path": "fruit:app",'
        ' "name": "fruit_app"}]}'
    )


def add_deployment(document: Document) -> None:
    config = serve_config()
    config["applications"][0]["deployments"].append({"name": "PearStand"})
    document["spec"]["serveConfigV2"] = yaml.safe_dump(config)


def write_defaults_out(document: Document) -> None:
    document["spec"]["rayClusterDeletionDelaySeconds"] = 60
    document["spec"]["upgradeStrategy"] = {"type": "NewCluster"}
    cluster(document)["workerGroupSpecs"][0]["suspend"] = False


def scale_to(replicas: int) -> Edit:
    def edit(document: Document) -> None:
        cluster(document)["workerGroupSpecs"][0]["replicas"] = replicas

    return edit


def delete_worker(document: Document) -> None:
    group = cluster(document)["workerGroupSpecs"][0]
    group["scaleStrategy"] = {"workersToDelete": ["demo-raycluster-bbbbb-small-0"]}


def suspend_cluster(document: Document) -> None:
    cluster(document)["suspend"] = True


def append_group(document: Document) -> None:
    cluster(document)["workerGroupSpecs"].append(worker_group("big", replicas=2))


def remove_groups(document: Document) -> None:
    cluster(document)["workerGroupSpecs"] = []


def head_cpus(document: Document) -> None:
    cluster(document)["headGroupSpec"]["rayStartParams"]["num-cpus"] = "2"


def worker_cpus(document: Document) -> None:
    cluster(document)["workerGroupSpecs"][0]["rayStartParams"] = {"num-cpus": "2"}


def deletion_delay(document: Document) -> None:
    document["spec"]["rayClusterDeletionDelaySeconds"] = 30


def strategy(type_: str, **options: int) -> Edit:
    def edit(document: Document) -> None:
        document["spec"]["upgradeStrategy"] = {"type": type_}
        if options:
            document["spec"]["upgradeStrategy"]["clusterUpgradeOptions"] = options

    return edit


def autoscaling(document: Document) -> None:
    cluster(document)["enableInTreeAutoscaling"] = True


def dumped_group(group: Document) -> Document:
    return WorkerGroupSpec.model_validate(group).model_dump(mode="json")


@dataclass(frozen=True)
class Case:
    id: str
    edits: tuple[Edit, ...]
    kind: ChangeKind
    fields: tuple[tuple[str, object, object, FieldGroup], ...] = ()


CASES = [
    Case("identical", (), ChangeKind.NO_OP),
    Case("serve-config-reformatted", (reformat_serve_config,), ChangeKind.NO_OP),
    Case("defaults-written-out", (write_defaults_out,), ChangeKind.NO_OP),
    Case("user-config", (set_price(4),), ChangeKind.SERVE_UPDATE, ((PRICE, 3, 4, SERVE),)),
    Case("int-to-float", (set_price(3.0),), ChangeKind.SERVE_UPDATE, ((PRICE, 3, 3.0, SERVE),)),
    Case(
        "deployment-added",
        (add_deployment,),
        ChangeKind.SERVE_UPDATE,
        (
            (
                "spec.serveConfigV2.applications[0].deployments[1]",
                ABSENT,
                {"name": "PearStand"},
                SERVE,
            ),
        ),
    ),
    Case(
        "replicas",
        (scale_to(2),),
        ChangeKind.WORKER_COUNT,
        ((f"{GROUPS}[0].replicas", 1, 2, WORKERS),),
    ),
    Case(
        "workers-to-delete",
        (delete_worker,),
        ChangeKind.WORKER_COUNT,
        (
            (
                f"{GROUPS}[0].scaleStrategy.workersToDelete[0]",
                ABSENT,
                "demo-raycluster-bbbbb-small-0",
                WORKERS,
            ),
        ),
    ),
    Case(
        "cluster-suspended",
        (suspend_cluster,),
        ChangeKind.WORKER_COUNT,
        (("spec.rayClusterConfig.suspend", False, True, WORKERS),),
    ),
    Case(
        "group-appended",
        (append_group,),
        ChangeKind.WORKER_COUNT,
        ((f"{GROUPS}[1]", ABSENT, dumped_group(worker_group("big", 2)), WORKERS),),
    ),
    Case(
        "group-appended-and-replicas",
        (append_group, scale_to(3)),
        ChangeKind.WORKER_COUNT,
        (
            (f"{GROUPS}[0].replicas", 1, 3, WORKERS),
            (f"{GROUPS}[1]", ABSENT, dumped_group(worker_group("big", 2)), WORKERS),
        ),
    ),
    Case(
        "group-appended-with-another-change",
        (append_group, worker_cpus),
        ChangeKind.NEW_CLUSTER,
        (
            (f"{GROUPS}[0].rayStartParams.num-cpus", ABSENT, "2", CLUSTER),
            (f"{GROUPS}[1]", ABSENT, dumped_group(worker_group("big", 2)), CLUSTER),
        ),
    ),
    Case(
        "group-removed",
        (remove_groups,),
        ChangeKind.NEW_CLUSTER,
        ((f"{GROUPS}[0]", dumped_group(worker_group()), ABSENT, CLUSTER),),
    ),
    Case("head-cpus", (head_cpus,), ChangeKind.NEW_CLUSTER, ((HEAD_CPUS, "1", "2", CLUSTER),)),
    Case(
        "everything",
        (deletion_delay, set_price(4), scale_to(2), head_cpus),
        ChangeKind.NEW_CLUSTER,
        (
            (HEAD_CPUS, "1", "2", CLUSTER),
            (f"{GROUPS}[0].replicas", 1, 2, WORKERS),
            (PRICE, 3, 4, SERVE),
            ("spec.rayClusterDeletionDelaySeconds", 60, 30, SETTINGS),
        ),
    ),
    Case(
        "workers-and-serve",
        (set_price(4), scale_to(2)),
        ChangeKind.WORKER_COUNT,
        ((f"{GROUPS}[0].replicas", 1, 2, WORKERS), (PRICE, 3, 4, SERVE)),
    ),
    Case(
        "serve-and-settings",
        (deletion_delay, set_price(4)),
        ChangeKind.SERVE_UPDATE,
        ((PRICE, 3, 4, SERVE), ("spec.rayClusterDeletionDelaySeconds", 60, 30, SETTINGS)),
    ),
    Case(
        "deletion-delay",
        (deletion_delay,),
        ChangeKind.SETTINGS,
        (("spec.rayClusterDeletionDelaySeconds", 60, 30, SETTINGS),),
    ),
    Case(
        "upgrade-strategy",
        (strategy("None"),),
        ChangeKind.SETTINGS,
        (("spec.upgradeStrategy.type", "NewCluster", "None", SETTINGS),),
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_kind_and_causing_fields(case: Case) -> None:
    change = classify_change(service(), service(*case.edits))

    assert change.kind is case.kind
    found = [(f.path, f.before, f.after, f.group) for f in change.fields]
    assert found == list(case.fields)


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_a_new_cluster_exactly_when_a_field_of_the_cluster_group_changes(case: Case) -> None:
    change = classify_change(service(), service(*case.edits))

    has_cluster_field = any(f.group is FieldGroup.CLUSTER for f in change.fields)
    assert (change.kind is ChangeKind.NEW_CLUSTER) == has_cluster_field


def test_a_service_not_stored_yet_is_created() -> None:
    change = classify_change(None, service())

    assert change.kind is ChangeKind.CREATE
    assert change.fields == ()
    assert "default/demo" in change.summary


def test_a_new_cluster_with_the_default_strategy_names_the_deletion_delay() -> None:
    change = classify_change(service(), service(head_cpus))

    assert "A new cluster is created" in change.summary
    assert "rayClusterDeletionDelaySeconds (60 s)" in change.summary


def test_a_cluster_change_under_strategy_none_says_it_will_not_be_applied() -> None:
    change = classify_change(service(), service(strategy("None"), head_cpus))

    assert change.kind is ChangeKind.HELD
    assert "will NOT be applied because spec.upgradeStrategy.type is None" in change.summary
    assert "Serve config" not in change.summary


def test_under_strategy_none_serve_changes_still_reach_the_running_cluster() -> None:
    change = classify_change(service(), service(strategy("None"), head_cpus, set_price(4)))

    assert "will NOT be applied" in change.summary
    assert "Serve config changes are still deployed to the running cluster" in change.summary


def test_strategy_none_without_a_cluster_change_has_no_warning() -> None:
    none = strategy("None")

    change = classify_change(service(none), service(none, set_price(4)))

    assert change.kind is ChangeKind.SERVE_UPDATE
    assert "NOT" not in change.summary


def test_an_incremental_upgrade_moves_traffic_in_steps() -> None:
    incremental = strategy(
        "NewClusterWithIncrementalUpgrade", stepSizePercent=25, intervalSeconds=30
    )

    change = classify_change(service(incremental), service(incremental, head_cpus))

    assert change.kind is ChangeKind.NEW_CLUSTER
    assert "in steps of 25% every 30 s" in change.summary


def test_an_incremental_upgrade_without_step_options_names_the_defaults() -> None:
    incremental = strategy("NewClusterWithIncrementalUpgrade")

    change = classify_change(service(incremental), service(incremental, head_cpus))

    assert "in steps of 10% (default) every 30 s (default)" in change.summary


def test_with_autoscaling_the_note_says_the_autoscaler_sets_the_counts() -> None:
    change = classify_change(service(autoscaling), service(autoscaling, scale_to(2)))

    assert change.kind is ChangeKind.WORKER_COUNT
    assert "Ray's autoscaler sets the worker counts" in change.summary
    assert "replicas is the count a cluster starts with" in change.summary


@pytest.mark.parametrize(
    ("before", "after"),
    [((), (scale_to(2),)), ((autoscaling,), (autoscaling, set_price(4)))],
    ids=["no-autoscaler", "autoscaler-but-no-worker-change"],
)
def test_no_autoscaler_note_without_autoscaler_and_worker_change(
    before: tuple[Edit, ...], after: tuple[Edit, ...]
) -> None:
    change = classify_change(service(*before), service(*after))

    assert "autoscaler" not in change.summary


def test_a_worker_change_with_a_serve_change_mentions_both() -> None:
    change = classify_change(service(), service(scale_to(2), set_price(4)))

    assert "worker groups change in place" in change.summary
    assert "new Serve config" in change.summary


def test_a_no_op_says_nothing_changes() -> None:
    assert classify_change(service(), service()).summary == "Nothing that takes effect changes."


# -- changed_leaves -----------------------------------------------------------------------


def test_changed_leaves_walks_mappings_and_lists() -> None:
    before = {"a": {"b": 1, "c": [1, 2]}, "same": "x"}
    after = {"same": "x", "a": {"c": [1], "b": 2}, "d": None}

    assert list(changed_leaves(before, after, "root")) == [
        ("root.a.b", 1, 2),
        ("root.a.c[1]", 2, ABSENT),
        ("root.d", ABSENT, None),
    ]


@pytest.mark.parametrize(
    ("before", "after"),
    [(1, 1.0), (1, True), (0, False), ("1", 1), ([], {}), (None, {})],
)
def test_changed_leaves_tells_apart_values_that_differ_in_json(
    before: object, after: object
) -> None:
    assert list(changed_leaves(before, after, "x")) == [("x", before, after)]


def test_changed_leaves_of_equal_values_is_empty() -> None:
    value = {"a": [1, {"b": True}], "c": None}

    assert list(changed_leaves(value, copy.deepcopy(value))) == []


def test_changed_leaves_quotes_keys_that_are_not_plain_names() -> None:
    [(path, _, _)] = changed_leaves({"nvidia.com/gpu": 1}, {"nvidia.com/gpu": 2}, "limits")

    assert path == 'limits["nvidia.com/gpu"]'
