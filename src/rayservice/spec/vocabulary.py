"""The words the control plane and its users share: condition types and reasons, event reasons,
annotation keys, upgrade strategies, Serve states, rollout phases.

Every layer (planner, controller, API, CLI) names these through the enums here and never as
string literals, so a typo is a type error instead of a status nobody matches. The values are
the strings KubeRay and Ray use where they have one, so status reads as KubeRay's does.
"""

from __future__ import annotations

from enum import StrEnum

from rayservice.spec.events import ObjectKind

KIND = ObjectKind.RAY_SERVICE  # the kind of object the controller reconciles
HEAD_GROUP = "headgroup"  # the group name of head nodes, as KubeRay labels them
LOCALHOST = "127.0.0.1"  # nodes, proxies and dashboards listen on loopback only
ALL_INTERFACES = "0.0.0.0"  # where a Service asking to be reachable from other hosts listens
FULL_CAPACITY = 100  # Serve target_capacity and traffic share, in percent
API_TOKEN_ENV = "RAYSERVICE_TOKEN"  # the controller's API token, for its clients
# KubeRay's longest RayCluster name: the names it derives from it (<name>-head-svc, pods) fit
# the 63 characters of a Kubernetes label value or Service name
MAX_RAYCLUSTER_NAME = 53


class ConditionType(StrEnum):
    READY = "Ready"
    UPGRADE_IN_PROGRESS = "UpgradeInProgress"
    ROLLBACK_IN_PROGRESS = "RollbackInProgress"
    RECONCILE_FAILED = "ReconcileFailed"  # an action fails: retried with back-off, or waits
    # a standalone RayCluster's conditions, as KubeRay sets them
    HEAD_POD_READY = "HeadPodReady"
    RAY_CLUSTER_PROVISIONED = "RayClusterProvisioned"
    # ours: every Serve application of the active cluster RUNNING (Ready keeps KubeRay's
    # meaning, serve endpoints > 0, which a failing health check does not change)
    APPLICATIONS_HEALTHY = "ApplicationsHealthy"


class ConditionStatus(StrEnum):
    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class ConditionReason(StrEnum):
    # Ready
    INITIALIZING = "Initializing"
    NON_ZERO_SERVE_ENDPOINTS = "NonZeroServeEndpoints"
    ZERO_SERVE_ENDPOINTS = "ZeroServeEndpoints"
    INITIALIZING_TIMEOUT = "InitializingTimeout"  # never ready within ray.io/initializing-timeout
    # UpgradeInProgress
    BOTH_CLUSTERS_EXIST = "BothActivePendingClustersExist"
    NO_PENDING_CLUSTER = "NoPendingCluster"
    UPGRADE_STRATEGY_NONE = "UpgradeStrategyNone"
    PENDING_CLUSTER_TIMED_OUT = "PendingClusterTimedOut"
    # RollbackInProgress
    STEP_TRAFFIC_BACK = "StepTrafficBack"
    DELETING_PENDING_CLUSTER = "DeletingPendingCluster"
    NO_ROLLBACK = "NoRollback"
    # ReconcileFailed
    TEMPORARY_ERROR = "TemporaryError"  # retried with back-off
    PERMANENT_ERROR = "PermanentError"  # not retried until something changes
    SERVE_CONFIG_REJECTED = "ServeConfigRejected"  # Ray answered 400 to the Serve config
    NO_FAILURE = "NoFailure"
    # HeadPodReady and RayClusterProvisioned of a RayCluster
    # ApplicationsHealthy
    ALL_APPLICATIONS_RUNNING = "AllApplicationsRunning"
    APPLICATIONS_NOT_RUNNING = "ApplicationsNotRunning"  # deploying, or none yet
    APPLICATION_FAILED = "ApplicationFailed"  # UNHEALTHY or DEPLOY_FAILED
    SERVE_UNREACHABLE = "ServeUnreachable"  # the head is down: Serve cannot be asked
    # a Secret, ConfigMap or key the cluster spec refers to is not there: Ready of a service
    # with no cluster, UpgradeInProgress of one whose clusters keep running, HeadPodReady of a
    # standalone RayCluster with no node
    REFERENCE_NOT_FOUND = "ReferenceNotFound"
    HEAD_POD_RUNNING_AND_READY = "HeadPodRunningAndReady"
    HEAD_POD_NOT_READY = "HeadPodNotReady"
    ALL_PODS_READY = "AllPodRunningAndReadyFirstTime"
    PODS_PROVISIONING = "RayClusterPodsProvisioning"


class EventType(StrEnum):
    NORMAL = "Normal"
    WARNING = "Warning"


class EventReason(StrEnum):
    # actions
    CLUSTER_CREATED = "ClusterCreated"
    CLUSTER_UPDATED = "ClusterUpdated"
    CLUSTER_DELETED = "ClusterDeleted"
    SERVE_CONFIG_SUBMITTED = "ServeConfigSubmitted"
    ENDPOINTS_UPDATED = "EndpointsUpdated"
    ENDPOINTS_DELETED = "EndpointsDeleted"
    DELETED = "Deleted"
    # an action that failed: <action event>Failed
    CLUSTER_CREATED_FAILED = "ClusterCreatedFailed"
    CLUSTER_UPDATED_FAILED = "ClusterUpdatedFailed"
    CLUSTER_DELETED_FAILED = "ClusterDeletedFailed"
    SERVE_CONFIG_SUBMITTED_FAILED = "ServeConfigSubmittedFailed"
    ENDPOINTS_UPDATED_FAILED = "EndpointsUpdatedFailed"
    ENDPOINTS_DELETED_FAILED = "EndpointsDeletedFailed"
    DELETED_FAILED = "DeletedFailed"
    SERVE_CONFIG_REJECTED = "ServeConfigRejected"
    RECONCILE_FAILED = "ReconcileFailed"
    # rollouts
    UPGRADE_STARTED = "UpgradeStarted"
    UPGRADE_COMPLETED = "UpgradeCompleted"
    UPGRADE_TIMED_OUT = "UpgradeTimedOut"
    PENDING_CLUSTER_REPLACED = "PendingClusterReplaced"
    ROLLBACK_STARTED = "RollbackStarted"
    ROLLBACK_COMPLETED = "RollbackCompleted"
    ROLLBACK_CANCELLED = "RollbackCancelled"
    TRAFFIC_STEPPED = "TrafficStepped"
    ROLLOUT_PROMOTED = "RolloutPromoted"
    # a service that was not ready within ray.io/initializing-timeout (KubeRay's event type)
    INITIALIZING_TIMEOUT = "RayServiceInitializingTimeout"
    # a standalone RayCluster whose spec no longer fits its nodes
    CLUSTER_RECREATING = "ClusterRecreating"
    CLUSTER_SPEC_CHANGED = "ClusterSpecChanged"
    # the cluster spec refers to a Secret, ConfigMap or key that is not there
    REFERENCE_NOT_FOUND = "ReferenceNotFound"
    # nodes
    UNHEALTHY = "Unhealthy"  # a pod's readiness check fails for a reason that lasts (kubelet's)
    NODE_LOST = "NodeLost"  # a node's process is gone; the provider restarts it
    REDIS_UNREACHABLE = "RedisUnreachable"  # the GCS state's Redis cannot be reached
    FRONT_PROCESS_LOST = "FrontProcessLost"  # a process of a front died; it is started again
    SERVING_AGAIN = "ServingAgain"  # a serve endpoint again after none: how long it lasted
    # endpoints
    ENDPOINT_ADDED = "EndpointAdded"
    ENDPOINT_REMOVED = "EndpointRemoved"
    # Serve applications and deployments: Application<State>, Deployment<State>
    APPLICATION_NOT_STARTED = "ApplicationNotStarted"
    APPLICATION_DEPLOYING = "ApplicationDeploying"
    APPLICATION_DEPLOY_FAILED = "ApplicationDeployFailed"
    APPLICATION_RUNNING = "ApplicationRunning"
    APPLICATION_UNHEALTHY = "ApplicationUnhealthy"
    APPLICATION_DELETING = "ApplicationDeleting"
    APPLICATION_UNKNOWN = "ApplicationUnknown"
    DEPLOYMENT_UPDATING = "DeploymentUpdating"
    DEPLOYMENT_HEALTHY = "DeploymentHealthy"
    DEPLOYMENT_UNHEALTHY = "DeploymentUnhealthy"
    DEPLOYMENT_UPSCALING = "DeploymentUpscaling"
    DEPLOYMENT_DOWNSCALING = "DeploymentDownscaling"
    DEPLOYMENT_DEPLOY_FAILED = "DeploymentDeployFailed"

    def failed(self) -> EventReason:
        """The reason of a failed attempt at the action this reason reports."""
        return EventReason(f"{self.value}Failed")


def state_event_reason(subject: str, state: str) -> EventReason:
    """``Application<State>`` or ``Deployment<State>`` for a Serve state such as DEPLOY_FAILED."""
    return EventReason(subject + state.title().replace("_", ""))


class AnnotationKey(StrEnum):
    FT_ENABLED = "ray.io/ft-enabled"  # KubeRay's GCS fault tolerance switch
    # where in Redis the GCS state of a fault-tolerant cluster lives (default: its own name)
    EXTERNAL_STORAGE_NAMESPACE = "ray.io/external-storage-namespace"
    ROLLOUT_PAUSED = "rayservice.io/rollout-paused"  # "true": traffic steps and switches wait
    ROLLOUT_PROMOTE = "rayservice.io/rollout-promote"  # a pending cluster's name: it takes all
    ENABLE_SERVE_SERVICE = "ray.io/enable-serve-service"  # "true": a RayCluster gets a serve-svc
    # a Go duration or seconds: a RayService never ready within it gives up until its spec changes
    INITIALIZING_TIMEOUT = "ray.io/initializing-timeout"


class UpgradeType(StrEnum):
    NEW_CLUSTER = "NewCluster"
    NONE = "None"
    INCREMENTAL = "NewClusterWithIncrementalUpgrade"


class GcsBackend(StrEnum):
    """Where a fault-tolerant head keeps the GCS state (``gcsFaultToleranceOptions.backend``)."""

    REDIS = "redis"  # a Redis: at redisAddress, or rayservice's own (spec.fault_tolerance)
    ROCKSDB = "rocksdb"  # embedded RocksDB files of the head (here: in the cluster's folder)


class ClusterUpgradeType(StrEnum):
    """``spec.upgradeStrategy.type`` of a standalone RayCluster (KubeRay 1.5)."""

    RECREATE = "Recreate"  # nodes whose spec changed are replaced: the cluster starts anew
    NONE = "None"  # running nodes keep their spec; new and restarted nodes take the new one


class ClusterState(StrEnum):
    """``status.state`` of a RayCluster, KubeRay's words."""

    READY = "ready"  # the head and every wanted worker run
    SUSPENDED = "suspended"
    PROVISIONING = ""  # KubeRay leaves the state empty until the cluster is first ready


class ApplicationStatus(StrEnum):
    """Ray Serve's application states."""

    NOT_STARTED = "NOT_STARTED"
    DEPLOYING = "DEPLOYING"
    DEPLOY_FAILED = "DEPLOY_FAILED"
    RUNNING = "RUNNING"
    UNHEALTHY = "UNHEALTHY"
    DELETING = "DELETING"
    UNKNOWN = "UNKNOWN"  # ours, not Serve's: the head is down, so Serve cannot be asked


class ServiceState(StrEnum):
    """``status.serviceStatus``, the SERVICE STATUS column: never blank (KubeRay leaves it
    empty whenever it is not Running)."""

    RUNNING = "Running"  # serve endpoints answer and every application is RUNNING
    DEPLOYING = "Deploying"  # serve endpoints answer while applications deploy or update
    UNHEALTHY = "Unhealthy"  # an application is UNHEALTHY or DEPLOY_FAILED
    UNKNOWN = "Unknown"  # the head is down: Serve cannot be asked
    WAITING = "WaitForServeDeploymentReady"  # no serve endpoint yet (KubeRay's older word)


FAILED_APP_STATES = frozenset({ApplicationStatus.DEPLOY_FAILED, ApplicationStatus.UNHEALTHY})


class DeploymentStatus(StrEnum):
    """Ray Serve's deployment states."""

    UPDATING = "UPDATING"
    HEALTHY = "HEALTHY"
    UNHEALTHY = "UNHEALTHY"
    UPSCALING = "UPSCALING"
    DOWNSCALING = "DOWNSCALING"
    DEPLOY_FAILED = "DEPLOY_FAILED"


UNHEALTHY_DEPLOYMENT_STATES = frozenset(
    {DeploymentStatus.UNHEALTHY, DeploymentStatus.DEPLOY_FAILED}
)


class RolloutPhase(StrEnum):
    """Where a service stands between its clusters; stored in the record (see planner/rollout)."""

    STEADY = "Steady"  # one cluster serves; nothing is coming
    STARTING = "Starting"  # NewCluster: a pending cluster starts; all traffic moves once it serves
    STEPPING = "Stepping"  # incremental: traffic and Serve capacity move in steps
    ROLLING_BACK = "RollingBack"  # the spec went back: traffic steps back, the pending one goes
    HELD = "Held"  # upgradeStrategy None keeps a cluster change from being applied
    GIVEN_UP = "GivenUp"  # the pending cluster never got ready in time; waits for a new spec


class FailureKind(StrEnum):
    """What a failed action's error means for trying it again (see controller/outcomes)."""

    TEMPORARY = "Temporary"  # tried again after a back-off
    PERMANENT = "Permanent"  # not tried again until what it would do changes
    REJECTED = "Rejected"  # Ray refused this Serve config: permanent, and it is the user's to fix


class ServicePort(StrEnum):
    """The port names of the services in front of a cluster (``get services``)."""

    SERVE = "serve"  # the serve Service: the nodes' Serve proxies
    DASHBOARD = "dashboard"  # the head Service: the head's dashboard


class ServiceType(StrEnum):
    """Kubernetes' Service types. Here NodePort and LoadBalancer ask to be reachable from other
    hosts; ClusterIP (the default) and ExternalName stay on loopback."""

    CLUSTER_IP = "ClusterIP"
    NODE_PORT = "NodePort"
    LOAD_BALANCER = "LoadBalancer"
    EXTERNAL_NAME = "ExternalName"

    @property
    def reachable_from_other_hosts(self) -> bool:
        return self in (ServiceType.NODE_PORT, ServiceType.LOAD_BALANCER)


class Backend(StrEnum):
    """Where clusters run: processes on this machine, or pods KubeRay's operator runs."""

    LOCAL = "local"
    KUBERNETES = "kubernetes"


STANDALONE_ROLE = "standalone"
"""What a standalone RayCluster's cluster is to its owner (itself), in its view: the other roles
are a RayService's (active, pending, retiring ...)."""
