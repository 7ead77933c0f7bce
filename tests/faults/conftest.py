"""Fixtures of the fault runs: real worker processes that can be killed. (The broker timings,
waiting on the database and the closing counts every run prints: ``tests.builders.worker``.)"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from testkit.procs import stop as stop_process_group
from tests.builders.worker import FAULT_Q_RETRY, FAULT_Q_TIMEOUT, ROOT, process_env


@dataclass
class Cluster:
    """A `manage.py qcluster` process group, started and stopped (or killed) by the test."""

    log_path: Path
    env: dict[str, str]
    proc: subprocess.Popen | None = None
    logs: list[str] = field(default_factory=list)

    def start(self) -> Cluster:
        assert self.proc is None or self.proc.poll() is not None
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in _collect
        self.proc = subprocess.Popen(
            [sys.executable, "manage.py", "qcluster"],
            cwd=ROOT,
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: sentinel, pusher, workers, monitor
        )
        return self

    def kill(self) -> None:
        """SIGKILL to the whole group: no handler runs, no task is acknowledged or cleaned up."""
        assert self.proc is not None and self.proc.poll() is None
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        self._collect()

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        stop_process_group(self.proc)
        self._collect()

    def _collect(self) -> None:
        self._log.close()

    def output(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@pytest.fixture
def cluster_factory(tmp_path) -> Iterator[Callable[..., Cluster]]:
    """Make worker clusters on the test database (or another one given by DATABASE_URL=...)."""
    made: list[Cluster] = []

    def make(**extra: str) -> Cluster:
        env = process_env(RAIOX_Q_POLL="0.05", RAIOX_Q_TIMEOUT=FAULT_Q_TIMEOUT, RAIOX_Q_RETRY=FAULT_Q_RETRY)
        env.update(extra)
        cluster = Cluster(log_path=tmp_path / f"qcluster-{len(made)}.log", env=env)
        made.append(cluster)
        return cluster

    yield make
    for cluster in made:
        cluster.stop()
        output = cluster.output()
        if "Traceback" in output:
            print(f"--- {cluster.log_path.name} (tail) ---\n{output[-3000:]}")
