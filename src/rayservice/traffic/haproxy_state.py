"""On-disk state of the HAProxy front: one folder per key, with ``front.json`` in it.

HAProxy outlives the controller that started it, so everything needed to find a front again
lives in files, in ``<state_dir>/<key>/``:

    haproxy.cfg           the configuration the workers run
    haproxy.pid           written by HAProxy (the master's pid)
    haproxy.log           the master's and workers' output: alerts, servers going up/down
    haproxy.previous.log  the log of the process before the last fresh start
    front.json            the FrontSpec served, the master pid and its start time

The runtime API socket (weights, server health) lives apart, in a folder with a short path:
unix socket paths are limited to 107 bytes.

``front.json`` is a pydantic model, written atomically so a crash mid-write never leaves half
a record; a controller adopts the front it names only if that pid still has the recorded
start time.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from rayservice.spec.errors import PermanentError
from rayservice.spec.observed import FrontSpec


@dataclass(frozen=True)
class FrontFiles:
    """Where one key's front keeps its files."""

    folder: Path
    socket: Path  # kept apart: unix socket paths must stay short

    @property
    def config(self) -> Path:
        return self.folder / "haproxy.cfg"

    @property
    def pid_file(self) -> Path:
        return self.folder / "haproxy.pid"

    @property
    def log(self) -> Path:
        return self.folder / "haproxy.log"

    @property
    def previous_log(self) -> Path:
        return self.folder / "haproxy.previous.log"

    @property
    def record(self) -> Path:
        return self.folder / "front.json"


class FrontRecord(BaseModel):
    """front.json: what a front serves and which process serves it."""

    model_config = ConfigDict(frozen=True)

    spec: FrontSpec
    pid: int
    start_time: int  # /proc/<pid>/stat field 22, in clock ticks since boot


def load_record(files: FrontFiles) -> FrontRecord | None:
    """The recorded front, or None if there is none; unreadable is a permanent error."""
    try:
        return FrontRecord.model_validate_json(files.record.read_text())
    except FileNotFoundError:
        return None
    except ValueError as e:
        raise PermanentError(f"{files.record} is unreadable: {e}") from e


def save_record(files: FrontFiles, record: FrontRecord) -> None:
    partial = files.record.with_name(f"{files.record.name}.partial")
    partial.write_text(json.dumps(record.model_dump(mode="json"), indent=2, sort_keys=True))
    os.replace(partial, files.record)
