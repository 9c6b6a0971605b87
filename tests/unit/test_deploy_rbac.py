"""``deploy/rbac.yaml``: a valid ClusterRole that lets the controller make, change and delete
every kind of object ``render`` builds (for every sample, and for an incremental upgrade), and
read what it watches."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from rayservice.cli.render import rendered
from rayservice.kubernetes.objects import service_objects
from tests.unit.kube_schemas import problems
from tests.unit.test_kubernetes_objects import CLUSTER, incremental, loaded

REPO = Path(__file__).resolve().parents[2]
MANAGE = {"get", "list", "watch", "create", "update", "patch", "delete"}


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
    objects = [
        o for path in sorted((REPO / "samples").glob("*.yaml"))
        for o in rendered(path.read_text(), str(path))
    ] + service_objects(loaded(incremental(gatewayClassName="istio")), CLUSTER)  # fmt: skip
    return {(o["apiVersion"].rpartition("/")[0], o["kind"].lower() + "s") for o in objects}


def test_the_role_is_a_valid_cluster_role() -> None:
    assert role()["kind"] == "ClusterRole"
    assert problems(role()) == []


def test_every_kind_render_builds_can_be_managed() -> None:
    kinds = built_kinds()

    assert {"rayclusters", "services", "secrets", "gateways", "httproutes"} <= {
        resource for _, resource in kinds
    }
    assert {kind: MANAGE - granted(*kind) for kind in kinds} == {kind: set() for kind in kinds}


@pytest.mark.parametrize(
    ("resource", "verbs"),
    [
        ("pods", {"get", "list", "watch", "patch"}),
        ("pods/log", {"get"}),
        ("services/proxy", {"get", "create"}),
    ],
)
def test_pods_their_logs_and_the_dashboard_proxy_are_reachable(
    resource: str, verbs: set[str]
) -> None:
    assert verbs <= granted("", resource)
