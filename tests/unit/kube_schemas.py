"""Validate generated Kubernetes objects as a Kubernetes API server with strict field
validation would: built-in kinds with kubernetes-validate's strict schemas (the oldest and the
newest Kubernetes release it ships), custom resources with the openAPIV3Schema of their CRD
(KubeRay's from ``$KUBERAY_CRDS``, the Gateway API's from ``$GATEWAY_API_CRDS``; by default the
folders of ``../shared`` beside the repository; tests skip when they are absent).

A CRD's schema is made strict the way the API server applies it with ``fieldValidation=Strict``:
a field no ``properties`` names is refused unless the level preserves unknown fields, and
``x-kubernetes-int-or-string`` takes an integer or a string.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import kubernetes_validate  # type: ignore[import-untyped]
import pytest
import yaml
from kubernetes_validate.utils import all_versions  # type: ignore[import-untyped]

REPO = Path(__file__).resolve().parents[2]
KUBERAY_CRDS = Path(os.environ.get("KUBERAY_CRDS", REPO.parent / "shared" / "kuberay-crds"))
GATEWAY_CRDS = Path(os.environ.get("GATEWAY_API_CRDS", REPO.parent / "shared" / "gateway-api-crds"))
KUBERNETES_RELEASES = (all_versions()[0], all_versions()[-1])
CRD_FILES = {
    ("ray.io/v1", "RayCluster"): (KUBERAY_CRDS, "ray.io_rayclusters.yaml"),
    ("gateway.networking.k8s.io/v1", "HTTPRoute"): (
        GATEWAY_CRDS,
        "gateway.networking.k8s.io_httproutes.yaml",
    ),
    ("gateway.networking.k8s.io/v1", "Gateway"): (
        GATEWAY_CRDS,
        "gateway.networking.k8s.io_gateways.yaml",
    ),
}


def _strict(schema: Any) -> Any:
    if isinstance(schema, list):
        return [_strict(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    result = {key: _strict(value) for key, value in schema.items()}
    if result.pop("x-kubernetes-int-or-string", False):
        result.pop("type", None)
        result["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    preserves = result.get("x-kubernetes-preserve-unknown-fields", False)
    if "properties" in result and "additionalProperties" not in result and not preserves:
        result["additionalProperties"] = False
    return result


@functools.cache
def _crd_validator(folder: Path, file_name: str, version: str) -> Any:
    path = folder / file_name
    if not path.exists():
        pytest.skip(f"{file_name} is not in {folder} (set KUBERAY_CRDS or GATEWAY_API_CRDS)")
    crd = yaml.safe_load(path.read_text())
    schema = next(v for v in crd["spec"]["versions"] if v["name"] == version)
    return jsonschema.Draft7Validator(_strict(schema["schema"]["openAPIV3Schema"]))


def problems(obj: dict[str, Any]) -> list[str]:
    """Why a Kubernetes cluster would refuse ``obj`` (none: it would take it)."""
    key = (obj["apiVersion"], obj["kind"])
    if key in CRD_FILES:
        folder, file_name = CRD_FILES[key]
        validator = _crd_validator(folder, file_name, obj["apiVersion"].rpartition("/")[2])
        found = [
            f"{'.'.join(map(str, error.absolute_path))}: {error.message}"
            for error in validator.iter_errors(obj)
        ]
        return found + _metadata_problems(obj)
    found = []
    for release in KUBERNETES_RELEASES:
        try:
            kubernetes_validate.validate(obj, release, strict=True)
        except kubernetes_validate.ValidationError as error:
            found.append(f"Kubernetes {release}: {error.message}")
    return found


def _metadata_problems(obj: dict[str, Any]) -> list[str]:
    """A CRD leaves metadata to Kubernetes: check it as the ObjectMeta of a ConfigMap."""
    carrier = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": obj["metadata"]}
    return problems(carrier)
