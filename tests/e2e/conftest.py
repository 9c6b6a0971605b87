"""Fixtures for end-to-end tests: a private controller home, API port and a clean-up that
proves nothing was left running."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from rayservice.host.ports import next_free_port
from rayservice.providers.local import runtime_root

REPO = Path(__file__).resolve().parents[2]
RAYSERVICE = str(Path(sys.executable).parent / "rayservice")


@dataclass
class Cli:
    home: Path
    env: dict[str, str]
    workdir: Path

    def run(
        self, *args: str, check: bool = True, timeout: float = 300
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [RAYSERVICE, *args], env=self.env, cwd=self.workdir, capture_output=True,
            text=True, timeout=timeout,
        )  # fmt: skip
        if check and result.returncode != 0:
            raise AssertionError(
                f"rayservice {' '.join(args)} exited {result.returncode}\n"
                f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
            )
        return result


def processes_mentioning(marker: str) -> list[int]:
    """Pids whose command line mentions ``marker`` (our home or Ray temp root)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if marker in cmdline and state != "Z":
            found.append(int(entry.name))
    return found


def kill_all(pids: list[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


@pytest.fixture
def cli(tmp_path: Path) -> Iterator[Cli]:
    home = tmp_path / "home"
    workdir = tmp_path / "work"
    shutil.copytree(REPO / "samples", workdir / "samples")
    env = {
        **os.environ,
        "RAYSERVICE_HOME": str(home),
        "RAYSERVICE_API_PORT": str(next_free_port(18900, set())),
    }
    session = Cli(home, env, workdir)
    try:
        yield session
    finally:
        for sample in (
            "ray-service.sample.yaml",
            "ray-service.autoscaling.yaml",
            "ray-service.no-ray-serve-replica.yaml",
            "ray-service.high-availability.yaml",
            "ray-service.named-serve-service.yaml",
            "ray-service.named-serve-service.copy.yaml",
        ):
            session.run("delete", "-f", str(workdir / "samples" / sample), check=False)
        session.run("stop", check=False)
        leftovers = processes_mentioning(str(home)) + processes_mentioning(str(runtime_root(home)))
        kill_all(leftovers)
        assert not leftovers, f"processes left running: {leftovers}"
