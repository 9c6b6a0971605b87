"""Ray's autoscaler beside a cluster's head: started, kept running and stopped by the provider.

A head started by ``ray start --head`` runs Ray's monitor itself, and a monitor that fails at
start takes the whole head down. So a cluster with ``enableInTreeAutoscaling`` starts its head
with ``--no-monitor`` and runs Ray's monitor (autoscaler v1) as a process of its own, as KubeRay
runs it in a container of its own: restarted with back-off when it dies, stopped with the
cluster. It reads ``autoscaling.json`` (:mod:`rayservice.providers.autoscaling_config`) anew on
every round, so changed bounds need no restart; but Ray builds its node provider once, so a new
address or token of the controller's API (``api``) starts a new monitor. It serves no metrics
endpoint (no port is opened).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from rayservice.host.processes import exit_status, is_alive, start_session, start_ticks
from rayservice.host.processes import stop_sessions as stop_process_sessions
from rayservice.providers.autoscaling_config import autoscaling_config
from rayservice.providers.local_state import AutoscalerRecord, ClusterRecord
from rayservice.spec.errors import TemporaryError
from rayservice.spec.vocabulary import API_TOKEN_ENV

CONFIG_FILE = "autoscaling.json"
LOG_FILE = "autoscaler.log"
RESTART_BACKOFF_MAX = 60.0


@dataclass(frozen=True)
class ApiAccess:
    """Where the autoscaler's node provider reaches the controller, and the token it sends."""

    url: str
    token: str | None = None


def keep_running(
    record: ClusterRecord, folder: Path, gcs_address: str, api: ApiAccess | None
) -> None:
    """Start the cluster's autoscaler when its request asks for one and it is not running
    (with back-off after a crash); stop it when the request no longer asks."""
    autoscaling = record.request.autoscaling
    if autoscaling is None or api is None:
        stop(record)
        return
    namespace = record.owner.split("/", 1)[0]
    config = autoscaling_config(record.request, autoscaling, api.url, namespace)
    _write(folder / CONFIG_FILE, json.dumps(config, indent=2, sort_keys=True))
    current = record.autoscaler or AutoscalerRecord(log_file=str(folder / "logs" / LOG_FILE))
    record.autoscaler = current
    access = _digest(api)
    if is_alive(current.pid, current.ticks):
        if current.api_digest == access:
            return
        # Ray builds the node provider once: a new API address or token needs a new monitor
        stop_process_sessions([current.pid])
        current.restarts = 0
    elif current.pid:
        if _backing_off(current):
            return
        current.restarts += 1
        exit_status(current.pid)  # reaps it
    current.api_digest = access
    _start(record, current, folder, gcs_address, api)


def stop(record: ClusterRecord) -> None:
    """Stop the cluster's autoscaler, if it has one."""
    current = record.autoscaler
    if current is not None and is_alive(current.pid, current.ticks):
        stop_process_sessions([current.pid])
    record.autoscaler = None


def running(record: ClusterRecord) -> bool | None:
    """Whether the cluster's autoscaler runs; None when its request asks for none, or while
    it waits out the back-off after a crash (nothing to do before it ends)."""
    if record.request.autoscaling is None:
        return None
    current = record.autoscaler
    if current is None:
        return False
    if is_alive(current.pid, current.ticks):
        return True
    return None if current.pid and _backing_off(current) else False


def _backing_off(current: AutoscalerRecord) -> bool:
    """Whether a monitor that died is still in its back-off (1, 2, 4 ... 60 s)."""
    backoff = min(2.0 ** min(current.restarts, 6), RESTART_BACKOFF_MAX)
    return time.time() - current.started_at < backoff


def _digest(api: ApiAccess) -> str:
    """What a running monitor was given of the API (its token never stored as such)."""
    return hashlib.sha256(f"{api.url}\n{api.token or ''}".encode()).hexdigest()[:16]


def _start(
    record: ClusterRecord,
    current: AutoscalerRecord,
    folder: Path,
    gcs_address: str,
    api: ApiAccess,
) -> None:
    log = Path(current.log_file)
    log.parent.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable, "-m", "ray.autoscaler._private.monitor",
        f"--gcs-address={gcs_address}",
        f"--autoscaling-config={folder / CONFIG_FILE}",
        f"--logs-dir={log.parent}",
        f"--logging-filename={LOG_FILE}",
    ]  # fmt: skip
    env = {
        **os.environ,
        "RAY_AUTH_MODE": "token",
        "RAY_AUTH_TOKEN": record.token,
        "RAY_USAGE_STATS_ENABLED": "0",
    }
    if api.token is not None:
        env[API_TOKEN_ENV] = api.token
    try:
        with log.with_suffix(".out").open("ab") as out:
            pid = start_session(command, out, env=env)
    except OSError as e:
        raise TemporaryError(f"could not start the autoscaler of {record.name}: {e}") from e
    current.pid, current.ticks, current.started_at = pid, start_ticks(pid), time.time()


def _write(path: Path, text: str) -> None:
    """Write ``path`` atomically when its text changes (the monitor may read it meanwhile)."""
    if path.exists() and path.read_text() == text:
        return
    partial = path.with_name(f"{path.name}.partial")
    partial.write_text(text)
    os.replace(partial, path)
