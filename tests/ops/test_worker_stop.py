"""Stopping the worker as its systemd unit does: it finishes by itself, nothing of it is left.

``raiox-worker.service`` says ``KillMode=mixed``: systemd sends SIGTERM to qcluster's main process
only (which stops its sentinel and workers) and kills what is left of the group only after
``TimeoutStopSec``. With the default (every process of the unit signalled at once) django-q2's main
process deadlocks in its stop and the worker is killed, its running tasks with it, at the timeout.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time

from testkit.procs import qcluster
from tests.builders.worker import process_env
from tests.ops.helpers import DEPLOY


def _unit_setting(name: str) -> str:
    for line in (DEPLOY / "systemd" / "raiox-worker.service").read_text().splitlines():
        if line.startswith(f"{name}="):
            return line.split("=", 1)[1].strip()
    return ""


def _group(pgid: int) -> list[str]:
    out = subprocess.run(["ps", "-o", "pid=", "-g", str(pgid)], capture_output=True, text=True).stdout
    return out.split()


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def test_the_worker_stops_by_itself_on_the_units_signal_and_leaves_no_process(transactional_db, tmp_path):
    assert _unit_setting("KillMode") == "mixed" and _unit_setting("KillSignal") == "SIGTERM"
    stop_timeout = float(_unit_setting("TimeoutStopSec"))  # systemd's SIGKILL comes after this
    log = tmp_path / "qcluster.log"
    with qcluster(env=process_env(RAIOX_Q_POLL="0.05"), log=log) as proc:
        # Until the cluster runs: its main process, the sentinel and the sentinel's children are up.
        while len(_group(proc.pid)) < 4:
            assert proc.poll() is None, log.read_text(errors="replace")[-3000:]
            time.sleep(0.2)
        time.sleep(2)  # the sentinel's workers take their first look at the queue
        os.kill(proc.pid, signal.SIGTERM)  # what KillMode=mixed sends: the main process only
        try:
            code = proc.wait(timeout=stop_timeout)
        except subprocess.TimeoutExpired:
            code = None
        output = log.read_text(errors="replace")
        assert code == 0, f"the worker did not stop by itself before systemd's SIGKILL:\n{output[-3000:]}"
        assert not _group_alive(proc.pid), "a process of the worker outlived it"
