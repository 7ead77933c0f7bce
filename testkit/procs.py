"""Child processes of the benches and the process-level tests (gunicorn, qcluster, the file host),
each in its own process group, always stopped on the way out — normal end, error or Ctrl-C."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop(proc: subprocess.Popen, *, grace: float = 30.0) -> None:
    """Stop a server the way its systemd unit does (``KillMode=mixed``): SIGTERM to the main process
    only, which stops its own children (gunicorn's workers, qcluster's sentinel and workers); after
    ``grace``, or once it has exited, SIGKILL to whatever is left of its process group.

    Not SIGTERM to the whole group: django-q2's main process and its sentinel would both take the
    signal at once, and the main one then blocks for good in ``stop_event.set()`` (the sentinel,
    counted as waiting on the event, is gone): the worker never exits and is killed after the
    grace (measured: ~30 s per test teardown; ~3 s with the main process alone signalled)."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            pass
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)  # stragglers of the group (nothing, after a clean stop)
    proc.wait()


def unit_nice(unit: str) -> int:
    """The ``Nice=`` of a deploy/systemd unit (0 when unset), so the bench runs it as deployed."""
    for line in (ROOT / "deploy" / "systemd" / unit).read_text().splitlines():
        if line.strip().startswith("Nice="):
            return int(line.split("=", 1)[1])
    return 0


@contextlib.contextmanager
def process(args: list[str], *, env: dict[str, str], log: Path, nice: int = 0) -> Iterator[subprocess.Popen]:
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            args,
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=(lambda: os.nice(nice)) if nice else None,
        )
    try:
        yield proc
    finally:
        stop(proc)


def manage(args: list[str], *, env: dict[str, str], log: Path) -> None:
    with open(log, "ab") as out:
        subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, stdout=out, stderr=out, check=True)


def wait_http(url: str, proc: subprocess.Popen, log: Path, *, timeout: float = 120.0) -> None:
    """Until ``url`` answers at all (any status): the server is accepting and a worker has booted."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args[0]} exited ({proc.returncode}):\n{log.read_text()[-3000:]}")
        try:
            httpx.get(url, timeout=5.0)
            return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {timeout:.0f} s:\n{log.read_text()[-3000:]}")


def gunicorn(app: str, *, env: dict[str, str], log: Path):
    """gunicorn exactly as deploy/ runs it (same config file and unit priority), on the bind in ``env``."""
    args = [str(VENV_BIN / "gunicorn"), "-c", "deploy/gunicorn.conf.py", app]
    return process(args, env=env, log=log, nice=unit_nice("raiox-web.service"))


def qcluster(*, env: dict[str, str], log: Path):
    """The worker as its systemd unit runs it (same priority)."""
    args = [sys.executable, "manage.py", "qcluster"]
    return process(args, env=env, log=log, nice=unit_nice("raiox-worker.service"))


def file_host(port: int, folder: Path, *, env: dict[str, str], log: Path):
    return process([sys.executable, "-m", "testkit.fileserver", str(port), str(folder)], env=env, log=log)
