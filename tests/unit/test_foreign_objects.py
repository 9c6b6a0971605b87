"""Which objects of a manifest file apply skips, and how it names them."""

from __future__ import annotations

from typing import Any

import pytest

from rayservice.spec.foreign_objects import not_run_here, object_label


@pytest.mark.parametrize(
    ("document", "label"),
    [
        ({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "redis"}}, "service/redis"),
        (
            {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "redis"}},
            "deployment.apps/redis",
        ),
        (
            {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {}},
            "role.rbac.authorization.k8s.io/<unnamed>",
        ),
        (
            {"apiVersion": "scheduling.volcano.sh/v1beta1", "kind": "Queue"},
            "queue.scheduling.volcano.sh/<unnamed>",
        ),
    ],
)
def test_objects_outside_ray_io_are_skipped_and_named_as_kubectl_does(
    document: dict[str, Any], label: str
) -> None:
    reason = not_run_here(document)

    assert reason == (
        f"{document['kind']} objects ({document['apiVersion']}) are not applied on this"
        " machine; only ray.io objects, Secrets and ConfigMaps are"
    )
    assert object_label(document) == label


@pytest.mark.parametrize(
    "document",
    [
        {"apiVersion": "ray.io/v1", "kind": "RayService"},
        # kept as objects of their own
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "pw"}},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings"}},
        # a ray.io kind we do not know is refused by admission, not skipped
        {"apiVersion": "ray.io/v1", "kind": "RayServise"},
        # so is one of KubeRay's kinds under another apiVersion
        {"apiVersion": "v1", "kind": "RayService"},
        {"apiVersion": "ray.io/v1alpha1", "kind": "RayJob"},
        # too broken to tell what it is: admission says what is wrong
        {"kind": "Deployment"},
        {"apiVersion": "apps/v1"},
        {"apiVersion": "apps/v1", "kind": ""},
        ["not", "a", "mapping"],
        "text",
    ],
)
def test_ray_io_objects_config_objects_and_malformed_ones_are_not_skipped(document: object) -> None:
    assert not_run_here(document) is None
