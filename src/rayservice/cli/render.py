"""``rayservice render -f FILE``: the Kubernetes objects applying FILE would create, as a
multi-document YAML stream, for review and GitOps; nothing is applied and no controller is
asked.

Every object of the file is admitted as ``apply`` admits it (the same field checks, all problems
at once), plus what only Kubernetes refuses (an incremental upgrade with no Gateway class, fault
tolerance with no Redis to reach). A RayService's clusters are the ones its status names when the
file carries one (``get rayservice NAME -o yaml`` of an applied service: during an upgrade the
pending cluster runs the file's spec while the Services still select the active one), else the
one a first apply would make, named from the service's uid and generation (for a file without a
uid the name's suffix is only an example).
Notes go to stderr, so that stdout is the YAML alone.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pydantic
import yaml

from rayservice.api.admission import kubernetes_rules, with_packaged_working_dirs
from rayservice.kubernetes.objects import cluster_objects, service_objects
from rayservice.planner.cluster import cluster_name, cluster_request, service_cluster_request
from rayservice.spec.config_objects import is_config_object, load_config_object
from rayservice.spec.errors import InvalidSpec, RayServiceError, SpecProblem
from rayservice.spec.foreign_objects import not_run_here, object_label
from rayservice.spec.hashing import cluster_spec_hash
from rayservice.spec.loader import is_dns_1035_label, load_manifest
from rayservice.spec.manifest import KubernetesObject, Manifest, RayService
from rayservice.spec.serve_config import load_yaml_documents
from rayservice.spec.status import RayServiceStatus
from rayservice.spec.vocabulary import FULL_CAPACITY, MAX_RAYCLUSTER_NAME, Backend


class NothingToRender(RayServiceError):
    """The file holds no object to render, or cannot be read."""


def add_verb(verbs: Any) -> None:
    render = verbs.add_parser(
        "render",
        help="print the Kubernetes objects applying a manifest would create (nothing is applied)",
    )
    render.add_argument("-f", "--filename", required=True, help="manifest file, or - for stdin")
    render.add_argument(
        "--backend",
        choices=[b.value for b in Backend],
        default=Backend.KUBERNETES.value,
        help="the backend whose objects to print (default kubernetes, the only one with any)",
    )
    render.set_defaults(func=cmd_render)


def cmd_render(args: argparse.Namespace) -> int:
    if args.backend != Backend.KUBERNETES:
        raise NothingToRender(
            "the local backend creates no Kubernetes objects: its clusters are processes on this"
            " machine (`rayservice apply -f FILE --dry-run` says what applying would change)"
        )
    objects = rendered(_read(args.filename), args.filename)
    # through JSON, as a Kubernetes API server would take them: label keys are plain text then
    yaml.safe_dump_all(json.loads(json.dumps(objects)), sys.stdout, sort_keys=False)
    return 0


def _read(path: str) -> str:
    try:
        return sys.stdin.read() if path == "-" else Path(path).read_text()
    except OSError as e:
        raise NothingToRender(f"cannot read {path}: {e.strerror}") from e


def rendered(text: str, path: str) -> list[KubernetesObject]:
    """The objects of the manifests in ``text``: Secrets and ConfigMaps first (the clusters
    take values from them), then each object's in the file's order. Raises InvalidSpec with
    every problem of every document, before anything is built."""
    documents = [d for d in load_yaml_documents(text, path, "<yaml>") if d is not None]
    base_dir = Path(path).resolve().parent if path != "-" else Path.cwd()
    config: list[KubernetesObject] = []
    manifests: list[tuple[str, Manifest]] = []
    problems: list[SpecProblem] = []
    for number, document in enumerate(documents, start=1):
        source = path if len(documents) == 1 else f"{path} (document {number})"
        skipped = not_run_here(document)
        if skipped is not None:
            print(f"{object_label(document)} skipped: {skipped}", file=sys.stderr)
            continue
        try:
            if is_config_object(document):
                config.append(load_config_object(document, source))
            else:
                manifest, refused = _admitted(document, base_dir, source)
                problems += refused
                manifests.append((source, manifest))
        except InvalidSpec as error:
            problems += error.problems
    if problems:
        raise InvalidSpec(problems)
    objects = config + [built for source, m in manifests for built in _objects_of(m, source)]
    if not objects:
        raise NothingToRender(f"nothing to render in {path}: no ray.io object, Secret or ConfigMap")
    _refuse_repeated(objects, path)
    return objects


def _admitted(document: Any, base_dir: Path, source: str) -> tuple[Manifest, list[SpecProblem]]:
    """The manifest, its local folders packaged as ``apply`` packages them (into a folder thrown
    away after: no Kubernetes object holds the Serve config), and what the Kubernetes backend
    refuses of it; InvalidSpec when it does not load."""
    with tempfile.TemporaryDirectory(prefix="rayservice-render-") as folder:
        packages = Path(folder)
        if isinstance(document, dict):
            document = with_packaged_working_dirs(
                document, base_dir, packages, source, may_read_local_paths=True
            )
        manifest = load_manifest(document, source, Backend.KUBERNETES)
        return manifest, kubernetes_rules(manifest, packages, source)


def _objects_of(manifest: Manifest, source: str) -> list[KubernetesObject]:
    """The objects of ``manifest``, its cluster asked for as the controller asks (the planner's
    ClusterRequest: the spec as written, the counts it asks for)."""
    if isinstance(manifest, RayService):
        spec = manifest.spec.rayClusterConfig
        slots = _slots(manifest, source)
        request = service_cluster_request(
            manifest, slots.cluster, spec, cluster_spec_hash(spec), manifest.spec.serve_config()
        )
        return service_objects(manifest, request, slots.serving, slots.shares)
    request = cluster_request(
        manifest.metadata.name,
        manifest.key,
        manifest.spec,
        cluster_spec_hash(manifest.spec),
        annotations=manifest.metadata.annotations,
        standalone_labels=manifest.metadata.labels,
    )
    return cluster_objects(request)


@dataclass(frozen=True)
class _Slots:
    cluster: str  # the cluster that runs the file's spec
    serving: str  # the one the Services select
    shares: tuple[tuple[str, int], ...]  # each cluster's share of an incremental upgrade


def _slots(service: RayService, source: str) -> _Slots:
    """Where the service stands, by the status a file carries (what ``get -o yaml`` prints):
    during an upgrade the pending cluster runs the spec while the Services still select the
    active one and the traffic is split as the status says; without status, the cluster a
    first apply would make, named from the service's uid and generation."""
    status = _status(service, source)
    active, pending = status.activeServiceStatus, status.pendingServiceStatus
    if active.rayClusterName and pending.rayClusterName:
        to_pending = pending.trafficRoutedPercent or 0
        shares = (
            (active.rayClusterName, FULL_CAPACITY - to_pending),
            (pending.rayClusterName, to_pending),
        )
        return _Slots(pending.rayClusterName, active.rayClusterName, shares)
    if active.rayClusterName:
        return _Slots(active.rayClusterName, active.rayClusterName, ())
    uid, generation = service.metadata.uid, service.metadata.generation
    if uid is None:
        print(
            f"note: rayservice/{service.metadata.name}: its RayCluster's name ends in a suffix"
            " drawn from the service's uid when it is first applied (and from the values it"
            " takes from Secrets and ConfigMaps); the one here is an example (render `rayservice"
            " get rayservice NAME -o yaml` for an applied service's)",
            file=sys.stderr,
        )
    name = cluster_name(service, uid or "", generation or 1)
    return _Slots(name, name, ())


def _status(service: RayService, source: str) -> RayServiceStatus:
    """The status the file carries (none: an empty one); cluster names in it must be ones a
    RayCluster can have."""
    try:
        status = RayServiceStatus.model_validate(service.status or {})
    except pydantic.ValidationError as error:
        raise InvalidSpec(
            [SpecProblem("<file>", "status", f"is not a RayService status: {error}")]
        ) from error
    for slot in ("activeServiceStatus", "pendingServiceStatus"):
        name = getattr(status, slot).rayClusterName
        if name and not is_dns_1035_label(name, MAX_RAYCLUSTER_NAME):
            raise InvalidSpec(
                [
                    SpecProblem(
                        source,
                        f"status.{slot}.rayClusterName",
                        f"{name!r} cannot name a RayCluster",
                        f"a DNS-1035 label of at most {MAX_RAYCLUSTER_NAME} characters",
                    )
                ]
            )
    return status


def _refuse_repeated(objects: list[KubernetesObject], path: str) -> None:
    """Two objects of one kind and name (a Service named like another's) cannot both exist."""
    seen: set[tuple[str, str, str]] = set()
    problems = []
    for built in objects:
        metadata = built["metadata"]
        identity = (built["kind"], metadata["namespace"], metadata["name"])
        if identity in seen:
            message = f"{identity[0]} {identity[1]}/{identity[2]} would be made twice"
            problems.append(SpecProblem(path, "metadata.name", message, "names of their own"))
        seen.add(identity)
    if problems:
        raise InvalidSpec(problems)
