"""The pure planner: given what is wanted, what is seen and what was remembered, what to do.

Each row of ``CASES`` is one situation a RayService can be in, built from small factories,
with the actions the planner must ask for (exactly, in order), the Ready condition it must
report and, where a row needs it, a closer look at the plan.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any

import pytest
import yaml

from rayservice.cli.waiting import summarize
from rayservice.planner.actions import (
    DeleteCluster,
    DeleteFront,
    DeployServeConfig,
    EnsureCluster,
    EnsureFront,
    ForgetService,
    Plan,
    PlannedEvent,
)
from rayservice.planner.cluster import cluster_drift, cluster_name, cluster_request, lost_nodes
from rayservice.planner.plan import (
    BUSY_REQUEUE,
    DEPLOY_FOLLOW_UP,
    STEADY_REQUEUE,
    Desired,
    plan,
)
from rayservice.planner.readiness import deployable_config
from rayservice.planner.record import ActionFailure, ClusterSlot, ServiceRecord
from rayservice.spec.events import ObjectKind, ObjectRef
from rayservice.spec.hashing import cluster_spec_hash, serve_config_hash
from rayservice.spec.manifest import RayClusterSpec, RayService
from rayservice.spec.observed import (
    AppState,
    Backend,
    DeploymentState,
    FrontSpec,
    FrontState,
    NodePhase,
    NodeRole,
    Observed,
    ObservedCluster,
    ObservedNode,
    Replica,
    ServeState,
)
from rayservice.spec.references import NOTHING_FOUND, Found, resolve
from rayservice.spec.status import (
    AppStatus,
    Condition,
    RayServiceStatus,
    ServiceStatus,
    rfc3339,
)
from rayservice.spec.vocabulary import EventReason, EventType, FailureKind

UID = "3f0c9a52-uid"
OWNER = "default/demo"
NOW = 1_714_557_600.0
EARLIER = "2024-05-01T09:00:00Z"
SERVE_PORT, DASHBOARD_PORT = 8000, 8265
HEAD_BASE_PORT = 20000  # port block of the head: dashboard at +1, Serve proxy at +9

APP_CONFIG = {
    "applications": [
        {"name": "app1", "import_path": "hello:app", "route_prefix": "/", "deployments": []}
    ]
}
CHANGED_CONFIG = {
    "applications": [
        {"name": "app1", "import_path": "hello:app2", "route_prefix": "/", "deployments": []}
    ]
}


# -- factories ---------------------------------------------------------------------------


def manifest(
    config: dict[str, Any] | None = None, replicas: int = 2, exclude_head: bool = False
) -> dict[str, Any]:
    """A RayService in KubeRay's shape: one head, one worker group called ``small``."""
    return {
        "apiVersion": "ray.io/v1",
        "kind": "RayService",
        "metadata": {"name": "demo", "namespace": "default"},
        "spec": {
            "serveConfigV2": yaml.safe_dump(config or APP_CONFIG),
            "excludeHeadPodFromServeSvc": exclude_head,
            "rayClusterConfig": {
                "rayVersion": "2.60.0",
                "headGroupSpec": {"rayStartParams": {"num-cpus": "1"}, "template": {}},
                "workerGroupSpecs": [
                    {
                        "groupName": "small",
                        "replicas": replicas,
                        "minReplicas": 0,
                        "maxReplicas": 5,
                        "rayStartParams": {},
                        "template": {},
                    }
                ],
            },
        },
    }


def service(
    config: dict[str, Any] | None = None, replicas: int = 2, exclude_head: bool = False
) -> RayService:
    return RayService.model_validate(manifest(config, replicas, exclude_head))


def desired(
    svc: RayService | None = None,
    generation: int = 1,
    deleting: bool = False,
    found: Found = NOTHING_FOUND,
) -> Desired:
    """The service as the controller hands it to the planner, its references resolved with
    the Secrets and ConfigMaps ``found``."""
    svc = svc or service()
    config = yaml.safe_load(svc.spec.serveConfigV2)
    cluster = resolve(svc.spec.rayClusterConfig, found, svc.metadata.namespace)
    return Desired(svc, UID, generation, deleting, config, cluster)


FIRST = cluster_name(service(), UID, 1)  # the cluster of generation 1
SPEC_HASH = cluster_spec_hash(service().spec.rayClusterConfig)  # what the clusters run
OLD = "demo-raycluster-zzzzz"  # a cluster of the same owner the planner no longer uses


def node_name(cluster: str, label: str) -> str:
    """``head`` or ``w<i>`` to the node's full name on ``cluster``."""
    if label == "head":
        return f"{cluster}-head-hhhhh"
    return f"{cluster}-small-worker-{label}xxx"


def observed_cluster(
    name: str = FIRST,
    *,
    head_ready: bool = True,
    workers: int = 2,
    proxies: Iterable[str] = (),
    pending: Iterable[str] = (),
    failed: Iterable[str] = (),
    fault_tolerant: bool = False,
) -> ObservedCluster:
    """A cluster whose nodes run unless listed in ``pending``/``failed`` (by label) and whose
    Serve proxies are healthy for the labels in ``proxies``."""
    proxies, pending, failed = set(proxies), set(pending), set(failed)

    def node(label: str, role: NodeRole, group: str, base: int) -> ObservedNode:
        phase = NodePhase.RUNNING
        if label in pending or (role is NodeRole.HEAD and not head_ready):
            phase = NodePhase.PENDING
        if label in failed:
            phase = NodePhase.FAILED
        return ObservedNode(
            name=node_name(name, label),
            role=role,
            group=group,
            phase=phase,
            proxy_port=base + 9,
            proxy_ready=label in proxies,
            restarts=2 if label in failed else 0,
            started_at=NOW - 60,
            num_cpus=1.0,
        )

    nodes = [node("head", NodeRole.HEAD, "headgroup", HEAD_BASE_PORT)]
    nodes += [
        node(f"w{i}", NodeRole.WORKER, "small", HEAD_BASE_PORT + 10 * (i + 1))
        for i in range(workers)
    ]
    return ObservedCluster(
        name=name,
        owner=OWNER,
        spec_hash=SPEC_HASH,
        created_at=NOW - 120,
        nodes=tuple(nodes),
        dashboard_url=f"http://127.0.0.1:{HEAD_BASE_PORT + 1}",
        head_ready=head_ready,
        auth_token=f"token-{name}",
        fault_tolerant=fault_tolerant,
    )


HEAD_PROXY_PORT = HEAD_BASE_PORT + 9
DASHBOARD_URL = f"http://127.0.0.1:{HEAD_BASE_PORT + 1}"
DEPLOYED = serve_config_hash(deployable_config(APP_CONFIG, HEAD_PROXY_PORT))


def front_for(cluster: ObservedCluster | None, exclude_head: bool = False) -> FrontState:
    """The front the service's endpoints should have: every node of the cluster (but the head
    when excluded) as a serve backend, the head's dashboard behind the head service."""
    shares = ((cluster.name if cluster is not None else FIRST, 100),)  # the active cluster's
    if cluster is None or cluster.head is None:
        return FrontState(FrontSpec(SERVE_PORT, DASHBOARD_PORT, shares=shares), pid=1)
    backends = tuple(
        Backend(n.name, "127.0.0.1", n.proxy_port, cluster=cluster.name)
        for n in cluster.nodes
        if not (exclude_head and n.role is NodeRole.HEAD)
    )
    dashboard = Backend(cluster.head.name, "127.0.0.1", HEAD_BASE_PORT + 1, cluster=cluster.name)
    return FrontState(
        FrontSpec(SERVE_PORT, DASHBOARD_PORT, backends, dashboard, shares=shares), pid=1
    )


def observed(
    *clusters: ObservedCluster,
    serve: dict[str, ServeState] | None = None,
    front: FrontState | str | None = "matching",
    exclude_head: bool = False,
) -> Observed:
    """What the controller sees; the front matches the first cluster unless given."""
    if front == "matching":
        front = front_for(clusters[0] if clusters else None, exclude_head)
    assert not isinstance(front, str)
    return Observed({c.name: c for c in clusters}, serve or {}, front)


def record(
    active: RayService | None = None,
    *,
    name: str = FIRST,
    deployed: str | None = None,
    rejected: str | None = None,
    endpoints: Iterable[str] = (),
) -> ServiceRecord:
    """The controller's memory: ``active`` is the service whose cluster spec made the cluster."""
    slot = None
    if active is not None:
        spec = active.spec.rayClusterConfig
        slot = ClusterSlot(
            name=name, spec_hash=cluster_spec_hash(spec), cluster_spec=spec.model_dump(mode="json")
        )
    return ServiceRecord(
        active=slot,
        deployed={name: deployed} if deployed else {},
        failures={
            f"DeployServeConfig/{name}": ActionFailure(
                fingerprint=DEPLOYED, kind=FailureKind.REJECTED, message=rejected
            )
        }
        if rejected
        else {},
        endpoints=list(endpoints),
        serve_port=SERVE_PORT,
        dashboard_port=DASHBOARD_PORT,
    )


def running(app_status: str = "RUNNING", message: str = "") -> ServeState:
    return ServeState(
        apps=(
            AppState(
                name="app1",
                status=app_status,
                message=message,
                route_prefix="/",
                deployments=(DeploymentState("Hello", "HEALTHY", replicas=(Replica("RUNNING"),)),),
            ),
        )
    )


def status(
    ready: str | None = None,
    reason: str = "",
    apps: dict[str, str] | None = None,
    observed_generation: int = 0,
) -> RayServiceStatus:
    """A previous status: an optional Ready condition and apps on the first cluster."""
    conditions = []
    if ready is not None:
        conditions.append(
            Condition(
                type="Ready",
                status="True" if ready == "True" else "False",
                reason=reason,
                lastTransitionTime=EARLIER,
                observedGeneration=observed_generation,
            )
        )
    active = ServiceStatus(
        rayClusterName=FIRST if apps is not None else "",
        applicationStatuses={
            name: AppStatus(status=value, healthLastUpdateTime=EARLIER)
            for name, value in (apps or {}).items()
        },
    )
    return RayServiceStatus(
        conditions=conditions,
        activeServiceStatus=active,
        observedGeneration=observed_generation,
    )


SERVING = status("True", "NonZeroServeEndpoints", {"app1": "RUNNING"}, 1).model_copy(
    update={"numServeEndpoints": 3, "serviceStatus": "Running"}
)  # a service that served before it was deleted


# -- checks used by rows -------------------------------------------------------------------


def action(result: Plan[RayServiceStatus], kind: type[Any]) -> Any:
    [found] = [a for a in result.actions if isinstance(a, kind)]
    return found


def ready_condition(result: Plan[RayServiceStatus]) -> Condition:
    [condition] = [c for c in result.status.conditions if c.type == "Ready"]
    return condition


def first_apply(result: Plan[RayServiceStatus]) -> None:
    ensure = action(result, EnsureCluster)
    assert ensure.event == "ClusterCreated"
    assert ensure.request.name == FIRST
    assert ensure.request.owner == OWNER
    assert ensure.request.head.group == "headgroup"
    assert ensure.request.head.num_cpus == 1.0
    assert [(g.group, g.replicas) for g in ensure.request.workers] == [("small", 2)]
    assert "a head and 2 worker(s)" in ensure.reason
    front = action(result, EnsureFront)
    assert front.front == "default.demo"
    assert front.spec == FrontSpec(SERVE_PORT, DASHBOARD_PORT, shares=((FIRST, 100),))
    assert result.record.active is not None and result.record.active.name == FIRST


def head_not_ready(result: Plan[RayServiceStatus]) -> None:
    # Nothing reached the cluster yet, so generation 1 is not observed.
    assert result.status.observedGeneration == 0
    assert result.requeue_after == BUSY_REQUEUE


def first_deploy(result: Plan[RayServiceStatus]) -> None:
    deploy = action(result, DeployServeConfig)
    assert (deploy.cluster, deploy.dashboard_url, deploy.token) == (
        FIRST,
        DASHBOARD_URL,
        f"token-{FIRST}",
    )
    assert deploy.config["http_options"] == {"host": "127.0.0.1", "port": HEAD_PROXY_PORT}
    assert deploy.config["proxy_location"] == "EveryNode"
    assert deploy.config["applications"] == APP_CONFIG["applications"]
    assert deploy.config_hash == serve_config_hash(deploy.config) == DEPLOYED
    assert deploy.reason.startswith("first Serve config")
    assert result.requeue_after == DEPLOY_FOLLOW_UP, "look again while Ray applies it"


def user_http_options(result: Plan[RayServiceStatus]) -> None:
    deploy = action(result, DeployServeConfig)
    # host and port belong to the backend, the rest stays the user's
    assert deploy.config["http_options"] == {
        "host": "127.0.0.1",
        "port": HEAD_PROXY_PORT,
        "request_timeout_s": 5,
    }


def config_changed(result: Plan[RayServiceStatus]) -> None:
    deploy = action(result, DeployServeConfig)
    assert deploy.cluster == FIRST  # the running cluster, not one named after generation 2
    assert deploy.config["applications"][0]["import_path"] == "hello:app2"
    assert "serveConfigV2 changed" in deploy.reason
    assert result.record.active is not None and result.record.active.name == FIRST
    assert cluster_name(service(), UID, 2) != FIRST
    # generation 2 is not observed until its config has reached the cluster
    assert result.status.observedGeneration == 1


def rejected_same(result: Plan[RayServiceStatus]) -> None:
    assert any("DeployServeConfig" in note and "rejected" in note for note in result.notes)
    assert result.status.observedGeneration == 1


def apps_lost(result: Plan[RayServiceStatus]) -> None:
    deploy = action(result, DeployServeConfig)
    assert deploy.config_hash == DEPLOYED
    assert f"cluster {FIRST} reports no Serve applications" in deploy.reason


def replicas_changed(result: Plan[RayServiceStatus]) -> None:
    ensure = action(result, EnsureCluster)
    assert ensure.event == "ClusterUpdated"
    assert ensure.request.name == FIRST
    assert [(g.group, g.replicas) for g in ensure.request.workers] == [("small", 3)]
    assert "has 2 of 3 worker(s)" in ensure.reason
    assert result.record.active is not None and result.record.active.name == FIRST
    assert result.record.active.cluster_spec["workerGroupSpecs"][0]["replicas"] == 3
    # nothing to deploy: the new generation is observed at once
    assert result.status.observedGeneration == 2


def node_failed(result: Plan[RayServiceStatus]) -> None:
    ensure = action(result, EnsureCluster)
    assert ensure.request.name == FIRST
    assert ensure.event == "ClusterUpdated"
    assert node_name(FIRST, "w1") in ensure.reason
    assert "restarting" in ensure.reason and "restarts so far: 2" in ensure.reason


def _serve_backends(result: Plan[RayServiceStatus]) -> list[str]:
    """The backends the front sends requests to (drained ones stay in it, sent nothing)."""
    return [b.name for b in action(result, EnsureFront).spec.serve_backends if not b.drained]


def _drained(result: Plan[RayServiceStatus]) -> list[str]:
    return [b.name for b in action(result, EnsureFront).spec.serve_backends if b.drained]


def _lost(result: Plan[RayServiceStatus]) -> list[str]:
    return [
        f"{e.type} {e.involved.name if e.involved else ''}: {e.message}"
        for e in result.events
        if e.reason == "NodeLost"
    ]


def no_serve_backends(result: Plan[RayServiceStatus]) -> None:
    assert _serve_backends(result) == []
    reason = action(result, EnsureFront).reason
    assert f"none of {FIRST} takes requests: its head is gone and it has no GCS" in reason
    assert _drained(result) == [node_name(FIRST, n) for n in ("head", "w0", "w1")]
    [lost] = _lost(result)
    assert lost.startswith(f"Warning {node_name(FIRST, 'head')}: head node exited")
    assert "without GCS fault tolerance the cluster restarts with it" in lost


def workers_keep_serving(result: Plan[RayServiceStatus]) -> None:
    assert _serve_backends(result) == [node_name(FIRST, "w0"), node_name(FIRST, "w1")]
    assert _drained(result) == [node_name(FIRST, "head")]
    [lost] = _lost(result)
    assert "with GCS fault tolerance the workers keep serving" in lost


def endpoints_ready(result: Plan[RayServiceStatus]) -> None:
    # the head and w0 serve; w1's proxy answers but the node has not joined yet
    assert result.status.numServeEndpoints == 2
    assert result.status.serviceStatus == "Running"
    assert result.record.endpoints == sorted([node_name(FIRST, "head"), node_name(FIRST, "w0")])
    assert "2 serve endpoint(s)" in ready_condition(result).message
    assert result.requeue_after == STEADY_REQUEUE


def head_excluded(result: Plan[RayServiceStatus]) -> None:
    assert result.status.numServeEndpoints == 2
    assert node_name(FIRST, "head") not in result.record.endpoints


def stray_deleted(result: Plan[RayServiceStatus]) -> None:
    delete = action(result, DeleteCluster)
    assert delete.name == OLD
    assert "no longer used" in delete.reason


def deletion_with_front(result: Plan[RayServiceStatus]) -> None:
    assert result.actions[0] == DeleteFront(
        "default.demo", f"{OWNER} is being deleted", "demo-serve-svc"
    )
    assert [a.name for a in result.actions if isinstance(a, DeleteCluster)] == [FIRST, OLD]
    assert isinstance(result.actions[-1], ForgetService)
    assert result.status == SERVING


def app_running_event(result: Plan[RayServiceStatus]) -> None:
    assert (
        PlannedEvent(
            EventType.NORMAL,
            EventReason("ApplicationRunning"),
            f"application app1 on {FIRST} is RUNNING",
        )
        in result.events
    )
    app = result.status.activeServiceStatus.applicationStatuses["app1"]
    assert app.healthLastUpdateTime == rfc3339(NOW)


def app_failed_event(result: Plan[RayServiceStatus]) -> None:
    assert (
        PlannedEvent(
            EventType.WARNING,
            EventReason("ApplicationDeployFailed"),
            f"application app1 on {FIRST} is DEPLOY_FAILED: ImportError: hello",
        )
        in result.events
    )


def unchanged_app_no_event(result: Plan[RayServiceStatus]) -> None:
    assert not [e for e in result.events if e.reason.startswith("Application")]
    # an unchanged app keeps its time, so a steady service writes no new status
    app = result.status.activeServiceStatus.applicationStatuses["app1"]
    assert app.healthLastUpdateTime == EARLIER


def endpoint_added(result: Plan[RayServiceStatus]) -> None:
    head = node_name(FIRST, "head")
    assert PlannedEvent(
        EventType.NORMAL,
        EventReason.ENDPOINT_ADDED,
        f"serve endpoint {head} added (cluster {FIRST})",
        ObjectRef(ObjectKind.POD, head),
    ) in (result.events)


def endpoint_removed(result: Plan[RayServiceStatus]) -> None:
    w0 = node_name(FIRST, "w0")
    assert PlannedEvent(
        EventType.NORMAL,
        EventReason.ENDPOINT_REMOVED,
        f"serve endpoint {w0} removed",
        ObjectRef(ObjectKind.POD, w0),
    ) in (result.events)
    assert w0 not in result.record.endpoints


@dataclass(frozen=True)
class Case:
    desired: Desired
    observed: Observed
    record: ServiceRecord
    previous: RayServiceStatus = field(default_factory=RayServiceStatus)
    actions: tuple[str, ...] = ()  # exact action types, in order
    ready: tuple[str, str] | None = None  # Ready (status, reason)
    message: str = ""  # a part of the Ready message
    check: Callable[[Plan[RayServiceStatus]], None] | None = None


CASES = {
    # Nothing exists yet: create the generation's cluster and the stable endpoints.
    "first-apply-creates-cluster-and-front": Case(
        desired(),
        observed(front=None),
        record(),
        actions=("EnsureCluster", "EnsureFront"),
        ready=("False", "Initializing"),
        message=f"waiting for the head of cluster {FIRST}",
        check=first_apply,
    ),
    # The cluster exists but its head does not answer: nothing can be deployed yet.
    "head-not-ready-no-deploy": Case(
        desired(),
        observed(observed_cluster(head_ready=False)),
        record(service()),
        ready=("False", "Initializing"),
        message=f"waiting for the head of cluster {FIRST} to answer",
        check=head_not_ready,
    ),
    # The head answers: the Serve config goes to it, proxies on loopback, one per node.
    "head-ready-deploys-config": Case(
        desired(),
        observed(observed_cluster(), serve={FIRST: ServeState()}),
        record(service()),
        actions=("DeployServeConfig",),
        ready=("False", "Initializing"),
        message=f"waiting for Serve applications on cluster {FIRST}",
        check=first_deploy,
    ),
    # The user's http_options keep their other keys; host and port are overridden.
    "user-http-options-host-and-port-overridden": Case(
        desired(
            service(
                {
                    **APP_CONFIG,
                    "http_options": {"host": "0.0.0.0", "port": 8000, "request_timeout_s": 5},
                }
            )
        ),
        observed(observed_cluster()),
        record(service()),
        actions=("DeployServeConfig",),
        check=user_http_options,
    ),
    # The config this cluster accepted is still wanted and its apps run: nothing to do.
    "config-already-deployed-no-deploy": Case(
        desired(),
        observed(observed_cluster(), serve={FIRST: running()}),
        record(service(), deployed=DEPLOYED),
        ready=("False", "Initializing"),
        message="waiting for a healthy Serve proxy",
    ),
    # Only serveConfigV2 changed: the new config goes to the same cluster.
    "serve-config-changed-redeploys-in-place": Case(
        desired(service(CHANGED_CONFIG), generation=2),
        observed(observed_cluster(), serve={FIRST: running()}),
        record(service(), deployed=DEPLOYED),
        previous=status(apps={"app1": "RUNNING"}, observed_generation=1),
        actions=("DeployServeConfig",),
        check=config_changed,
    ),
    # Ray refused exactly this config before: PUTting it again cannot help.
    "rejected-config-not-retried": Case(
        desired(),
        observed(observed_cluster(), serve={FIRST: ServeState()}),
        record(service(), rejected="no module hello"),
        ready=("False", "Initializing"),
        message="Ray rejected the Serve config: no module hello",
        check=rejected_same,
    ),
    # A config that differs from the refused one is submitted.
    "changed-config-after-rejection-deploys": Case(
        desired(service(CHANGED_CONFIG), generation=2),
        observed(observed_cluster(), serve={FIRST: ServeState()}),
        record(service(), rejected="no module hello"),
        actions=("DeployServeConfig",),
    ),
    # The head restarted without GCS fault tolerance and forgot its apps: submit again.
    "apps-lost-redeploys": Case(
        desired(),
        observed(observed_cluster(), serve={FIRST: ServeState()}),
        record(service(), deployed=DEPLOYED),
        actions=("EnsureFront", "DeployServeConfig"),  # the front drains it meanwhile
        check=apps_lost,
    ),
    # Serve status could not be read: no evidence the apps are gone, so no redeploy.
    "serve-status-unknown-no-redeploy": Case(
        desired(),
        observed(observed_cluster()),
        record(service(), deployed=DEPLOYED),
    ),
    # Only the worker count changed: scale the same cluster, no new cluster name.
    "worker-replicas-changed-scales-in-place": Case(
        desired(service(replicas=3), generation=2),
        observed(observed_cluster(), serve={FIRST: running()}),
        record(service(replicas=2), deployed=DEPLOYED),
        actions=("EnsureCluster",),
        check=replicas_changed,
    ),
    # A worker's process exited: it leaves the front first, then the provider is asked to
    # restart it.
    "failed-node-restarted": Case(
        desired(),
        observed(observed_cluster(failed=["w1"]), serve={FIRST: running()}),
        record(service(), deployed=DEPLOYED),
        actions=("EnsureFront", "EnsureCluster"),
        check=node_failed,
    ),
    # The head's process is gone and the cluster has no GCS fault tolerance: no node can
    # serve (the workers' proxies would hang every request), the front answers 503 at once.
    "head-lost-without-fault-tolerance": Case(
        desired(),
        observed(observed_cluster(failed=["head"]), serve={FIRST: running()}),
        record(service(), deployed=DEPLOYED),
        actions=("EnsureFront", "EnsureCluster"),
        check=no_serve_backends,
    ),
    # With fault tolerance the workers keep serving while the head is restarted.
    "head-lost-with-fault-tolerance": Case(
        desired(),
        observed(observed_cluster(failed=["head"], fault_tolerant=True), serve={FIRST: running()}),
        record(service(), deployed=DEPLOYED),
        actions=("EnsureFront", "EnsureCluster"),
        check=workers_keep_serving,
    ),
    # Healthy proxies on running nodes are the serve endpoints; a proxy on a node that has
    # not joined yet does not count.
    "endpoints-make-service-ready": Case(
        desired(),
        observed(
            observed_cluster(proxies=["head", "w0", "w1"], pending=["w1"]),
            serve={FIRST: running()},
        ),
        record(service(), deployed=DEPLOYED),
        ready=("True", "NonZeroServeEndpoints"),
        check=endpoints_ready,
    ),
    # excludeHeadPodFromServeSvc: the head is neither a backend nor counted.
    "exclude-head-from-serve-svc": Case(
        desired(service(exclude_head=True)),
        observed(
            observed_cluster(proxies=["head", "w0", "w1"]),
            serve={FIRST: running()},
            exclude_head=True,
        ),
        record(service(exclude_head=True), deployed=DEPLOYED),
        ready=("True", "NonZeroServeEndpoints"),
        check=head_excluded,
    ),
    # The head serves, but excluded it is not an endpoint: nothing serves yet.
    "exclude-head-only-head-serving-not-ready": Case(
        desired(service(exclude_head=True)),
        observed(observed_cluster(proxies=["head"]), serve={FIRST: running()}, exclude_head=True),
        record(service(exclude_head=True), deployed=DEPLOYED),
        ready=("False", "Initializing"),
    ),
    # A second cluster of the same owner that is not the active one is removed.
    "stray-cluster-deleted": Case(
        desired(),
        observed(observed_cluster(), observed_cluster(OLD), serve={FIRST: running()}),
        record(service(), deployed=DEPLOYED),
        actions=("DeleteCluster",),
        check=stray_deleted,
    ),
    # Deletion: endpoints first, then every cluster, then the resource; status unchanged.
    "deletion-removes-everything": Case(
        desired(deleting=True),
        observed(observed_cluster(), observed_cluster(OLD)),
        record(service(), deployed=DEPLOYED),
        previous=SERVING,
        actions=("DeleteFront", "DeleteCluster", "DeleteCluster", "ForgetService"),
        check=deletion_with_front,
    ),
    # Deletion with no front left: no DeleteFront.
    "deletion-without-front": Case(
        desired(deleting=True),
        observed(observed_cluster(), front=None),
        record(service()),
        actions=("DeleteCluster", "ForgetService"),
    ),
    # An application reached RUNNING: a Normal event says so.
    "app-status-change-emits-event": Case(
        desired(),
        observed(observed_cluster(), serve={FIRST: running()}),
        record(service(), deployed=DEPLOYED),
        previous=status(apps={"app1": "DEPLOYING"}),
        check=app_running_event,
    ),
    # An application failed: a Warning event with Ray's message, and Ready says why.
    "app-failure-emits-warning": Case(
        desired(),
        observed(observed_cluster(), serve={FIRST: running("DEPLOY_FAILED", "ImportError: hello")}),
        record(service(), deployed=DEPLOYED),
        previous=status(apps={"app1": "DEPLOYING"}),
        ready=("False", "Initializing"),
        message="application app1 is DEPLOY_FAILED: ImportError: hello",
        check=app_failed_event,
    ),
    # Same app status as before: no event, no new timestamp.
    "unchanged-app-no-event": Case(
        desired(),
        observed(observed_cluster(proxies=["head"]), serve={FIRST: running()}),
        record(service(), deployed=DEPLOYED, endpoints=[node_name(FIRST, "head")]),
        previous=status("True", "NonZeroServeEndpoints", {"app1": "RUNNING"}, 1),
        ready=("True", "NonZeroServeEndpoints"),
        check=unchanged_app_no_event,
    ),
    # A node's proxy became healthy: an EndpointAdded event names it.
    "endpoint-added-event": Case(
        desired(),
        observed(observed_cluster(proxies=["head"]), serve={FIRST: running()}),
        record(service(), deployed=DEPLOYED),
        ready=("True", "NonZeroServeEndpoints"),
        check=endpoint_added,
    ),
    # A node's proxy stopped answering: EndpointRemoved, and the record forgets it.
    "endpoint-removed-event": Case(
        desired(),
        observed(observed_cluster(proxies=["head"]), serve={FIRST: running()}),
        record(
            service(),
            deployed=DEPLOYED,
            endpoints=[node_name(FIRST, "head"), node_name(FIRST, "w0")],
        ),
        ready=("True", "NonZeroServeEndpoints"),
        check=endpoint_removed,
    ),
    # It served before and now nothing serves: ZeroServeEndpoints, not Initializing.
    "lost-endpoints-zero-serve-endpoints": Case(
        desired(),
        observed(observed_cluster(), serve={FIRST: running()}),
        record(service(), deployed=DEPLOYED, endpoints=[node_name(FIRST, "head")]),
        previous=status("True", "NonZeroServeEndpoints", {"app1": "RUNNING"}, 1),
        ready=("False", "ZeroServeEndpoints"),
        message="waiting for a healthy Serve proxy",
    ),
}


@pytest.mark.parametrize("case", list(CASES.values()), ids=list(CASES))
def test_plan(case: Case) -> None:
    before = case.record.model_copy(deep=True)

    result = plan(case.desired, case.observed, case.record, case.previous, NOW)

    assert [type(a).__name__ for a in result.actions] == list(case.actions)
    if case.ready is not None:
        condition = ready_condition(result)
        assert (condition.status, condition.reason) == case.ready
        assert condition.observedGeneration == case.desired.generation
    if case.message:
        assert case.message in ready_condition(result).message
    if case.check is not None:
        case.check(result)
    assert case.record == before, "plan() must not change the record it was given"


def _apps(app_status: str, *replica_states: str) -> ServeState:
    replicas = tuple(Replica(state) for state in replica_states)
    deployment = DeploymentState("Hello", "UPDATING", replicas=replicas)
    return ServeState(apps=(AppState("app1", app_status, deployments=(deployment,)),))


def test_a_serve_started_again_from_nothing_takes_no_requests_until_an_app_runs() -> None:
    """After a head restart without fault tolerance the config goes out again; until an app
    is RUNNING the proxies would only hold requests, so the front answers 503 at once."""
    nodes = [node_name(FIRST, n) for n in ("head", "w0", "w1")]
    cluster = observed_cluster(proxies=["head", "w0", "w1"])
    served = status("True", "NonZeroServeEndpoints", {"app1": "RUNNING"}, 1)

    resubmitted = plan(
        desired(),
        observed(cluster, serve={FIRST: ServeState()}),
        record(service(), deployed=DEPLOYED, endpoints=nodes),
        served,
        NOW,
    )
    assert [type(a).__name__ for a in resubmitted.actions] == ["EnsureFront", "DeployServeConfig"]
    assert sorted(_drained(resubmitted)) == sorted(nodes)
    reason = action(resubmitted, EnsureFront).reason
    assert f"none of {FIRST} takes requests: its Serve applications start again" in reason
    assert resubmitted.record.serve_restarting == [FIRST]
    assert resubmitted.status.numServeEndpoints == 0

    # replicas come up: still nothing (the front has drained them already)
    deploying = plan(
        desired(),
        observed(
            cluster,
            serve={FIRST: _apps("DEPLOYING", "RUNNING", "STARTING")},
            front=FrontState(action(resubmitted, EnsureFront).spec, pid=1),
        ),
        resubmitted.record,
        resubmitted.status,
        NOW + 5,
    )
    assert deploying.actions == () and deploying.record.serve_restarting == [FIRST]
    assert deploying.status.numServeEndpoints == 0

    # an app runs: the nodes serve again
    answering = plan(
        desired(),
        observed(
            cluster,
            serve={FIRST: running()},
            front=FrontState(action(resubmitted, EnsureFront).spec, pid=1),
        ),
        deploying.record,
        deploying.status,
        NOW + 10,
    )
    assert _drained(answering) == [] and sorted(_serve_backends(answering)) == sorted(nodes)
    assert answering.record.serve_restarting == []
    assert answering.status.numServeEndpoints == 3


@pytest.mark.parametrize(
    "serve",
    [
        _apps("DEPLOYING", "UPDATING"),  # an in-place user_config change
        _apps("DEPLOYING", "STOPPING", "STARTING"),  # new code for a one-replica deployment
        _apps("DEPLOYING", "STARTING"),  # a deployment added
        _apps("RUNNING"),  # scaled to zero
    ],
)
def test_an_update_in_place_keeps_the_front_whatever_its_replicas_do(serve: ServeState) -> None:
    cluster = observed_cluster(proxies=["head", "w0", "w1"])
    nodes = sorted(n.name for n in cluster.nodes)

    result = plan(
        desired(),
        observed(cluster, serve={FIRST: serve}),
        record(service(), deployed=DEPLOYED, endpoints=nodes),
        status("True", "NonZeroServeEndpoints", {"app1": "RUNNING"}, 1),
        NOW,
    )

    assert not any(isinstance(a, EnsureFront) for a in result.actions)
    assert result.status.numServeEndpoints == 3


def test_ready_transition_time_moves_only_when_the_status_flips() -> None:
    cluster = observed_cluster(proxies=["head"])
    previous = status("True", "NonZeroServeEndpoints", {"app1": "RUNNING"}, 1)

    steady = plan(
        desired(),
        observed(cluster, serve={FIRST: running()}),
        record(service(), deployed=DEPLOYED),
        previous,
        NOW,
    )
    lost = plan(
        desired(),
        observed(observed_cluster(), serve={FIRST: running()}),
        record(service(), deployed=DEPLOYED),
        previous,
        NOW,
    )

    assert ready_condition(steady).lastTransitionTime == EARLIER
    assert ready_condition(lost).lastTransitionTime == rfc3339(NOW)


def test_cluster_name_is_deterministic_for_uid_and_generation() -> None:
    svc = service()

    name = cluster_name(svc, UID, 1)

    assert name == cluster_name(service(replicas=4), UID, 1)
    assert re.fullmatch(r"demo-raycluster-[bcdfghjklmnpqrstvwxz2456789]{5}", name)
    assert name != cluster_name(svc, UID, 2)
    assert name != cluster_name(svc, "another-uid", 1)


def test_replanning_after_a_lost_checkpoint_asks_for_the_same_cluster() -> None:
    first = plan(desired(), observed(front=None), record(), status(), NOW)
    again = plan(desired(), observed(front=None), record(), status(), NOW + 30)

    assert action(first, EnsureCluster).request == action(again, EnsureCluster).request


def test_generation_with_undeployed_config_is_not_observed_while_the_head_is_down() -> None:
    # The head restarts (not answering) while both workers still serve the old apps, and
    # the user applies a new serveConfigV2 as generation 2.
    previous = status("True", "NonZeroServeEndpoints", {"app1": "RUNNING"}, 1)
    cluster = observed_cluster(head_ready=False, proxies=["w0", "w1"])

    result = plan(
        desired(service(CHANGED_CONFIG), generation=2),
        observed(cluster),
        record(service(), deployed=DEPLOYED, endpoints=[node_name(FIRST, "w0")]),
        previous,
        NOW,
    )

    # The new config has not reached the cluster, so generation 2 must not count as
    # observed: otherwise `apply --wait` takes the old RUNNING apps for the new ones.
    document = {"status": result.status.model_dump(mode="json")}
    line, outcome = summarize(document, 2)
    assert result.status.observedGeneration == 1, (line, outcome)


def test_a_front_short_of_a_process_is_ensured_and_told_as_a_warning() -> None:
    cluster = observed_cluster()
    degraded = replace(front_for(cluster), degraded="one of its two HAProxy processes is down")
    steady = record(service(), deployed=DEPLOYED, endpoints=[node_name(FIRST, "head")])

    result = plan(
        desired(),
        observed(cluster, serve={FIRST: running()}, front=degraded),
        steady,
        status(),
        NOW,
    )

    ensure = action(result, EnsureFront)
    assert ensure.spec == degraded.spec
    assert ensure.reason == (
        "starting a process of the front again: one of its two HAProxy processes is down"
    )
    [lost] = [e for e in result.events if e.reason == "FrontProcessLost"]
    assert lost.type == "Warning" and lost.involved is not None
    assert lost.involved.name == "demo-serve-svc"


def test_an_outage_is_timed_from_the_last_endpoint_lost_to_the_first_one_back() -> None:
    serving = record(service(), deployed=DEPLOYED, endpoints=[node_name(FIRST, "head")])
    served = status("True", "NonZeroServeEndpoints", {"app1": "RUNNING"}, 1)

    lost = plan(
        desired(), observed(observed_cluster(), serve={FIRST: running()}), serving, served, NOW
    )
    back = plan(
        desired(),
        observed(observed_cluster(proxies=["head"]), serve={FIRST: running()}),
        lost.record,
        lost.status,
        NOW + 12.5,
    )

    assert lost.record.outage_since == NOW
    assert not [e for e in lost.events if e.reason == "ServingAgain"]
    assert back.record.outage_since is None
    [again] = [e for e in back.events if e.reason == "ServingAgain"]
    assert again.message == "serving again after 12.5 s without a serve endpoint"


def test_a_lost_node_is_told_with_the_last_line_of_its_log() -> None:
    cluster = observed_cluster(failed=["w1"])
    nodes = tuple(
        replace(n, last_words="\x1b[31mRuntimeError: raylet died\x1b[0m")
        if n.phase is NodePhase.FAILED
        else n
        for n in cluster.nodes
    )

    [(pod, meaning)] = lost_nodes(replace(cluster, nodes=nodes))

    assert pod == node_name(FIRST, "w1")
    assert meaning == (
        "worker node exited (restarts so far: 2); its log ends: RuntimeError: raylet died"
    )


def test_a_managed_redis_that_is_down_is_asked_for_again() -> None:
    spec = dict(service().spec.rayClusterConfig.model_dump(exclude_none=True))
    spec["gcsFaultToleranceOptions"] = {"redisAddress": "redis:6379"}
    request = cluster_request(
        FIRST, "default/demo", RayClusterSpec.model_validate(spec), "h", annotations={}
    )
    down = replace(observed_cluster(), storage_problem="the Redis rayservice runs is not running")

    assert cluster_drift(request, down) == (
        "the Redis rayservice runs is not running; starting it again"
    )


def test_a_cluster_made_from_an_earlier_spec_is_given_the_current_one() -> None:
    spec = service().spec.rayClusterConfig
    request = cluster_request(FIRST, OWNER, spec, cluster_spec_hash(spec), annotations={})
    earlier = replace(observed_cluster(), spec_hash="hash-before-a-group-was-added")

    assert cluster_drift(request, earlier) == (
        f"cluster {FIRST} was made from an earlier form of its spec (hash"
        f" hash-before-a-group-was-added, now {SPEC_HASH}); applying the current one in place,"
        " its nodes stay"
    )
    assert cluster_drift(request, observed_cluster()) is None
    assert cluster_drift(request, replace(observed_cluster(), spec_hash="")) is None  # unknown


def test_a_redis_out_of_reach_is_a_warning_on_the_cluster() -> None:
    problem = "Redis at 10.0.0.5:6379 is unreachable: [Errno 111] Connection refused"
    cluster = replace(observed_cluster(), fault_tolerant=True, storage_problem=problem)
    steady = record(service(), deployed=DEPLOYED, endpoints=[node_name(FIRST, "head")])

    result = plan(desired(), observed(cluster, serve={FIRST: running()}), steady, status(), NOW)

    [warning] = [e for e in result.events if e.reason == "RedisUnreachable"]
    assert warning.type == "Warning" and warning.message == problem
    assert warning.involved is not None and warning.involved.name == FIRST


def test_a_cluster_name_fits_kuberays_53_characters_however_long_the_service_name() -> None:
    # scenario: a 47-character service (the longest KubeRay takes) loses the -raycluster infix
    longest = service()
    longest.metadata.name = "s" * 47
    short = cluster_name(service(), UID, 1)

    name = cluster_name(longest, UID, 1)

    assert short.startswith(f"{service().metadata.name}-raycluster-")
    assert len(name) == 53
    assert name.startswith("s" * 47 + "-")
    assert name[-5:] == short[-5:]
