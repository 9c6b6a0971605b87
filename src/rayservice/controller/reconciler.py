"""One reconcile pass for one RayService: observe -> plan -> checkpoint -> execute -> status.

Observation and execution are the only places that touch the outside world; the decision in
between is the planner's. The record is checkpointed before any action runs, so a controller
killed mid-pass resumes from the store and repeats only idempotent steps. A failed action is
filed in the record by what its error means (:mod:`rayservice.controller.outcomes`), and the
next pass comes when that says, never sooner.

A steady service costs little: the planner is a pure function of the stored resource, the
record, what was observed and the time (which matters only once a stored timer falls due), so
when a pass did nothing (no action, no event) and none of its inputs changed since, the next
pass only observes and stops there. This memory is an optimisation, never needed for
correctness: a restarted controller simply plans once more.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from rayservice.controller.metrics import ControllerMetrics
from rayservice.controller.outcomes import failure_after
from rayservice.controller.views import cluster_roles, cluster_view, pod_views, service_views
from rayservice.planner.actions import (
    Action,
    DeleteCluster,
    DeleteFront,
    DeployServeConfig,
    EnsureCluster,
    EnsureFront,
    ForgetService,
    Plan,
)
from rayservice.planner.cluster_status import WorkerBounds, observed_status
from rayservice.planner.plan import STEADY_REQUEUE, Desired, front_key, plan
from rayservice.planner.record import ServiceRecord, load_record
from rayservice.planner.standalone import DesiredCluster, plan_cluster
from rayservice.providers.base import ClusterProvider
from rayservice.serve_client.base import ServeClient
from rayservice.spec.autoscaling import ScaleRequest
from rayservice.spec.errors import RayServiceError
from rayservice.spec.events import ObjectKind, ObjectRef
from rayservice.spec.manifest import Manifest, RayCluster, RayService
from rayservice.spec.observed import Observed, ObservedCluster, ServeState
from rayservice.spec.references import Resolve, Source, resolve_manifest
from rayservice.spec.service_exposure import (
    DEFAULT_EXPOSURE,
    ExposureSettings,
    PortAsk,
    exposure,
    port_ask,
    serve_service_exists,
)
from rayservice.spec.status import RayClusterStatus, RayServiceStatus
from rayservice.spec.vocabulary import EventReason, EventType, FailureKind, ServicePort
from rayservice.store.base import Store, StoredResource, View
from rayservice.store.referenced import Version, referenced, versions_now
from rayservice.traffic.base import TrafficFront


@dataclass(frozen=True)
class _Quiet:
    """A pass that did nothing: while the stored resource (its resourceVersion), the Secrets
    and ConfigMaps its spec refers to (theirs), what is observed and the time (before the next
    timer) stay as they were, so does its plan."""

    resource_version: int
    referenced: tuple[tuple[Source, Version], ...]
    observed: Observed
    plan: AnyPlan
    scale: dict[str, dict[str, Any]]  # what the clusters' autoscalers asked for


AnyPlan = Plan[RayServiceStatus] | Plan[RayClusterStatus]
log = logging.getLogger("rayservice.controller")


def _with_held(stored: dict[str, dict[str, Any]], observed: Observed) -> dict[str, dict[str, Any]]:
    """The stored scale requests, and the asks of the clusters that hold their autoscaler's
    asks themselves (KubeRay's RayCluster), which win."""
    held = {
        name: dict(cluster.autoscaler_request)
        for name, cluster in observed.clusters.items()
        if cluster.autoscaler_request is not None
    }
    return {**stored, **held}


def _scale_of(asked: dict[str, dict[str, Any]]) -> dict[str, ScaleRequest]:
    """The scale requests of an owner's autoscalers, by cluster (the API checked each stored
    one before storing it; a provider reports a cluster's own within the same bounds)."""
    return {cluster: ScaleRequest.model_validate(body) for cluster, body in asked.items()}


class Reconciler:
    def __init__(
        self,
        store: Store,
        provider: ClusterProvider,
        serve: ServeClient,
        front: TrafficFront,
        port_usable: Callable[[int, str], bool],
        clock: Callable[[], float],
        jitter: Callable[[], float] = random.random,
        metrics: ControllerMetrics | None = None,
        exposure: ExposureSettings = DEFAULT_EXPOSURE,
        resolve: Resolve = resolve_manifest,
    ) -> None:
        self.store = store
        self.provider = provider
        self.serve = serve
        self.front = front
        self.port_usable = port_usable  # (port, address): could a front bind it now
        self.exposure = exposure
        self.resolve = resolve  # the backend's way to the cluster spec (Secret values in or not)
        self.clock = clock
        self.jitter = jitter  # spreads retry back-offs: a number in [0, 1)
        self._quiet: dict[str, _Quiet] = {}
        self.metrics = metrics if metrics is not None else ControllerMetrics(store)

    def settled(self, kind: ObjectKind, namespace: str, name: str) -> AnyPlan | None:
        """The plan of the last pass if nothing it depends on changed since (a steady
        service or cluster), found without reading the resource; None when a pass is needed."""
        key = f"{namespace}/{name}"
        quiet = self._quiet.pop(key, None)
        if quiet is None:
            return None
        if self.store.resource_version(kind, namespace, name) != quiet.resource_version:
            return None
        named = tuple(source for source, _ in quiet.referenced)
        if versions_now(self.store, namespace, named) != tuple(v for _, v in quiet.referenced):
            return None
        wake_at, now = quiet.plan.wake_at, self.clock()
        if wake_at is not None and now >= wake_at:
            return None
        if _with_held(self.store.scale_requests(key), quiet.observed) != quiet.scale:
            return None
        if self._observe(key, quiet.plan.record) != quiet.observed:
            return None
        self._quiet[key] = quiet
        if wake_at is not None and wake_at - now < quiet.plan.requeue_after:
            return replace(quiet.plan, requeue_after=wake_at - now)
        return quiet.plan

    def reconcile(self, resource: StoredResource) -> AnyPlan:
        """A full pass (the loop asks :meth:`settled` first)."""
        record = load_record(resource.record)
        namespace = resource.namespace
        result: AnyPlan
        if resource.kind == ObjectKind.RAY_CLUSTER:
            cluster = RayCluster.model_validate(resource.manifest)
            if not resource.deleting:
                record = self._with_fronts(resource.key, cluster, record)
            values = referenced(self.store, namespace, cluster.spec)
            resolution = self.resolve(cluster, values.found)
            observed = self._observe(resource.key, record)
            asked = self._scale_requests(resource.key, observed)
            scale = _scale_of(asked)
            result = plan_cluster(
                DesiredCluster(
                    cluster,
                    resource.generation,
                    resource.deleting,
                    resolution,
                    scale.get(cluster.metadata.name),
                ),
                observed,
                record,
                RayClusterStatus.model_validate(resource.status),
                self.clock(),
            )
        else:
            service = RayService.model_validate(resource.manifest)
            if not resource.deleting:
                record = self._with_fronts(resource.key, service, record)
            values = referenced(self.store, namespace, service.spec.rayClusterConfig)
            desired = Desired(
                service=service,
                uid=resource.uid,
                generation=resource.generation,
                deleting=resource.deleting,
                serve_config=service.spec.serve_config(),
                cluster=self.resolve(service, values.found),
            )
            observed = self._observe(resource.key, record)
            asked = self._scale_requests(resource.key, observed)
            desired = replace(desired, scale=_scale_of(asked))
            previous = RayServiceStatus.model_validate(resource.status)
            result = plan(desired, observed, record, previous, self.clock())
        return self._carry_out(resource, values.versions, observed, result, asked)

    def _carry_out(
        self,
        resource: StoredResource,
        referenced_versions: tuple[tuple[Source, Version], ...],
        observed: Observed,
        result: AnyPlan,
        scale: dict[str, dict[str, Any]],
    ) -> AnyPlan:
        """Checkpoint, execute, write status, views and events; remember a quiet pass."""
        kind, namespace, name = resource.kind, resource.namespace, resource.name
        written = 0  # the writes of this pass that moved the resourceVersion
        written += self.store.write_record(
            kind, namespace, name, result.record.model_dump(mode="json")
        )
        record, retry_in = self._execute(resource, result)
        if not any(isinstance(a, ForgetService) for a in result.actions):
            written += self.store.write_record(
                kind, namespace, name, record.model_dump(mode="json")
            )
            written += self.store.write_status(
                kind, namespace, name, result.status.model_dump(mode="json")
            )
            if isinstance(result.status, RayServiceStatus):
                previous = RayServiceStatus.model_validate(resource.status)
                self.metrics.status_written(resource, previous, result.status, self.clock())
            self._write_views(resource, observed, result, _scale_of(scale))
            if not (result.actions or result.events):
                # the version this pass leaves behind, counted from the one it read: anything
                # written by others meanwhile (an apply) moves it further, and the next pass
                # plans again
                self._quiet[resource.key] = _Quiet(
                    resource.resource_version + written, referenced_versions, observed, result,
                    scale,
                )  # fmt: skip
        for event in result.events:
            self._event(resource, event.type, event.reason, event.message, event.involved)
        if retry_in is not None:  # an action failed: the next pass comes when its outcome says
            return replace(result, record=record, requeue_after=retry_in)
        return result

    # -- observe ---------------------------------------------------------------------------

    def _scale_requests(self, key: str, observed: Observed) -> dict[str, dict[str, Any]]:
        """What the autoscalers of ``key``'s clusters asked, without the requests of clusters
        that are gone and the workers to delete that are gone already (so an autoscaler
        waiting for them goes on). One read when nothing is to drop, as on most passes. A
        cluster that holds its autoscaler's asks itself says them instead."""
        asked = self.store.scale_requests(key)
        gone = [cluster for cluster in asked if cluster not in observed.clusters]
        if gone:
            self.store.forget_scale_requests(gone)
        pruned = False
        for cluster, request in asked.items():
            found = observed.clusters.get(cluster)
            present = {n.name for n in found.nodes} if found is not None else set()
            if found is not None and set(request.get("workersToDelete", [])) - present:
                self.store.forget_removed_workers(cluster, present)
                pruned = True
        stored = self.store.scale_requests(key) if gone or pruned else asked
        return _with_held(stored, observed)

    def _with_fronts(self, key: str, owner: Manifest, record: ServiceRecord) -> ServiceRecord:
        """The record with its fronts' ports and addresses: the head Service's, and the serve
        one's when the owner has one (spec.service_exposure says what each asks for)."""
        serve = exposure(owner, ServicePort.SERVE, self.exposure).address
        dashboard = exposure(owner, ServicePort.DASHBOARD, self.exposure).address
        serve_port, serve_asked = 0, 0
        if serve_service_exists(owner):
            serve_port, serve_asked = self._front_port(
                key, ServicePort.SERVE, port_ask(owner, ServicePort.SERVE), serve,
                record.serve_port, record.serve_port_asked,
            )  # fmt: skip
        elif record.serve_port:
            self.store.release_ports(key, ServicePort.SERVE)
        dashboard_port, dashboard_asked = self._front_port(
            key, ServicePort.DASHBOARD, port_ask(owner, ServicePort.DASHBOARD), dashboard,
            record.dashboard_port, record.dashboard_port_asked,
        )  # fmt: skip
        return record.model_copy(
            update={
                "serve_port": serve_port,
                "serve_port_asked": serve_asked,
                "serve_address": serve,
                "dashboard_port": dashboard_port,
                "dashboard_port_asked": dashboard_asked,
                "dashboard_address": dashboard,
            }
        )

    def _front_port(
        self,
        key: str,
        purpose: ServicePort,
        ask: PortAsk,
        address: str,
        held: int,
        held_asked: int | None,
    ) -> tuple[int, int]:
        """The port of one front, and what was asked when it was given: ``ask.hard`` exactly,
        else ``ask.preferred`` when it is free, else the next free one. A port held moves only
        when what is asked changes, and to a preferred port only when no one holds it (never to
        a preferred port that became free later); a port held since a record of an earlier
        release (``held_asked`` None) never moves. Off this machine (Kubernetes) each Service has
        an address of its own: the port is what the manifest asks, whoever else asks it too."""
        if not self.exposure.on_this_machine:
            return ask.start, ask.asked
        if held:
            if ask.hard is not None:
                moves = held != ask.hard
            else:
                moves = (
                    ask.preferred is not None
                    and held != ask.preferred
                    and held_asked is not None
                    and ask.asked != held_asked
                    and not self.store.port_is_held(ask.preferred)
                    and self.port_usable(ask.preferred, address)
                )
            if not moves:
                return held, ask.asked
            self.store.release_ports(key, purpose)
        hard = ask.hard
        port = self.store.allocate_port(
            key,
            purpose,
            ask.start,
            (lambda p: p == hard) if hard is not None else (lambda p: self.port_usable(p, address)),
        )
        return port, ask.asked

    def _observe(self, key: str, record: ServiceRecord) -> Observed:
        """What runs now. Serve is asked only on clusters that were given a config: a fresh
        cluster has nothing to report, and its first answer costs seconds."""
        clusters: dict[str, ObservedCluster] = {}
        for name in self.provider.clusters(owner=key):
            cluster = self.provider.observe(name)
            if cluster is not None:
                clusters[name] = cluster
        serve: dict[str, ServeState] = {}
        for name, cluster in clusters.items():
            if cluster.head_ready and name in record.deployed:
                try:
                    serve[name] = self.serve.status(cluster.dashboard_url, cluster.auth_token)
                except RayServiceError as e:
                    log.info("serve status of %s unavailable: %s", name, e)
        return Observed(clusters=clusters, serve=serve, front=self.front.observe(front_key(key)))

    # -- execute ---------------------------------------------------------------------------

    def _execute(
        self, resource: StoredResource, result: AnyPlan
    ) -> tuple[ServiceRecord, float | None]:
        """Run the actions in order; stop at the first failure (later actions may depend on
        it). The record with every outcome filed, and when to look again after a failure."""
        record = result.record
        for action in result.actions:
            try:
                record = self._run(resource, action, record)
            except RayServiceError as e:
                now = self.clock()
                failure = failure_after(
                    e, action.fingerprint, record.failures.get(action.key), now, self.jitter()
                )
                record.failures[action.key] = failure
                self.metrics.action_failed(action, failure.kind)
                log.warning("%s: %s failed (%s): %s", resource.key, action.key, failure.kind, e)
                if failure.kind is FailureKind.REJECTED:
                    reason, message = EventReason.SERVE_CONFIG_REJECTED, failure.message
                else:
                    reason, message = action.event.failed(), f"{action.reason}: {failure.message}"
                self._event(resource, EventType.WARNING, reason, message, action.involved)
                # looked at again when the back-off ends, or sooner to show it in status
                retry_in = STEADY_REQUEUE
                if failure.retry_at is not None:
                    retry_in = min(retry_in, failure.retry_at - now)
                return record, retry_in
            record.failures.pop(action.key, None)
            self.metrics.action_succeeded(action)
            if not isinstance(action, ForgetService):  # its events went with it
                self._event(
                    resource, EventType.NORMAL, action.event, action.reason, action.involved
                )
        return record, None

    def _run(
        self, resource: StoredResource, action: Action, record: ServiceRecord
    ) -> ServiceRecord:
        log.info("%s: %s: %s", resource.key, type(action).__name__, action.reason)
        match action:
            case EnsureCluster():
                self.provider.ensure(action.request)
            case DeleteCluster():
                self.provider.delete(action.name)
                record.deployed.pop(action.name, None)
                record.deployed_capacity.pop(action.name, None)
            case DeployServeConfig():
                self.serve.deploy(action.dashboard_url, action.token, action.config)
                record.deployed[action.cluster] = action.config_hash
                record.deployed_capacity[action.cluster] = action.config.get("target_capacity")
            case EnsureFront():
                self.front.ensure(action.front, action.spec)
            case DeleteFront():
                self.front.delete(action.front)
            case ForgetService():
                self.store.replace_views(resource.key, [])
                self.store.release_ports(resource.key)
                self.store.remove(resource.kind, resource.namespace, resource.name)
        return record

    def _event(
        self,
        resource: StoredResource,
        type_: EventType,
        reason: EventReason,
        message: str,
        involved: ObjectRef | None = None,
    ) -> None:
        self.metrics.event_recorded(reason)
        self.store.add_event(
            resource.namespace, resource.name, type_, reason, message, self.clock(), involved
        )

    def _write_views(
        self,
        resource: StoredResource,
        observed: Observed,
        result: AnyPlan,
        scale: dict[str, ScaleRequest],
    ) -> None:
        views: list[View] = []
        status = result.status
        owner: RayService | RayCluster
        if isinstance(status, RayClusterStatus):
            owner = RayCluster.model_validate(resource.manifest)
            cluster_spec = owner.spec
        else:
            owner = RayService.model_validate(resource.manifest)
            cluster_spec = owner.spec.rayClusterConfig
        standalone = isinstance(status, RayClusterStatus)
        roles = cluster_roles(result.record, observed.clusters, standalone)
        for cluster in observed.clusters.values():
            bounds = WorkerBounds.of(cluster_spec, scale.get(cluster.name))
            shown = status if isinstance(status, RayClusterStatus) else None
            shown = shown or observed_status(cluster, bounds)
            views.append(
                cluster_view(
                    resource.namespace,
                    resource.key,
                    cluster,
                    shown,
                    roles[cluster.name],
                    observed.serve.get(cluster.name),
                )
            )
            views += pod_views(
                resource.namespace,
                resource.key,
                cluster,
                isinstance(status, RayServiceStatus),
                observed.serve.get(cluster.name),
                result.record.pod_readiness,
            )
        # The front as it is after this pass (a failed EnsureFront must not show as done);
        # asked again only when this pass changed it
        front = observed.front
        if any(isinstance(a, EnsureFront) for a in result.actions):
            front = self.front.observe(front_key(resource.key))
        if front is not None:
            views += service_views(resource.namespace, owner, front, resource.created_at, roles)
        self.store.replace_views(resource.key, views)
