"""The requests of the controller's own Kubernetes-shaped API, as :class:`Call` values.

These are the paths the command line uses: apply (or preview) a manifest at
``/apis/ray.io/v1/namespaces/{ns}/rayservices/{name}`` or, for a ``kind: RayCluster``
document, ``.../rayclusters/{name}``, and Secrets and ConfigMaps under the core
``/api/v1/namespaces/{ns}/secrets|configmaps/{name}``; read a service, its events, logs and
rollout history; list the observed objects (``rayclusters`` under ``ray.io``, ``pods`` and
``services`` under the core ``/api/v1``). Answers are Kubernetes-shaped JSON objects, returned
as dicts. Pure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

import httpx

from rayservice.client.calls import Call, Reader, items, json_object, nothing, path, text
from rayservice.spec.autoscaling import AutoscalingState, ScaleRequest
from rayservice.spec.config_objects import CONFIG_PLURALS
from rayservice.spec.events import ObjectKind

T = TypeVar("T")

RAY = ("apis", "ray.io", "v1")
CORE = ("api", "v1")
RAY_PLURALS = {
    ObjectKind.RAY_SERVICE.value: "rayservices",
    ObjectKind.RAY_CLUSTER.value: "rayclusters",
}
_PLURAL_OF_CONFIG_KIND = {kind.value: plural for kind, plural in CONFIG_PLURALS.items()}
DRY_RUN_ALL = "All"  # the one dryRun value Kubernetes' API servers accept
HEALTH_TIMEOUT = 1.0


def plural_of(manifest: dict[str, Any]) -> str:
    """Where a document goes, by its kind. Any other kind goes to ``rayservices``, whose
    admission names the wrong kind with its file and field."""
    kind = str(manifest.get("kind"))
    return RAY_PLURALS.get(kind) or _PLURAL_OF_CONFIG_KIND.get(kind) or "rayservices"


def _ray(namespace: str, plural: str, *rest: str) -> str:
    return path(*RAY, "namespaces", namespace, plural, *rest)


def _object_path(namespace: str, plural: str, *rest: str) -> str:
    """Under ``ray.io`` for its kinds, under the core API for the others."""
    prefix = RAY if plural in RAY_PLURALS.values() else CORE
    return path(*prefix, "namespaces", namespace, plural, *rest)


def _service(namespace: str, name: str, *rest: str) -> str:
    return _ray(namespace, "rayservices", name, *rest)


def healthz() -> Call[bool]:
    """Whether a controller answers: never raises for an error status."""
    return Call(
        "GET", "/healthz", lambda r: r.status_code == 200, timeout=HEALTH_TIMEOUT, checked=False
    )


def apply(
    manifest: dict[str, Any], source: str, base_dir: str
) -> Call[tuple[dict[str, Any], list[str]]]:
    """Stores the manifest; answers the stored object and the warnings sent with it."""

    def read(response: httpx.Response) -> tuple[dict[str, Any], list[str]]:
        return json_object(response), _warnings(response)

    return _put_manifest(manifest, source, base_dir, {}, read)


def dry_run(
    manifest: dict[str, Any],
    source: str,
    base_dir: str,
    alongside: Sequence[dict[str, Any]] = (),
) -> Call[dict[str, Any]]:
    """What applying would change: kind, summary, fields, generation. Stores nothing. The
    Secrets and ConfigMaps ``alongside`` count as applied first (a RayService or RayCluster
    may take values from them)."""
    extra = {"alongside": list(alongside)} if alongside else {}
    return _put_manifest(manifest, source, base_dir, {"dryRun": DRY_RUN_ALL}, json_object, extra)


def _put_manifest(
    manifest: dict[str, Any],
    source: str,
    base_dir: str,
    params: dict[str, str | int],
    read: Reader[T],
    extra: Mapping[str, Any] | None = None,
) -> Call[T]:
    meta = manifest.get("metadata") or {}
    namespace = str(meta.get("namespace") or "default")
    where = _object_path(namespace, plural_of(manifest), str(meta.get("name", "")))
    body = {"manifest": manifest, "source": source, "baseDir": base_dir, **(extra or {})}
    return Call("PUT", where, read, params=params, body=body)


def get_service(namespace: str, name: str) -> Call[dict[str, Any]]:
    return Call("GET", _service(namespace, name), json_object)


def delete_service(namespace: str, name: str) -> Call[None]:
    return Call("DELETE", _service(namespace, name), nothing)


def dashboard(namespace: str, name: str) -> Call[dict[str, Any]]:
    """The dashboard URL of a RayService or RayCluster and the token Ray's login asks for."""
    return Call("GET", _ray(namespace, "dashboards", name), json_object)


def get_raycluster(namespace: str, name: str) -> Call[dict[str, Any]]:
    return Call("GET", _ray(namespace, "rayclusters", name), json_object)


def delete_raycluster(namespace: str, name: str) -> Call[None]:
    return Call("DELETE", _ray(namespace, "rayclusters", name), nothing)


def delete_document(manifest: dict[str, Any]) -> Call[None]:
    """Deletes the object a manifest names, at the path its kind chooses."""
    meta = manifest.get("metadata") or {}
    namespace = str(meta.get("namespace") or "default")
    where = _object_path(namespace, plural_of(manifest), str(meta.get("name", "")))
    return Call("DELETE", where, nothing)


def get_object(plural: str, namespace: str, name: str) -> Call[dict[str, Any]]:
    """One stored object of any kind the API keeps (a Secret or ConfigMap, for one)."""
    return Call("GET", _object_path(namespace, plural, name), json_object)


def delete_object(plural: str, namespace: str, name: str) -> Call[list[str]]:
    """Deletes a Secret or ConfigMap; answers the warnings sent back (what it does to the
    services that take values from it)."""
    return Call("DELETE", _object_path(namespace, plural, name), _warnings)


def rollout(namespace: str, name: str, verb: str) -> Call[dict[str, Any]]:
    return Call("POST", _service(namespace, name, "rollout", verb), json_object)


def rollout_history(namespace: str, name: str) -> Call[list[dict[str, Any]]]:
    return Call("GET", _service(namespace, name, "rollout", "history"), items)


def list_objects(plural: str, namespace: str | None) -> Call[list[dict[str, Any]]]:
    """``rayservices`` and ``rayclusters`` under ``ray.io``, anything else under the core API;
    every namespace when ``namespace`` is None or empty."""
    if namespace:
        return Call("GET", _object_path(namespace, plural), items)
    prefix = RAY if plural in RAY_PLURALS.values() else CORE
    return Call("GET", path(*prefix, plural), items)


def autoscaling_state(
    namespace: str, cluster: str, ray_status: bool = False
) -> Call[AutoscalingState]:
    """A cluster's nodes and the scale its Ray autoscaler last asked for; with
    ``ray_status`` also what ``ray status`` prints."""
    return Call(
        "GET",
        _object_path(namespace, "rayclusters", cluster, "autoscaling"),
        lambda response: AutoscalingState.model_validate(json_object(response)),
        params={"rayStatus": "true"} if ray_status else {},
    )


def request_scale(namespace: str, cluster: str, scale: ScaleRequest) -> Call[None]:
    """Ask the controller for workers per group and for given workers to go."""
    body = scale.model_dump(mode="json", by_alias=True)
    path_ = _object_path(namespace, "rayclusters", cluster, "autoscaling")
    return Call("PUT", path_, nothing, body=body)


def events(namespace: str, name: str) -> Call[list[dict[str, Any]]]:
    return Call("GET", _service(namespace, name, "events"), items)


def logs(namespace: str, name: str, pod: str | None, tail: int) -> Call[str]:
    params: dict[str, str | int] = {"tail": tail}
    if pod:
        params["pod"] = pod
    return Call("GET", _service(namespace, name, "logs"), text, params=params)


def _warnings(response: httpx.Response) -> list[str]:
    return [warning_text(header) for header in response.headers.get_list("warning")]


def warning_text(header: str) -> str:
    """The text of a ``Warning: 299 - "text"`` header."""
    code, _, rest = header.partition(" - ")
    return rest.strip().strip('"') if code.strip() == "299" else header
