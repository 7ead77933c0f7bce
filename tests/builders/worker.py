"""Real worker processes on the test database: their environment, a `manage.py qcluster` run for
a test, the seed catalogue embedded, the fault runs' broker timings, waiting on the database, and
the closing line every fault run prints."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import quote

from django.conf import settings
from django.core.management import call_command
from django.db import connection

from testkit.procs import stop as stop_process_group

ROOT = Path(__file__).resolve().parents[2]

# Short broker timings for the runs: a task locked by a killed worker is delivered again after
# RETRY seconds. TIMEOUT still covers the first task of a fresh worker (torch import + model build
# on a busy 2-core machine), and RETRY > TIMEOUT as in production.
FAULT_Q_TIMEOUT = "40"
FAULT_Q_RETRY = "45"
# How long a run waits for the worker to finish everything (a re-delivery waits RETRY first).
DRAIN_SECONDS = 240.0


def embed_catalog() -> None:
    call_command("reembed", "--stale", stdout=io.StringIO(), stderr=io.StringIO())


def database_url_for_tests() -> str:
    s = connection.settings_dict
    host = quote(str(s["HOST"] or ""), safe="")
    port = f":{s['PORT']}" if s.get("PORT") else ""
    auth = quote(s["USER"] or "", safe="")
    if s.get("PASSWORD"):
        auth += ":" + quote(s["PASSWORD"], safe="")
    return f"postgresql://{auth}@{host}{port}/{s['NAME']}"


def process_env(**extra: str) -> dict[str, str]:
    env = {
        **os.environ,
        "DATABASE_URL": database_url_for_tests(),
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "RAIOX_ALLOW_UNTRAINED_MODEL": "1",
        "RAIOX_CLIP_DEVICE": "cpu",
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("PYTEST_CURRENT_TEST", None)
    env.update(extra)
    return env


@contextlib.contextmanager
def running_qcluster(log_path: Path, **extra_env: str) -> Iterator[subprocess.Popen]:
    """A real django-q2 worker (`manage.py qcluster`) on the test database and the test's media,
    stopped with its children afterwards; its log is printed when it holds a traceback."""
    log = open(log_path, "w+b")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [sys.executable, "manage.py", "qcluster"],
        cwd=ROOT,
        env=process_env(**extra_env),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: the cluster's children are stopped with it
    )
    try:
        yield proc
    finally:
        stop_process_group(proc)
        log.seek(0)
        output = log.read().decode(errors="replace")
        log.close()
        if "Traceback" in output:
            print(output[-4000:])


def wait_until(condition: Callable[[], bool], *, seconds: float = DRAIN_SECONDS, every: float = 0.1) -> bool:
    """Poll ``condition`` until it holds; False if it never did (the caller asserts and explains)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(every)
    return condition()


def report(run: str, *, accepted: int, processed: int, lost: int, duplicated: int, **extra: object) -> str:
    """The closing line of a fault run, printed (``pytest -s``) and asserted by the caller."""
    details = " ".join(f"{k}={v}" for k, v in extra.items())
    line = f"FAULT RUN {run}: accepted={accepted} processed={processed} lost={lost} duplicated={duplicated} {details}"
    print("\n" + line.rstrip())
    return line
