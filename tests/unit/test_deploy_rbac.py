"""``deploy/rbac.yaml``: a valid ClusterRole that lets the controller make, change and delete
every kind of object ``render`` builds (for every sample, and for an incremental upgrade), and
grants all the start-up check asks for (``rayservice.kubernetes.access.NEEDED``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from rayservice.cli.render import rendered
from rayservice.kubernetes.access import MANAGE, NEEDED
from rayservice.kubernetes.objects import service_objects
from tests.unit.kube_schemas import problems
from tests.unit.test_kubernetes_objects import incremental, loaded, request_of

REPO = Path(__file__).resolve().parents[2]


def role() -> dict[str, Any]:
    [found] = list(yaml.safe_load_all((REPO / "deploy" / "rbac.yaml").read_text()))
    assert isinstance(found, dict)
    return found


def granted(group: str, resource: str) -> set[str]:
    return {
        verb
        for rule in role()["rules"]
        if group in rule["apiGroups"] and resource in rule["resources"]
        for verb in rule["verbs"]
    }


def built_kinds() -> set[tuple[str, str]]:
    service = loaded(incremental(gatewayClassName="istio"))
    objects = [
        o for path in sorted((REPO / "samples").glob("*.yaml"))
        for o in rendered(path.read_text(), str(path))
    ] + service_objects(service, request_of(service))  # fmt: skip
    return {(o["apiVersion"].rpartition("/")[0], o["kind"].lower() + "s") for o in objects}


def test_the_role_is_a_valid_cluster_role() -> None:
    assert role()["kind"] == "ClusterRole"
    assert problems(role()) == []


def test_every_kind_render_builds_can_be_managed() -> None:
    kinds = built_kinds()

    assert {"rayclusters", "services", "secrets", "gateways", "httproutes"} <= {
        resource for _, resource in kinds
    }
    assert {kind: set(MANAGE) - granted(*kind) for kind in kinds} == {kind: set() for kind in kinds}


def test_the_role_grants_everything_the_start_up_check_asks_for() -> None:
    lacking = {
        (permission.group, permission.resource): set(permission.verbs)
        - granted(permission.group, permission.resource)
        for permission in NEEDED
    }

    assert lacking == {key: set() for key in lacking}


def test_the_start_up_check_asks_for_every_kind_render_builds() -> None:
    asked = {(p.group, p.resource): set(p.verbs) for p in NEEDED}

    assert {kind: set(MANAGE) <= asked.get(kind, set()) for kind in built_kinds()} == {
        kind: True for kind in built_kinds()
    }
