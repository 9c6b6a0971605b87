"""Strict field validation: the models know exactly the fields KubeRay knows.

The field names of every object level the models cover are compared with KubeRay's CRDs
(``$KUBERAY_CRDS``, by default ``../shared/kuberay-crds`` beside the repository; skipped when
absent), so nothing
KubeRay accepts is refused and nothing it refuses is accepted. Then: unknown fields are refused
with their path, the embedded Kubernetes objects are checked against Kubernetes' schema, the
size limits hold, stored documents stay readable, and modelling more fields changed no hash.
"""

from __future__ import annotations

import copy
import os
import subprocess
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pydantic
import pytest
import yaml

from rayservice.spec.config_objects import (
    environment_values,
    is_config_object,
    load_config_object,
)
from rayservice.spec.errors import InvalidSpec, SpecProblem
from rayservice.spec.events import ObjectKind
from rayservice.spec.foreign_objects import not_run_here
from rayservice.spec.hashing import cluster_spec_hash
from rayservice.spec.kubernetes_schema import kubernetes_version
from rayservice.spec.loader import MAX_ANNOTATION_BYTES, MAX_OBJECT_BYTES, load_manifest
from rayservice.spec.manifest import (
    ObjectMeta,
    RayCluster,
    RayClusterSpec,
    RayService,
    RayServiceSpec,
)
from rayservice.spec.references import Source, resolve, sources
from tests.unit.test_spec_loader import service

REPO = Path(__file__).resolve().parents[2]
CRDS = Path(os.environ.get("KUBERAY_CRDS", REPO.parent / "shared" / "kuberay-crds"))
SAMPLE = Path(__file__).parents[2] / "samples" / "ray-service.sample.yaml"
# fields of ours that KubeRay does not have, by model
EXTENSIONS: dict[type[pydantic.BaseModel], set[str]] = {
    RayServiceSpec: {"pendingClusterTimeoutSeconds"},
}
HEAD = "spec.rayClusterConfig.headGroupSpec"
WORKER = "spec.rayClusterConfig.workerGroupSpecs[0]"
SERVE_CONFIG = "applications:\n  - {name: app, route_prefix: /, import_path: app:graph}\n"


def crd_schema(file_name: str) -> dict[str, Any]:
    path = CRDS / file_name
    if not path.exists():
        pytest.skip(f"KubeRay's CRDs are not at {CRDS} (set KUBERAY_CRDS to their folder)")
    crd = yaml.safe_load(path.read_text())
    version = next(v for v in crd["spec"]["versions"] if v["name"] == "v1")
    schema: dict[str, Any] = version["schema"]["openAPIV3Schema"]
    return schema


def models_in(annotation: object) -> list[type[pydantic.BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, pydantic.BaseModel):
        return [annotation]
    return [model for arg in typing.get_args(annotation) for model in models_in(arg)]


def object_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema of the objects a property holds (the items of an array)."""
    while schema.get("type") == "array":
        schema = schema["items"]
    return schema


def covered_levels(
    model: type[pydantic.BaseModel], schema: dict[str, Any], path: str
) -> Iterator[tuple[str, type[pydantic.BaseModel], dict[str, Any]]]:
    """Every object level modelled by ``model`` and its sub-models, with its CRD schema."""
    yield path, model, schema
    for name, field in model.model_fields.items():
        child = schema.get("properties", {}).get(name)
        for sub_model in models_in(field.annotation):
            if child is not None:
                yield from covered_levels(sub_model, object_schema(child), f"{path}.{name}")


@pytest.mark.parametrize(
    ("file_name", "model"),
    [("ray.io_rayservices.yaml", RayService), ("ray.io_rayclusters.yaml", RayCluster)],
)
def test_every_modelled_level_has_the_fields_of_the_crd(
    file_name: str, model: type[pydantic.BaseModel]
) -> None:
    levels = list(covered_levels(model, crd_schema(file_name), model.__name__))
    mismatches = []
    for path, level_model, schema in levels:
        if level_model is ObjectMeta:
            continue  # the CRD leaves metadata to Kubernetes: compared below
        ours = set(level_model.model_fields) - EXTENSIONS.get(level_model, set())
        theirs = set(schema.get("properties", {}))
        if ours != theirs:
            mismatches.append((path, sorted(ours - theirs), sorted(theirs - ours)))

    assert mismatches == []  # (level, ours only, KubeRay's only)
    assert len(levels) > 20


def test_metadata_has_the_fields_of_kubernetes_object_meta() -> None:
    from rayservice.spec.kubernetes_schema import _definitions

    resource = _definitions().get_or_retrieve("https://kubernetes.io/api/_definitions.json")
    definitions = resource.value.contents["$defs"]
    object_meta = definitions["io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"]

    assert set(ObjectMeta.model_fields) == set(object_meta["properties"])


def problems_of(document: dict[str, Any]) -> list[SpecProblem]:
    with pytest.raises(InvalidSpec) as caught:
        load_manifest(document, "svc.yaml")
    return caught.value.problems


def test_an_unknown_spec_field_is_refused_with_the_known_ones_closest_first() -> None:
    [problem] = problems_of(service(serveConfigV3="applications: []"))

    assert (problem.field, problem.message) == (
        "spec.serveConfigV3",
        'unknown field "serveConfigV3"',
    )
    assert problem.valid.startswith("serveConfigV2, ")
    assert "rayClusterConfig" in problem.valid and "upgradeStrategy" in problem.valid


@pytest.mark.parametrize(
    ("edit", "field"),
    [
        (lambda d: d.update(extra=1), "extra"),
        (lambda d: d["metadata"].update(nmae="x"), "metadata.nmae"),
        (
            lambda d: d["spec"]["rayClusterConfig"]["headGroupSpec"].update(replicas=1),
            f"{HEAD}.replicas",
        ),
        (
            lambda d: d["spec"]["rayClusterConfig"]["workerGroupSpecs"][0].update(maxReplica=3),
            f"{WORKER}.maxReplica",
        ),
        (
            lambda d: d["spec"].update(upgradeStrategy={"type": "NewCluster", "typo": 1}),
            "spec.upgradeStrategy.typo",
        ),
        (
            lambda d: d["spec"]["rayClusterConfig"].update(
                gcsFaultToleranceOptions={"redisAddress": "r:6379", "redisPassword": {"vaule": "x"}}
            ),
            "spec.rayClusterConfig.gcsFaultToleranceOptions.redisPassword.vaule",
        ),
    ],
    ids=["top", "metadata", "head", "worker", "upgradeStrategy", "redisPassword"],
)
def test_unknown_fields_are_refused_at_every_level(edit: Any, field: str) -> None:
    document = service()
    edit(document)

    problems = problems_of(document)

    assert [p.field for p in problems] == [field]
    assert problems[0].message.startswith("unknown field")


def test_the_fields_kuberay_knows_are_accepted_even_unused() -> None:
    document = service(managedBy="ray.io/kuberay-operator", serviceUnhealthySecondThreshold=900)
    cluster = document["spec"]["rayClusterConfig"]
    cluster["headServiceAnnotations"] = {"a": "b"}
    cluster["authOptions"] = {"mode": "token"}
    cluster["headGroupSpec"]["headService"] = {"metadata": {"name": "head"}}
    cluster["workerGroupSpecs"][0]["idleTimeoutSeconds"] = 60
    cluster["autoscalerOptions"] = {"idleTimeoutSeconds": 60, "env": [{"name": "A", "value": "1"}]}

    assert isinstance(load_manifest(document, "svc.yaml"), RayService)


def test_pod_template_fields_are_checked_against_kubernetes() -> None:
    document = service()
    container = document["spec"]["rayClusterConfig"]["headGroupSpec"]["template"]["spec"]
    container["containers"][0]["resourcez"] = {"limits": {"cpu": "1"}}
    container["containers"][0]["ports"] = [{"containerPort": "http"}]

    problems = {p.field: p for p in problems_of(document)}

    unknown = problems[f"{HEAD}.template.spec.containers[0].resourcez"]
    assert unknown.message == 'unknown field "resourcez"'
    assert unknown.valid.startswith("resources, ")
    port = problems[f"{HEAD}.template.spec.containers[0].ports[0].containerPort"]
    assert port.message == "must be an integer, got 'http'"
    assert kubernetes_version().count(".") == 2


def test_services_and_container_fields_outside_templates_are_checked_too() -> None:
    document = service(serveService={"spec": {"ports": [{"name": "serve", "prot": 8000}]}})
    document["spec"]["rayClusterConfig"]["autoscalerOptions"] = {"env": [{"nam": "A"}]}

    fields = {p.field for p in problems_of(document)}

    assert "spec.serveService.spec.ports[0].prot" in fields
    assert "spec.rayClusterConfig.autoscalerOptions.env[0].nam" in fields


def test_a_manifest_over_one_and_a_half_mebibytes_is_refused() -> None:
    document = service()
    document["metadata"]["labels"] = {f"k{i}": "v" * 60 for i in range(MAX_OBJECT_BYTES // 60)}

    [problem] = problems_of(document)

    assert problem.field == "<document>"
    assert "1.5 MiB" in problem.message


def test_annotations_over_256_kibibytes_are_refused() -> None:
    document = service()
    document["metadata"]["annotations"] = {"big": "x" * MAX_ANNOTATION_BYTES}

    [problem] = problems_of(document)

    assert problem.field == "metadata.annotations"
    assert "256 KiB" in problem.message


def test_a_stored_document_with_a_field_an_older_release_let_in_still_loads() -> None:
    document = service(futureSpecField=1)

    assert RayService.model_validate(document).spec.serveConfigV2 == SERVE_CONFIG


# Hashes computed by the release that modelled fewer fields (and stored unknown ones as given).
PINNED_HASHES: dict[str, tuple[dict[str, Any], str]] = {
    "minimal": ({"headGroupSpec": {}}, "eee7627f5e354479"),
    "full": (
        {
            "rayVersion": "2.60.0",
            "enableInTreeAutoscaling": True,
            "autoscalerOptions": {"idleTimeoutSeconds": 60},
            "gcsFaultToleranceOptions": {"backend": "rocksdb", "storage": {"size": "1Gi"}},
            "headGroupSpec": {
                "rayStartParams": {"num-cpus": "0"},
                "serviceType": "ClusterIP",
                "enableIngress": False,
                "template": {"spec": {"containers": [{"name": "h", "image": "ray"}]}},
            },
            "workerGroupSpecs": [
                {
                    "groupName": "g",
                    "replicas": 2,
                    "minReplicas": 1,
                    "maxReplicas": 3,
                    "numOfHosts": 2,
                    "rayStartParams": {"num-cpus": "1"},
                    "template": {"spec": {"containers": [{"name": "w"}]}},
                }
            ],
            "upgradeStrategy": {"type": "Recreate"},
            "suspend": False,
        },
        "7ad0203b32ff5535",
    ),
    "redis": (
        {
            "gcsFaultToleranceOptions": {
                "redisAddress": "redis:6379",
                "redisPassword": {"valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}},
                "externalStorageNamespace": "ns",
            },
            "headGroupSpec": {"rayStartParams": {}},
            "workerGroupSpecs": [{"groupName": "a"}, {"groupName": "b", "suspend": True}],
        },
        "89bc52ad838a1921",
    ),
}


@pytest.mark.parametrize("name", sorted(PINNED_HASHES))
def test_modelling_more_fields_changed_no_cluster_hash(name: str) -> None:
    document, pinned = PINNED_HASHES[name]

    assert cluster_spec_hash(RayClusterSpec.model_validate(copy.deepcopy(document))) == pinned


def test_the_sample_keeps_its_cluster_hash() -> None:
    sample = yaml.safe_load(SAMPLE.read_text())
    spec = RayClusterSpec.model_validate(sample["spec"]["rayClusterConfig"])

    assert cluster_spec_hash(spec) == "1d73d88fbdc131ca"


def test_a_new_field_once_set_changes_the_hash() -> None:
    document = copy.deepcopy(PINNED_HASHES["minimal"][0])
    document["headGroupSpec"]["labels"] = {"ray.io/zone": "a"}

    assert cluster_spec_hash(RayClusterSpec.model_validate(document)) != "eee7627f5e354479"


KUBERAY_REPO = Path(os.environ.get("KUBERAY_REPO", REPO.parent / "kuberay"))
SAMPLES_DIR = "ray-operator/config/samples/"


def test_every_kuberay_sample_loads() -> None:
    """KubeRay's own samples (a git copy at ``$KUBERAY_REPO``): their RayService and RayCluster
    documents, the many fields unused here included, are all accepted, and so are the Secrets
    and ConfigMaps next to them; every other object (Redis Deployments, Services, RBAC,
    queues) is one that apply skips."""
    if not KUBERAY_REPO.exists():
        pytest.skip(f"no copy of KubeRay at {KUBERAY_REPO} (set KUBERAY_REPO to a clone)")

    def git(*args: str) -> str:
        command = ["git", "-C", str(KUBERAY_REPO), *args]
        return subprocess.run(command, capture_output=True, text=True, check=True).stdout

    names = [
        name
        for name in git("ls-tree", "--name-only", "HEAD", SAMPLES_DIR).split()
        if name.removeprefix(SAMPLES_DIR).startswith(("ray-cluster.", "ray-service."))
        and name.endswith(".yaml")
    ]
    refused: dict[str, str] = {}
    resolved: list[str] = []
    left_to_the_user: list[str] = []
    wrong: list[str] = []
    for name in names:
        documents = [d for d in yaml.safe_load_all(git("show", f"HEAD:{name}")) if d is not None]
        kept = [d for d in documents if not_run_here(d) is None]
        try:
            stored = [load_config_object(d, name) for d in kept if is_config_object(d)]
            manifests = [load_manifest(d, name) for d in kept if not is_config_object(d)]
        except InvalidSpec as error:
            refused[name] = str(error)
            continue
        found = {
            Source(ObjectKind(o["kind"]), o["metadata"]["name"]): environment_values(o)
            for o in stored
        }
        for manifest in manifests:
            if isinstance(manifest, RayService):
                spec = manifest.spec.rayClusterConfig
            else:
                spec = manifest.spec
            if not sources(spec):
                continue
            missing = resolve(spec, found, manifest.metadata.namespace).missing
            if not missing:
                resolved.append(name)
            elif sources(spec) & found.keys():
                wrong += missing  # an object of the file that lacks what is taken from it
            else:
                left_to_the_user.append(name)

    assert len(names) > 40
    assert refused == {}
    # the Secrets next to a cluster give it every value it takes (the Redis password of the
    # HA samples, the model hub token of llm-serve); the others name a Secret the user makes
    assert len(resolved) >= 5, resolved
    assert wrong == []
    assert len(left_to_the_user) < len(resolved), left_to_the_user
