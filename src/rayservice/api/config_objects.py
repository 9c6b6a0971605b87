"""Secrets and ConfigMaps on the core API, as Kubernetes' API server serves them.

``/api/v1/namespaces/{ns}/secrets/{name}`` and ``.../configmaps/{name}``: PUT applies one
(``?dryRun=All`` only answers what applying would change, naming keys, never values), GET reads
one or lists them (in a namespace, or everywhere at ``/api/v1/secrets``), DELETE removes one.
They are checked by :mod:`rayservice.spec.config_objects` before anything is stored; the loop
is woken on every change, as RayServices may take values from them. What a change does to
those (a new cluster, a held change, a cluster that cannot start) is said in the dry run's
summary, and as warnings of an apply or a delete.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Annotated, Any

from fastapi import Body, FastAPI, HTTPException, Query, Response

from rayservice.api.objects import (
    add_warning,
    applied_document,
    change_object,
    check_dry_run_value,
    config_object,
    list_object,
)
from rayservice.kubeapi.mirror import ConfigMirror
from rayservice.planner.record import load_record
from rayservice.planner.value_change import Referrer, classify_config_change, referrer_effects
from rayservice.spec.config_objects import (
    CONFIG_PLURALS,
    changed_fields,
    environment_values,
    immutability_problem,
    is_config_object,
    load_config_object,
    values,
)
from rayservice.spec.errors import InvalidSpec, SpecProblem
from rayservice.spec.events import ObjectKind
from rayservice.spec.manifest import RayCluster, RayService
from rayservice.spec.references import Resolve, Source, as_written, resolve_manifest
from rayservice.store.base import Store
from rayservice.store.referenced import namespace_values

CORE = "/api/v1"


def add_config_object_routes(
    app: FastAPI, store: Store, wake: Callable[[], None], mirror: ConfigMirror | None = None
) -> None:
    """The routes; with ``mirror`` (the Kubernetes backend) every change is made in the
    Kubernetes cluster first, so the pods find what they refer to."""
    for kind, plural in CONFIG_PLURALS.items():
        _add_routes(app, store, wake, plural, kind, mirror)


def _add_routes(
    app: FastAPI,
    store: Store,
    wake: Callable[[], None],
    plural: str,
    kind: ObjectKind,
    mirror: ConfigMirror | None,
) -> None:
    one = f"{CORE}/namespaces/{{namespace}}/{plural}/{{name}}"
    # with a mirror the pods read the values (Kubernetes), else the controller writes them in
    resolve = as_written if mirror is not None else resolve_manifest

    def missing(namespace: str, name: str) -> HTTPException:
        return HTTPException(404, f'{plural} "{name}" not found in namespace "{namespace}"')

    def apply(
        namespace: str,
        name: str,
        body: Annotated[dict[str, Any], Body()],
        response: Response,
        dry_run: Annotated[str | None, Query(alias="dryRun")] = None,
    ) -> dict[str, Any]:
        document, source, _ = applied_document(body, namespace)
        for field, wanted in (("apiVersion", "v1"), ("kind", kind)):
            if document.get(field) != wanted:
                found = document.get(field)
                raise InvalidSpec([SpecProblem(source, field, f"is {found!r} here", wanted)])
        stored_form = load_config_object(document, source)
        meta = stored_form["metadata"]
        for field, wanted in (("namespace", namespace), ("name", name)):
            if meta[field] != wanted:
                problem = SpecProblem(
                    source,
                    f"metadata.{field}",
                    f"is {meta[field]!r}",
                    f"{wanted} (the request path)",
                )
                raise InvalidSpec([problem])
        current = store.get(kind, namespace, name)
        if current is not None:
            refused = immutability_problem(current.manifest, stored_form, source)
            if refused is not None:
                raise InvalidSpec([refused])
        effects = _effects(store, kind, namespace, name, stored_form, resolve)
        if dry_run is not None:
            check_dry_run_value(dry_run)
            before = values(current.manifest) if current is not None else None
            others = changed_fields(current.manifest, stored_form) if current is not None else []
            change = classify_config_change(
                f"{namespace}/{name}", kind, before, values(stored_form), others, effects
            )
            return change_object(change, 1)
        if mirror is not None:
            mirror.put(stored_form)
        stored = store.apply(kind, stored_form, source, time.time())
        wake()
        for effect in effects:
            add_warning(response, effect)
        return config_object(stored)

    def get(namespace: str, name: str) -> dict[str, Any]:
        stored = store.get(kind, namespace, name)
        if stored is None:
            raise missing(namespace, name)
        return config_object(stored)

    def list_in(namespace: str) -> dict[str, Any]:
        return list_object(kind, [config_object(r) for r in store.list_resources(kind, namespace)])

    def list_everywhere() -> dict[str, Any]:
        return list_object(kind, [config_object(r) for r in store.list_resources(kind)])

    def delete(namespace: str, name: str, response: Response) -> dict[str, Any]:
        if store.get(kind, namespace, name) is None:
            raise missing(namespace, name)
        effects = _effects(store, kind, namespace, name, None, resolve)
        if mirror is not None:
            mirror.remove(kind, namespace, name)
        store.remove(kind, namespace, name)
        wake()
        for effect in effects:
            add_warning(response, effect)
        return {"kind": "Status", "apiVersion": "v1", "status": "Success"}

    app.add_api_route(one, apply, methods=["PUT"])
    app.add_api_route(one, get, methods=["GET"])
    app.add_api_route(one, delete, methods=["DELETE"])
    app.add_api_route(f"{CORE}/namespaces/{{namespace}}/{plural}", list_in, methods=["GET"])
    app.add_api_route(f"{CORE}/{plural}", list_everywhere, methods=["GET"])


def alongside_values(body: dict[str, Any], namespace: str) -> dict[Source, Mapping[str, bytes]]:
    """The Secrets and ConfigMaps of ``namespace`` sent with a dry run in the request's
    ``alongside`` list: the objects of the same file, applied with it, which a RayService there
    may refer to before they are stored. Each is checked as its own apply would check it."""
    items = body.get("alongside") or []
    if not isinstance(items, list) or not all(is_config_object(item) for item in items):
        raise HTTPException(400, "alongside must be a list of v1 Secrets and ConfigMaps")
    source = str(body.get("source") or "<request body>")
    found: dict[Source, Mapping[str, bytes]] = {}
    for item in items:
        stored = load_config_object(item, source)
        if stored["metadata"].get("namespace") == namespace:
            found[Source(ObjectKind(stored["kind"]), stored["metadata"]["name"])] = (
                environment_values(stored)
            )
    return found


def _effects(
    store: Store,
    kind: ObjectKind,
    namespace: str,
    name: str,
    new: dict[str, Any] | None,
    resolve: Resolve,
) -> list[str]:
    """What storing ``new`` as the object (None: deleting it) does to the RayServices and
    RayClusters of ``namespace`` that take values from it, as the backend takes values
    (``resolve``: on Kubernetes the pods read them, and a change makes no new cluster)."""
    source = Source(kind, name)
    before = namespace_values(store, namespace)
    after = {other: found for other, found in before.items() if other != source}
    if new is not None:
        after[source] = environment_values(new)
    referrers = [
        Referrer(
            RayService.model_validate(resource.manifest),
            load_record(resource.record) if resource.record else None,
        )
        for resource in store.list_resources(ObjectKind.RAY_SERVICE, namespace)
        if not resource.deleting
    ]
    referrers += [
        Referrer(RayCluster.model_validate(resource.manifest))
        for resource in store.list_resources(ObjectKind.RAY_CLUSTER, namespace)
        if not resource.deleting
    ]
    return referrer_effects(source, namespace, before, after, referrers, resolve)
