"""Starting the controller on the Kubernetes backend: the cluster is checked first (what lacks
is said, with what to install or grant), the adapters are the Kubernetes ones, and admission
holds Kubernetes' rules (no file of this machine but the packages shipped to the cluster,
KubeRay's refusals, no port of this machine)."""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from rayservice.api.admission import admitted_manifest
from rayservice.controller.process import (
    BackendChanged,
    KubernetesAccess,
    KubernetesNotReady,
    _kubernetes_adapters,
    controller_name,
    keep_to_one_backend,
)
from rayservice.kubeapi.base import KubernetesRefused, KubernetesUnavailable
from rayservice.kubernetes.kinds import RAY_CLUSTER_CRD
from rayservice.providers.kubernetes import KubernetesProvider
from rayservice.spec.errors import InvalidSpec
from rayservice.spec.events import ObjectKind
from rayservice.spec.manifest import RayService
from rayservice.spec.service_exposure import ExposureSettings
from rayservice.spec.vocabulary import KIND, Backend
from rayservice.store.sqlite import SqliteStore
from rayservice.traffic.kubernetes import KubernetesFront
from tests.kube_emulator import RunningApiServer
from tests.unit.test_kubernetes_objects import document, incremental

ON_KUBERNETES = ExposureSettings(backend=Backend.KUBERNETES)


@pytest.fixture(scope="module")
def emulated() -> Iterator[RunningApiServer]:
    running = RunningApiServer()
    yield running
    running.stop()


@pytest.fixture
def access(emulated: RunningApiServer, tmp_path: Path) -> KubernetesAccess:
    server = emulated.server
    assert server is not None
    server.crds.clear()
    server.denied.clear()
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(emulated.kubeconfig()))
    return KubernetesAccess(path)


@pytest.fixture
def store(tmp_path: Path) -> SqliteStore:
    return SqliteStore(tmp_path / "state.db")


def test_a_ready_cluster_gets_the_kubernetes_adapters(
    access: KubernetesAccess, emulated: RunningApiServer, store: SqliteStore, tmp_path: Path
) -> None:
    assert emulated.server is not None
    emulated.server.crds.add(RAY_CLUSTER_CRD)

    adapters = _kubernetes_adapters(store, tmp_path, access)

    assert isinstance(adapters.provider, KubernetesProvider)
    assert isinstance(adapters.front, KubernetesFront)
    assert adapters.port_usable(8000, "127.0.0.1")


def test_without_kuberay_and_permissions_the_start_says_what_to_install_and_grant(
    access: KubernetesAccess, emulated: RunningApiServer, store: SqliteStore, tmp_path: Path
) -> None:
    assert emulated.server is not None
    emulated.server.denied.add(("create", "rayclusters"))

    with pytest.raises(KubernetesNotReady) as refused:
        _kubernetes_adapters(store, tmp_path, access)

    assert "helm install kuberay-operator" in str(refused.value)
    assert "create rayclusters" in str(refused.value)
    assert "deploy/rbac.yaml" in str(refused.value)


def test_an_unreachable_api_server_or_a_missing_context_stops_the_start(
    access: KubernetesAccess, emulated: RunningApiServer, store: SqliteStore, tmp_path: Path
) -> None:
    assert access.kubeconfig is not None
    config = yaml.safe_load(access.kubeconfig.read_text())
    config["clusters"][0]["cluster"]["server"] = "http://127.0.0.1:9"  # discard: nothing listens
    access.kubeconfig.write_text(yaml.safe_dump(config))

    with pytest.raises(KubernetesUnavailable, match="cannot be reached"):
        _kubernetes_adapters(store, tmp_path, access)
    with pytest.raises(KubernetesRefused, match="'staging' not found"):
        _kubernetes_adapters(store, tmp_path, KubernetesAccess(access.kubeconfig, "staging"))


def test_the_controllers_name_is_a_label_value_kept_in_its_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = controller_name(tmp_path)
    monkeypatch.setattr(socket, "gethostname", lambda: "renamed.example")

    assert len(name) <= 63
    assert re.fullmatch(r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?", name)
    assert controller_name(tmp_path) == name  # a restart, even on a renamed host
    assert controller_name(tmp_path / "other").startswith("renamed.example-")
    assert controller_name(tmp_path / "other") != controller_name(tmp_path / "third")


def admit_on_kubernetes(store: SqliteStore, doc: dict[str, Any], tmp_path: Path) -> None:
    admitted_manifest(
        store,
        doc,
        "manifest.yaml",
        tmp_path,
        tmp_path / "packages",
        may_read_local_paths=True,
        exposure=ON_KUBERNETES,
    )


def serve_config(**runtime_env: Any) -> str:
    app = {"name": "app", "import_path": "a:b", "runtime_env": runtime_env}
    return yaml.safe_dump({"applications": [app]})


def test_a_folder_of_this_machine_is_packaged_and_a_file_of_it_refused_on_kubernetes(
    store: SqliteStore, tmp_path: Path
) -> None:
    (tmp_path / "apps").mkdir()
    (tmp_path / "apps" / "a.py").write_text("b = None\n")
    (tmp_path / "mine.whl").write_bytes(b"not really a wheel")
    folder = document(serveConfigV2=serve_config(working_dir="./apps"))
    wheel = serve_config(working_dir="./apps", py_modules=[f"file://{tmp_path}/mine.whl"])

    admitted = admitted_manifest(
        store, folder, "manifest.yaml", tmp_path, tmp_path / "packages",
        may_read_local_paths=True, exposure=ON_KUBERNETES,
    )  # fmt: skip
    with pytest.raises(InvalidSpec) as refused:
        admit_on_kubernetes(store, document(serveConfigV2=wheel), tmp_path)

    assert isinstance(admitted, RayService)
    [app] = admitted.spec.serve_config()["applications"]
    assert app["runtime_env"]["working_dir"].startswith(f"file://{tmp_path / 'packages'}/")
    [problem] = refused.value.problems
    assert problem.field == "spec.serveConfigV2.applications[0].runtime_env.py_modules[0]"
    assert "folders are shipped to the cluster, files are not" in problem.message
    assert "https://" in problem.valid


def test_kuberays_rules_hold_and_this_machines_ports_do_not(
    store: SqliteStore, tmp_path: Path
) -> None:
    with pytest.raises(InvalidSpec) as refused:
        admit_on_kubernetes(store, incremental(), tmp_path)
    with socket.socket() as listener:  # a port in use on this machine
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        taken = document(serveService={"spec": {"ports": [{"name": "serve", "port": port}]}})

        admit_on_kubernetes(store, taken, tmp_path)  # nobody's business there

    assert refused.value.problems[0].field.endswith("gatewayClassName")


def test_a_backend_nobody_knows_is_a_usage_error_from_the_flag_or_the_environment(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from rayservice.cli.main import main

    monkeypatch.setenv("RAYSERVICE_BACKEND", "k8s")
    with pytest.raises(SystemExit) as stopped:
        main(["controller"])

    assert stopped.value.code == 2
    assert "'k8s' is not a backend (valid: local, kubernetes)" in capsys.readouterr().err


def test_a_kubeconfig_with_the_local_backend_is_refused(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from rayservice.cli.main import main

    monkeypatch.delenv("RAYSERVICE_BACKEND", raising=False)

    assert main(["start", "--kubeconfig", str(tmp_path / "kubeconfig")]) == 2
    err = capsys.readouterr().err
    assert f"--kubeconfig {tmp_path / 'kubeconfig'} is used only with --backend kubernetes" in err
    assert "the backend is local (from --backend, else $RAYSERVICE_BACKEND, else local)" in err


def test_a_home_keeps_to_the_backend_its_services_run_on(
    store: SqliteStore, tmp_path: Path
) -> None:
    keep_to_one_backend(tmp_path, store, Backend.LOCAL)  # nothing yet: any backend goes
    keep_to_one_backend(tmp_path, store, Backend.KUBERNETES)
    store.apply(KIND, document(), "s.yaml", 0.0)

    keep_to_one_backend(tmp_path, store, Backend.KUBERNETES)
    with pytest.raises(BackendChanged, match="run on the kubernetes backend") as refused:
        keep_to_one_backend(tmp_path, store, Backend.LOCAL)

    assert "default/svc" in str(refused.value)
    assert (tmp_path / "backend").read_text().strip() == "kubernetes"


def test_secrets_stored_before_a_kubernetes_start_go_to_the_cluster(
    access: KubernetesAccess, emulated: RunningApiServer, store: SqliteStore, tmp_path: Path
) -> None:
    server = emulated.server
    assert server is not None
    server.crds.add(RAY_CLUSTER_CRD)
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {"name": "early", "namespace": "default"},
        "data": {"k": "eA=="},
    }
    store.apply(ObjectKind.SECRET, secret, "s.yaml", 0.0)

    _kubernetes_adapters(store, tmp_path, access)

    found = server.stored("secrets", "default", "early")
    assert found is not None and found["data"] == {"k": "eA=="}


def test_a_home_from_before_backends_runs_on_this_machine(
    store: SqliteStore, tmp_path: Path
) -> None:
    store.apply(KIND, document(), "s.yaml", 0.0)  # no record of a backend in the home

    with pytest.raises(BackendChanged, match="run on the local backend"):
        keep_to_one_backend(tmp_path, store, Backend.KUBERNETES)


def test_two_starts_on_a_fresh_home_share_one_controller_name(tmp_path: Path) -> None:
    first = controller_name(tmp_path)
    (tmp_path / "controller-id").write_text("")  # left empty by a crash

    second = controller_name(tmp_path)

    assert controller_name(tmp_path) == second != first
    assert not list(tmp_path.glob("*.partial"))
