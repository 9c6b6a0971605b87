"""The controller process: the control loop in a thread and the REST API in front of it.

This is where the real adapters are chosen and wired together (SQLite store; on this machine
the local provider, the dashboard Serve client and HAProxy fronts; on Kubernetes the RayCluster
provider, Services as fronts and the dashboards through the API server), so it belongs to the
control layer, which may import all of them. The web app is the API layer's, above this one:
the caller passes its factory in.

``rayservice controller`` runs this in the foreground. It writes its pid to ``pid_file`` so
``rayservice stop`` can find it; stopping it leaves every cluster and endpoint running, and
the next controller adopts them. It opens the store (creating the home folder) before anything
else: a store that cannot be used stops the start with the store's error, and one that opened
cleanly is copied to its backup first.
"""

from __future__ import annotations

import importlib
import logging
import os
import re
import secrets
import signal
import socket
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any, Protocol

import uvicorn
from prometheus_client import CollectorRegistry

from rayservice.controller.loop import ControlLoop
from rayservice.controller.metrics import ControllerMetrics
from rayservice.controller.reconciler import Reconciler
from rayservice.host.addresses import refuse_exposed_without_token
from rayservice.host.ports import port_is_free
from rayservice.kubeapi.lightkube_api import LightkubeApi
from rayservice.kubeapi.mirror import ConfigMirror
from rayservice.kubeapi.preflight import cluster_problems
from rayservice.providers.base import ClusterProvider
from rayservice.providers.kubernetes import KubernetesProvider
from rayservice.providers.local import LocalProvider, runtime_root
from rayservice.providers.ray_autoscaler import ApiAccess
from rayservice.serve_client.base import ServeClient
from rayservice.serve_client.dashboard import DashboardServeClient
from rayservice.serve_client.jobs import DashboardJobClient, JobClient
from rayservice.serve_client.ray_status import DashboardRayStatus, RayStatusReader
from rayservice.spec.addresses import reachable_from_here
from rayservice.spec.config_objects import CONFIG_PLURALS
from rayservice.spec.errors import PermanentError, RayServiceError
from rayservice.spec.events import ObjectKind
from rayservice.spec.manifest import Manifest, RayCluster, RayService
from rayservice.spec.references import Resolve, as_written, resolve_manifest
from rayservice.spec.service_exposure import DEFAULT_EXPOSURE, ExposureSettings
from rayservice.spec.vocabulary import KIND, Backend
from rayservice.store.base import Store
from rayservice.store.sqlite import SqliteStore
from rayservice.traffic.base import TrafficFront
from rayservice.traffic.haproxy import HaproxyFront
from rayservice.traffic.kubernetes import KubernetesFront, Owners

log = logging.getLogger("rayservice.controller")


class AppFactory(Protocol):
    """(store, provider, package cache folder, wake the loop; the registry ``GET /metrics``
    serves, the API token, Ray's Serve and job APIs, where exposed Services listen, where
    Secrets and ConfigMaps go too) -> the ASGI app of the REST API"""

    def __call__(
        self,
        store: Store,
        provider: ClusterProvider,
        packages: Path,
        wake: Callable[[], None],
        /,
        *,
        metrics_registry: CollectorRegistry | None = None,
        token: str | None = None,
        serve: ServeClient | None = None,
        jobs: JobClient | None = None,
        exposure: ExposureSettings = DEFAULT_EXPOSURE,
        mirror: ConfigMirror | None = None,
        ray_status: RayStatusReader | None = None,
    ) -> Callable[..., Awaitable[Any]]: ...


CONTROLLER_ID_FILE = "controller-id"
_LABEL_VALUE = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?")
BACKEND_FILE = "backend"
PACKAGES_DIR = "packages"  # the package cache: local folders of Serve configs as zips


@dataclass(frozen=True)
class KubernetesAccess:
    """Which Kubernetes cluster: a kubeconfig file (None: the files of $KUBECONFIG, else
    ~/.kube/config) and a context of it (None: its current one)."""

    kubeconfig: Path | None = None
    context: str | None = None


class KubernetesNotReady(RayServiceError):
    """The Kubernetes cluster cannot run rayservice's clusters (a CRD or permissions lack)."""


@dataclass(frozen=True)
class Adapters:
    """The outside world of one backend, as the reconciler and the API take it."""

    provider: ClusterProvider
    front: TrafficFront
    serve: ServeClient
    jobs: JobClient
    port_usable: Callable[[int, str], bool]  # could a front listen on it
    resolve: Resolve  # how a cluster spec gets the values it refers to
    ray_status: RayStatusReader  # what `ray status` says of a cluster
    mirror: ConfigMirror | None = None  # where Secrets and ConfigMaps go too


def _local_adapters(home: Path, autoscaler_api: ApiAccess) -> Adapters:
    return Adapters(
        provider=LocalProvider(home, autoscaler_api=autoscaler_api),
        front=HaproxyFront(home / "fronts", socket_dir=runtime_root(home)),
        serve=DashboardServeClient(),
        jobs=DashboardJobClient(),
        ray_status=DashboardRayStatus(),
        port_usable=port_is_free,
        resolve=resolve_manifest,
    )


def _kubernetes_adapters(store: Store, home: Path, access: KubernetesAccess) -> Adapters:
    """Adapters over the Kubernetes cluster of ``access``, checked first. Services there have
    addresses of their own: any port is usable; pods resolve Secret references themselves, so
    Secrets and ConfigMaps go to the cluster too."""
    api = LightkubeApi(access.kubeconfig, access.context)
    problems = cluster_problems(api, "default")
    if problems:
        raise KubernetesNotReady(
            "the Kubernetes cluster cannot run rayservice's clusters:\n"
            + "\n".join(f"  {p}" for p in problems)
        )
    name = controller_name(home)
    mirror = ConfigMirror(api, name)
    for kind in CONFIG_PLURALS:  # those stored before this start, too
        for stored in store.list_resources(kind):
            try:
                mirror.put(stored.manifest)
            except RayServiceError as error:  # someone else's, or a moment's failure
                log.warning("%s %s not put in the cluster: %s", kind, stored.key, error)
    return Adapters(
        provider=KubernetesProvider(api, name),
        front=KubernetesFront(api, owners_in(store), name),
        serve=DashboardServeClient(http=api.http, ship_packages_from=home / PACKAGES_DIR),
        jobs=DashboardJobClient(http=api.http),
        ray_status=DashboardRayStatus(http=api.http),
        port_usable=lambda port, address: True,  # not asked: ports are the manifest's
        resolve=as_written,
        mirror=mirror,
    )


class BackendChanged(RayServiceError):
    """The home's objects run on another backend than the one asked for."""


def keep_to_one_backend(home: Path, store: Store, backend: Backend) -> None:
    """A home's services run on one backend: the first start that has any names it (in
    ``<home>/backend``), and a start on another refuses while the home has a RayService or a
    RayCluster (their clusters would be left running, unmanaged, where they are)."""
    path = home / BACKEND_FILE
    owners = [*store.keys(KIND), *store.keys(ObjectKind.RAY_CLUSTER)]
    try:
        recorded = path.read_text().strip()
    except FileNotFoundError:  # a home of a release that had only this machine's backend
        recorded = Backend.LOCAL.value if owners else ""
    if recorded and recorded != backend and owners:
        raise BackendChanged(
            f"the services of {home} run on the {recorded} backend ({len(owners)} object(s),"
            f" e.g. {owners[0]}): start with --backend {recorded}, or delete them first, or"
            " point RAYSERVICE_HOME at another home for the other backend"
        )
    if recorded != backend:
        partial = path.with_name(f"{path.name}.partial")
        partial.write_text(f"{backend}\n")
        os.replace(partial, path)


def controller_name(home: Path) -> str:
    """This controller's name on a Kubernetes cluster (a label value): the host's name when it
    was first given, for people to read, and a random id, kept in the home (``controller-id``)
    so that it outlives restarts and renamed hosts, and two homes never share it."""
    path = home / CONTROLLER_ID_FILE
    for _ in range(2):
        try:
            found: str | None = path.read_text().strip()
        except FileNotFoundError:
            found = None
        if found is not None and _LABEL_VALUE.fullmatch(found):
            return found
        host = re.sub(r"[^A-Za-z0-9.-]+", "-", socket.gethostname())[:40].strip("-.") or "host"
        name = f"{host}-{secrets.token_hex(5)}"
        home.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f"{path.name}.{secrets.token_hex(4)}.partial")
        partial.write_text(name + "\n")
        try:
            if found is not None:  # there, but not a name (a crash left it empty): replaced
                os.replace(partial, path)
                return name
            os.link(partial, path)  # the first of two starts wins; the other reads its name
            return name
        except FileExistsError:
            continue
        finally:
            partial.unlink(missing_ok=True)
    raise PermanentError(f"{path} names no controller: remove it and start again")


def owners_in(store: Store) -> Owners:
    """What a front key (``<namespace>.<name>``) names in ``store``: a RayService, else a
    standalone RayCluster, else None."""

    def owner(key: str) -> Manifest | None:
        namespace, _, name = key.partition(".")
        service = store.get(KIND, namespace, name)
        if service is not None:
            return RayService.model_validate(service.manifest)
        cluster = store.get(ObjectKind.RAY_CLUSTER, namespace, name)
        return RayCluster.model_validate(cluster.manifest) if cluster is not None else None

    return owner


def _preload_validators() -> None:
    """Admission checks manifests with Ray's own Serve schema and ``ray start`` options, which
    take most of a second to import; importing them at start keeps the first apply fast."""
    for module in ("ray.serve.schema", "ray.scripts.scripts"):
        importlib.import_module(module)


def _exit_on_sigterm(signum: int, frame: FrameType | None) -> None:
    """uvicorn stops on SIGTERM and then raises the signal again for the handler it found:
    exiting through SystemExit (not the default, which kills at once) lets the loop stop and
    the pid file go."""
    raise SystemExit(0)


def serve_forever(
    home: Path,
    create_app: AppFactory,
    *,
    host: str,
    port: int,
    pid_file: Path,
    token: str | None = None,
    exposure: ExposureSettings = DEFAULT_EXPOSURE,
    kubernetes: KubernetesAccess | None = None,
) -> None:
    """Run the control loop and serve the REST API on ``host:port`` until SIGINT or SIGTERM.

    With ``token`` every request but the health check must carry it; without one, a ``host``
    beyond loopback raises :class:`ExposedWithoutToken` before anything starts. ``exposure``
    says where Services asking to be reachable from other hosts listen, and on which backend
    (on Kubernetes, ``kubernetes`` says which cluster: a kubeconfig and a context; one that
    cannot run rayservice's clusters stops the start with what to install or grant).
    """
    refuse_exposed_without_token(host, token)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)  # probes run every half second
    store = SqliteStore(home / "state.db")  # makes home; refuses a damaged file
    try:
        store.back_up()
    except RayServiceError as e:  # the store itself works: the controller can run
        log.warning("the store was not backed up: %s", e)
    local = reachable_from_here(host)
    api_url = f"http://{f'[{local}]' if ':' in local else local}:{port}"
    keep_to_one_backend(home, store, exposure.backend)
    if exposure.on_this_machine:
        adapters = _local_adapters(home, ApiAccess(api_url, token))
    else:
        adapters = _kubernetes_adapters(store, home, kubernetes or KubernetesAccess())
    provider = adapters.provider
    metrics = ControllerMetrics(store)
    reconciler = Reconciler(
        store=store,
        provider=provider,
        serve=adapters.serve,
        front=adapters.front,
        port_usable=adapters.port_usable,
        clock=time.time,
        metrics=metrics,
        exposure=exposure,
        resolve=adapters.resolve,
    )
    loop = ControlLoop(reconciler)
    app = create_app(
        store,
        provider,
        home / PACKAGES_DIR,
        loop.wake,
        metrics_registry=metrics.registry,
        token=token,
        serve=adapters.serve,
        jobs=adapters.jobs,
        exposure=exposure,
        mirror=adapters.mirror,
        ray_status=adapters.ray_status,
    )
    worker = threading.Thread(target=loop.run, name="control-loop", daemon=True)
    pid_file.write_text(str(os.getpid()))
    worker.start()
    threading.Thread(target=_preload_validators, name="preload", daemon=True).start()
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        uvicorn.run(app, host=host, port=port, log_level="warning")
    finally:
        loop.stop()
        worker.join(timeout=30)
        pid_file.unlink(missing_ok=True)
