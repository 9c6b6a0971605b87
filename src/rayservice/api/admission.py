"""Admission of an applied RayService or RayCluster: validate, package local code, check names
and ports, then store.

Everything that can be wrong with user input is found here, before anything is stored, so a
refused apply changes nothing. Problems name the file, the field path and what would be valid.
A dry run passes the same checks and then, instead of storing, tells what applying would change.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from rayservice.api.packaging import files_pods_cannot_read, resolve_working_dirs
from rayservice.host.ports import port_is_free
from rayservice.kubernetes.objects import kubernetes_problems
from rayservice.planner.change import (
    Change,
    ChangeKind,
    classify_change,
    classify_cluster_change,
)
from rayservice.planner.record import ServiceRecord, load_record
from rayservice.spec.errors import InvalidSpec, RayServiceError, SpecProblem
from rayservice.spec.events import ObjectKind
from rayservice.spec.ignored import FIXED_PORT_PARAMS, ignored_fields
from rayservice.spec.loader import load_manifest
from rayservice.spec.manifest import (
    Manifest,
    RayCluster,
    RayClusterSpec,
    RayService,
    requested_serve_port,
)
from rayservice.spec.references import (
    NOTHING_FOUND,
    Found,
    Resolve,
    as_written,
    cluster_spec_of,
    resolve_manifest,
    sources,
)
from rayservice.spec.service_exposure import (
    ExposureSettings,
    exposure_warnings,
    port_ask,
    serve_service_exists,
)
from rayservice.spec.service_exposure import exposure as service_exposure
from rayservice.spec.vocabulary import KIND, ServicePort
from rayservice.store.base import Store, StoredResource, generation_after_apply
from rayservice.store.referenced import referenced

InCluster = Callable[[str, str, str], Mapping[str, bytes] | None]
"""The values of the Kubernetes cluster's Secret or ConfigMap (kind, namespace, name), if any."""


def with_packaged_working_dirs(
    document: dict[str, Any],
    base_dir: Path,
    packages: Path,
    source: str,
    *,
    may_read_local_paths: bool,
) -> dict[str, Any]:
    """The manifest with local working_dirs replaced by content-addressed package URIs.

    A serveConfigV2 that does not parse is left alone: validation reports it precisely.
    """
    spec = document.get("spec")
    text = spec.get("serveConfigV2") if isinstance(spec, dict) else None
    if not isinstance(text, str):
        return document
    try:
        config = yaml.safe_load(text)
    except yaml.YAMLError:
        return document
    if not isinstance(config, dict):
        return document
    resolved = resolve_working_dirs(
        config, base_dir, packages, source, may_read_local_paths=may_read_local_paths
    )
    if resolved == config:
        return document
    result = copy.deepcopy(document)
    result["spec"]["serveConfigV2"] = yaml.safe_dump(resolved, sort_keys=False)
    return result


def _port_problems(
    service: RayService, store: Store, source: str, exposure: ExposureSettings
) -> list[SpecProblem]:
    requested = requested_serve_port(service)
    if requested is None:
        return []
    index, wanted = requested
    holders = [r for r in store.list_resources(KIND) if r.record.get("serve_port") == wanted]
    if any(r.key == service.key for r in holders):
        return []
    address = service_exposure(service, ServicePort.SERVE, exposure).address
    if holders or not port_is_free(wanted, address):
        return [
            SpecProblem(
                source,
                f"spec.serveService.spec.ports[{index}].port",
                f"port {wanted} on {address} is already in use",
                "a free port, or leave it out to get the next free port from 8000",
            )
        ]
    return []


def _fixed_port_problems(cluster: RayCluster, store: Store, source: str) -> list[SpecProblem]:
    """A port the head's rayStartParams fix must be free, unless this cluster already has it."""
    stored = store.get(ObjectKind.RAY_CLUSTER, cluster.metadata.namespace, cluster.metadata.name)
    held = (
        RayCluster.model_validate(stored.manifest).spec.headGroupSpec.rayStartParams
        if stored is not None
        else {}
    )
    problems = []
    for option, value in sorted(cluster.spec.headGroupSpec.rayStartParams.items()):
        if option not in FIXED_PORT_PARAMS or held.get(option) == value:
            continue
        if not port_is_free(int(value)):
            problems.append(
                SpecProblem(
                    source,
                    f"spec.headGroupSpec.rayStartParams.{option}",
                    f"port {value} on 127.0.0.1 is already in use",
                    "a free port, or leave it out to have one chosen",
                )
            )
    return problems


def admitted_manifest(
    store: Store,
    document: dict[str, Any],
    source: str,
    base_dir: Path,
    packages: Path,
    expected_key: str | None = None,
    *,
    may_read_local_paths: bool,
    exposure: ExposureSettings,
) -> Manifest:
    """The validated RayService or RayCluster, local working_dirs packaged; raises InvalidSpec.
    On the Kubernetes backend (``exposure.backend``) its rules apply: no file of this machine
    in the Serve config but the packages shipped to the cluster, what KubeRay's operator
    refuses, no port of this machine.

    Stores nothing: packaging only adds zips to the content-addressed package cache.
    """
    packaged = with_packaged_working_dirs(
        document, base_dir, packages, source, may_read_local_paths=may_read_local_paths
    )
    manifest = load_manifest(packaged, source, exposure.backend)
    problems = _name_problems(manifest, store, source)
    if not exposure.on_this_machine:
        problems += kubernetes_rules(manifest, packages, source)
    elif isinstance(manifest, RayService):
        problems += _port_problems(manifest, store, source, exposure)
    else:
        problems += _fixed_port_problems(manifest, store, source)
    if expected_key is not None and manifest.key != expected_key:
        problems.append(
            SpecProblem(
                source,
                "metadata.name",
                f"names {manifest.key}",
                f"{expected_key} (the request path)",
            )
        )
    if problems:
        raise InvalidSpec(problems)
    return manifest


def kubernetes_rules(manifest: Manifest, packages: Path, source: str) -> list[SpecProblem]:
    """What the Kubernetes backend refuses of a loaded, packaged manifest: a file of this
    machine in its Serve config other than the packages shipped to the cluster, and what
    KubeRay's operator refuses."""
    problems = []
    if isinstance(manifest, RayService):
        problems += files_pods_cannot_read(manifest.spec.serve_config(), packages, source)
    return problems + kubernetes_problems(manifest, source)


def _name_problems(manifest: Manifest, store: Store, source: str) -> list[SpecProblem]:
    """A RayService and a RayCluster of one name in one namespace would share their Services
    (``<name>-head-svc``); and a standalone RayCluster's nodes are named after it, so its name
    is unique on this machine whatever the namespace."""
    meta = manifest.metadata
    other = _OTHER_KIND[ObjectKind(manifest.kind)]
    if store.get(other, meta.namespace, meta.name) is not None:
        return [
            SpecProblem(
                source,
                "metadata.name",
                f"a {other} named {meta.name} exists in namespace {meta.namespace}; both would"
                f" own the Services {meta.name}-head-svc and {meta.name}-serve-svc",
                "a name no RayService or RayCluster of the namespace has",
            )
        ]
    if isinstance(manifest, RayCluster):
        taken = [
            view.owner
            for view in store.views(ObjectKind.RAY_CLUSTER)
            if view.name == meta.name and view.owner != manifest.key
        ]
        if taken:
            return [
                SpecProblem(
                    source,
                    "metadata.name",
                    f"a Ray cluster named {meta.name} already runs here (for {taken[0]});"
                    " cluster names are unique on this machine, in every namespace",
                    "another name",
                )
            ]
    return _service_name_problems(manifest, store, source)


def _service_name_problems(manifest: Manifest, store: Store, source: str) -> list[SpecProblem]:
    """Every Service of ``manifest`` has a name of its own: not its other Service's, not one a
    Service of another object of the namespace has (KubeRay's would fight over it), whether
    the names are given (``spec.serveService``, ``headService``) or generated."""
    names = manifest.service_names
    (first, _), (second, field) = names[0], names[-1]
    if len(names) == 2 and first == second:
        return [
            SpecProblem(source, field, f"{second!r} also names its other Service", "another name")
        ]
    for kind in (ObjectKind.RAY_SERVICE, ObjectKind.RAY_CLUSTER):
        for resource in store.list_resources(kind, manifest.metadata.namespace):
            if resource.key == manifest.key and kind == manifest.kind:
                continue
            other = load_stored(resource)
            theirs = {name for name, _ in other.service_names}
            for name, field in names:
                if name in theirs:
                    return [
                        SpecProblem(
                            source,
                            field,
                            f"its Service {name!r} is a Service of {other.kind} {resource.key}",
                            "a name no other Service of the namespace has",
                        )
                    ]
    return []


_OTHER_KIND = {
    ObjectKind.RAY_SERVICE: ObjectKind.RAY_CLUSTER,
    ObjectKind.RAY_CLUSTER: ObjectKind.RAY_SERVICE,
}


def admit(
    store: Store,
    document: dict[str, Any],
    source: str,
    base_dir: Path,
    packages: Path,
    now: float,
    expected_key: str | None = None,
    *,
    may_read_local_paths: bool,
    exposure: ExposureSettings,
) -> StoredResource:
    """Validate and store one applied object; raises InvalidSpec and stores nothing on error.
    ``exposure``: the controller's settings, which say where a requested port must be free."""
    manifest = admitted_manifest(
        store,
        document,
        source,
        base_dir,
        packages,
        expected_key,
        may_read_local_paths=may_read_local_paths,
        exposure=exposure,
    )
    return store.apply(manifest.kind, _stored_form(manifest), source, now)


@dataclass(frozen=True)
class DryRun:
    change: Change
    generation: int  # the generation the object would have after a real apply


def dry_run(
    store: Store,
    document: dict[str, Any],
    source: str,
    base_dir: Path,
    packages: Path,
    expected_key: str | None = None,
    *,
    may_read_local_paths: bool,
    exposure: ExposureSettings,
    alongside: Found = NOTHING_FOUND,
) -> DryRun:
    """What applying ``document`` would do, with the same checks as :func:`admit`, the
    Secrets and ConfigMaps ``alongside`` applied first.

    The packaged manifest is compared with the stored one, so an unchanged local working_dir
    (same content, same package URI) is no change. Nothing is stored.
    """
    manifest = admitted_manifest(
        store,
        document,
        source,
        base_dir,
        packages,
        expected_key,
        may_read_local_paths=may_read_local_paths,
        exposure=exposure,
    )
    stored = store.get(manifest.kind, manifest.metadata.namespace, manifest.metadata.name)
    generation = generation_after_apply(stored, _stored_form(manifest))
    change = _change(store, stored, manifest, backend_resolve(exposure), alongside)
    return DryRun(change, generation)


def backend_resolve(exposure: ExposureSettings) -> Resolve:
    """How the controller gets a cluster spec on the backend of ``exposure``: Secret values
    written into it here, left to the pods on Kubernetes."""
    return resolve_manifest if exposure.on_this_machine else as_written


def _change(
    store: Store,
    stored: StoredResource | None,
    new: Manifest,
    resolve: Resolve,
    alongside: Found = NOTHING_FOUND,
) -> Change:
    """What storing ``new`` over ``stored`` makes the controller do: for a RayService the
    rollout's own answer for the controller's stored record, with the Secrets and ConfigMaps
    stored now (and those ``alongside``), taken as the backend takes them (``resolve``)."""
    found = {**referenced(store, new.metadata.namespace, cluster_spec_of(new)[0]).found}
    found.update(alongside)
    if isinstance(new, RayCluster):
        current = RayCluster.model_validate(stored.manifest) if stored else None
        return classify_cluster_change(current, new, found, resolve)
    if stored is None:
        return classify_change(None, new, found=found, resolve=resolve)
    service = RayService.model_validate(stored.manifest)
    record: ServiceRecord | None = load_record(stored.record) if stored.record else None
    return classify_change(service, new, record, found, resolve)


def _stored_form(manifest: Manifest) -> dict[str, Any]:
    return manifest.model_dump(mode="json", exclude_unset=True)


def apply_warnings(
    store: Store,
    previous: StoredResource | None,
    stored: StoredResource,
    exposure: ExposureSettings,
    in_cluster: InCluster | None = None,
) -> list[str]:
    """What the user must know about an accepted apply that will not do all it says, or
    does more than a local set-up usually does: a cluster change held by
    ``upgradeStrategy.type: None`` (KubeRay drops it silently), a Secret or ConfigMap it
    refers to that is not there (on Kubernetes, ``in_cluster`` says what the cluster has: one
    made there by another tool is there for the pods), a preferred port that is taken, a
    Service reachable from other hosts (or one asking to be that stays on loopback)."""
    new = load_stored(stored)
    spec = cluster_spec_of(new)[0]
    found: Found = referenced(store, stored.namespace, spec).found
    if exposure.on_this_machine:
        consequence = "no cluster starts for it until then"
    else:  # the pods resolve references: what rayservice lacks, the cluster may have
        consequence = (
            "rayservice does not have it: unless the Kubernetes cluster has, its pods wait for it"
        )
        with_the_clusters = _with_the_clusters(spec, found, stored.namespace, in_cluster)
        if with_the_clusters is not None:
            found = with_the_clusters
            consequence = (
                "neither rayservice nor the Kubernetes cluster has it: its pods wait for it"
            )
    warnings = [
        f"{stored.source}: {what} ({consequence})" for what in resolve_manifest(new, found).missing
    ]
    if exposure.on_this_machine:
        warnings += _preferred_port_warnings(new, previous, stored.source, exposure)
        has_serve = serve_service_exists(new)
        warnings += [f"{stored.source}: {w}" for w in exposure_warnings(new, has_serve, exposure)]
    if previous is None or previous.generation == stored.generation:
        return warnings
    if _change(store, previous, new, backend_resolve(exposure)).kind is not ChangeKind.HELD:
        return warnings
    if isinstance(new, RayCluster):
        held = (
            "the cluster spec changed, but spec.upgradeStrategy.type is None: running nodes"
            " keep their spec, nodes started from now take the new one; set it to Recreate to"
            " replace the cluster"
        )
    else:
        held = (
            "spec.rayClusterConfig changed, but spec.upgradeStrategy.type is None: the running"
            " cluster keeps its spec (Serve config changes still apply); set it to NewCluster"
            " or NewClusterWithIncrementalUpgrade to apply the change"
        )
    return [*warnings, f"{stored.source}: {held}"]


def _with_the_clusters(
    spec: RayClusterSpec, found: Found, namespace: str, in_cluster: InCluster | None
) -> Found | None:
    """``found`` and the values of the Secrets and ConfigMaps ``spec`` refers to that only the
    Kubernetes cluster has; None when it cannot be asked."""
    if in_cluster is None:
        return None
    added = dict(found)
    try:
        for source in sorted(sources(spec) - set(found)):
            values = in_cluster(source.kind, namespace, source.name)
            if values is not None:
                added[source] = values
    except RayServiceError:  # out of reach now: the warning says what may be
        return None
    return added


def _preferred_port_warnings(
    manifest: Manifest,
    previous: StoredResource | None,
    source: str,
    exposure: ExposureSettings,
) -> list[str]:
    """A head container port named ``serve`` or ``dashboard`` is only a preference: say so
    when it is taken (and not by this object's own Service)."""
    warnings = []
    for purpose, record_field in (
        (ServicePort.SERVE, "serve_port"),
        (ServicePort.DASHBOARD, "dashboard_port"),
    ):
        ask = port_ask(manifest, purpose)
        if ask.preferred is None or ask.hard is not None:
            continue
        if purpose is ServicePort.SERVE and not serve_service_exists(manifest):
            continue
        held = previous is not None and previous.record.get(record_field) == ask.preferred
        found = service_exposure(manifest, purpose, exposure)
        if held or port_is_free(ask.preferred, found.address):
            continue
        warnings.append(
            f"{source}: port {ask.preferred}, named {purpose} in the head container, is in use"
            f" on {found.address}: {found.service} gets the next free port"
        )
    return warnings


def ignored_warning(resource: StoredResource) -> str | None:
    """The fields of a stored object that were accepted but mean nothing on this machine
    (images, Kubernetes-only settings, addresses), as one warning; None when there are none."""
    ignored = ignored_fields(load_stored(resource))
    if not ignored:
        return None
    return "accepted, with no effect on the local backend: " + ", ".join(ignored)


def load_stored(resource: StoredResource) -> Manifest:
    """The stored object as its model."""
    if resource.kind == ObjectKind.RAY_CLUSTER:
        return RayCluster.model_validate(resource.manifest)
    return RayService.model_validate(resource.manifest)
