"""Operator control of a rollout through the REST API and the CLI's text: pause, resume,
promote, undo and history are stored changes to the RayService, never calls into the loop."""

from __future__ import annotations

from typing import Any

from rayservice.cli.rollout import history_text, status_text
from rayservice.spec.vocabulary import KIND, AnnotationKey
from tests.unit import test_api
from tests.unit.test_api import DEMO, Api, edited, manifest

PAUSE_ANNOTATION = AnnotationKey.ROLLOUT_PAUSED
PROMOTE_ANNOTATION = AnnotationKey.ROLLOUT_PROMOTE

api = test_api.api  # the in-process API fixture, shared

ROLLOUT = f"{DEMO}/rollout"


def more_head_cpus(document: dict[str, Any]) -> None:
    document["spec"]["rayClusterConfig"]["headGroupSpec"]["rayStartParams"]["num-cpus"] = "2"


def stored_annotations(api: Api) -> dict[str, str]:
    stored = api.store.get(KIND, "default", "demo")
    assert stored is not None
    return dict(stored.manifest["metadata"].get("annotations", {}))


def test_pause_and_resume_set_and_clear_the_annotation_without_a_new_generation(api: Api) -> None:
    api.put(manifest())

    paused = api.client.post(f"{ROLLOUT}/pause")
    assert paused.status_code == 200
    assert paused.json()["message"] == "rollout paused"
    assert stored_annotations(api) == {PAUSE_ANNOTATION: "true"}
    assert paused.json()["object"]["metadata"]["generation"] == 1
    assert api.wakes, "the loop is woken to act on it"

    api.client.post(f"{ROLLOUT}/resume")
    assert stored_annotations(api) == {}


def slot(name: str) -> dict[str, Any]:
    return {"name": name, "spec_hash": "h", "cluster_spec": {"headGroupSpec": {}}}


def write_rollout(api: Api, phase: str) -> None:
    """The controller's record: demo-raycluster-a active, demo-raycluster-b pending."""
    record = {
        "phase": phase,
        "active": slot("demo-raycluster-a"),
        "pending": slot("demo-raycluster-b"),
    }
    api.store.write_record(KIND, "default", "demo", record)


def test_promote_names_the_pending_cluster_and_needs_one(api: Api) -> None:
    api.put(manifest())

    refused = api.client.post(f"{ROLLOUT}/promote")
    assert refused.status_code == 409
    assert "nothing to promote" in refused.json()["detail"]

    write_rollout(api, "Starting")
    promoted = api.client.post(f"{ROLLOUT}/promote")
    assert promoted.status_code == 200
    assert stored_annotations(api) == {PROMOTE_ANNOTATION: "demo-raycluster-b"}


def test_promote_is_refused_while_a_rollback_is_in_progress(api: Api) -> None:
    api.put(manifest())
    write_rollout(api, "RollingBack")

    refused = api.client.post(f"{ROLLOUT}/promote")

    assert refused.status_code == 409
    assert refused.json()["detail"] == (
        "default/demo is rolling back from demo-raycluster-b; apply its spec again to go on"
    )
    assert stored_annotations(api) == {}

    write_rollout(api, "Stepping")
    assert api.client.post(f"{ROLLOUT}/promote").status_code == 200
    assert stored_annotations(api) == {PROMOTE_ANNOTATION: "demo-raycluster-b"}


def test_undo_applies_the_previous_spec_as_a_new_generation(api: Api) -> None:
    api.put(manifest())
    api.put(edited(more_head_cpus))
    api.client.post(f"{ROLLOUT}/pause")  # an annotation change is not a spec to go back to

    undone = api.client.post(f"{ROLLOUT}/undo")

    assert undone.status_code == 200
    assert undone.json()["message"] == "spec of generation 1 applied as generation 3"
    stored = api.store.get(KIND, "default", "demo")
    assert stored is not None
    assert stored.manifest["spec"] == manifest()["spec"]
    assert stored.generation == 3
    assert stored_annotations(api) == {PAUSE_ANNOTATION: "true"}, "metadata is kept"
    history = api.client.get(f"{ROLLOUT}/history").json()["items"]
    assert [i["generation"] for i in history] == [1, 2, 3]
    assert history[2]["source"].startswith("rollout undo to generation 1")


def test_undo_without_an_earlier_spec_is_refused(api: Api) -> None:
    api.put(manifest())

    refused = api.client.post(f"{ROLLOUT}/undo")

    assert refused.status_code == 409
    assert "no earlier spec" in refused.json()["detail"]


def test_unknown_verb_and_unknown_service(api: Api) -> None:
    api.put(manifest())

    assert api.client.post(f"{ROLLOUT}/restart").status_code == 409
    missing = "/apis/ray.io/v1/namespaces/default/rayservices/nope/rollout/pause"
    assert api.client.post(missing).status_code == 404


def test_status_text_during_an_incremental_upgrade() -> None:
    obj = {
        "metadata": {"name": "demo", "annotations": {PAUSE_ANNOTATION: "true"}},
        "spec": {"upgradeStrategy": {"type": "NewClusterWithIncrementalUpgrade"}},
        "status": {
            "conditions": [
                {
                    "type": "UpgradeInProgress",
                    "status": "True",
                    "reason": "BothActivePendingClustersExist",
                    "message": "moving to pending cluster demo-b: ready",
                },
                {
                    "type": "RollbackInProgress",
                    "status": "False",
                    "reason": "NoRollback",
                    "message": "no rollback in progress",
                },
            ],
            "activeServiceStatus": {
                "rayClusterName": "demo-a",
                "trafficRoutedPercent": 70,
                "targetCapacity": 100,
            },
            "pendingServiceStatus": {
                "rayClusterName": "demo-b",
                "trafficRoutedPercent": 30,
                "targetCapacity": 50,
                "applicationStatuses": {"fruit_app": {"status": "RUNNING"}},
            },
        },
    }

    lines = status_text(obj).splitlines()

    assert lines[0] == (
        "demo: upgrade in progress (upgradeStrategy NewClusterWithIncrementalUpgrade), paused"
    )
    assert lines[1].split() == ["active", "demo-a", "traffic", "70%", "capacity", "100%"]
    assert lines[2].split()[:6] == ["pending", "demo-b", "traffic", "30%", "capacity", "50%"]
    assert "fruit_app RUNNING" in lines[2]
    assert lines[3] == "  UpgradeInProgress: moving to pending cluster demo-b: ready"


def test_history_text_lists_generations() -> None:
    text = history_text(
        [
            {"generation": 1, "source": "a.yaml", "appliedAt": 0.0},
            {"generation": 2, "source": "b.yaml", "appliedAt": 0.0},
        ]
    )

    assert [line.split()[0] for line in text.splitlines()] == ["GENERATION", "1", "2"]


def test_a_cluster_change_held_by_upgrade_strategy_none_is_a_warning(api: Api) -> None:
    def held(document: dict[str, Any]) -> None:
        more_head_cpus(document)
        document["spec"]["upgradeStrategy"] = {"type": "None"}

    api.put(manifest())
    quiet = api.put(edited(lambda d: d["spec"].update(upgradeStrategy={"type": "None"})))
    warned = api.put(edited(held))

    assert "warning" not in quiet.headers
    assert warned.status_code == 200
    [header] = warned.headers.get_list("warning")
    assert header.startswith('299 - "demo.yaml: spec.rayClusterConfig changed')
    assert "upgradeStrategy.type is None" in header


def test_status_text_without_a_rollout_is_two_lines() -> None:
    obj = {
        "metadata": {"name": "demo"},
        "spec": {},
        "status": {
            "conditions": [
                {
                    "type": "UpgradeInProgress",
                    "status": "False",
                    "reason": "NoPendingCluster",
                    "message": "the active cluster matches rayClusterConfig",
                },
                {
                    "type": "RollbackInProgress",
                    "status": "False",
                    "reason": "NoRollback",
                    "message": "no rollback in progress",
                },
            ],
            "activeServiceStatus": {"rayClusterName": "demo-a"},
        },
    }

    assert status_text(obj).splitlines() == [
        "demo: no rollout in progress (upgradeStrategy NewCluster)",
        "  active   demo-a",
    ]


def test_status_text_tells_a_held_change() -> None:
    obj = {
        "metadata": {"name": "demo"},
        "spec": {"upgradeStrategy": {"type": "None"}},
        "status": {
            "conditions": [
                {
                    "type": "UpgradeInProgress",
                    "status": "False",
                    "reason": "UpgradeStrategyNone",
                    "message": "the change is not applied",
                },
            ],
            "activeServiceStatus": {"rayClusterName": "demo-a"},
        },
    }

    assert status_text(obj).splitlines()[-1] == "  UpgradeInProgress: the change is not applied"
