"""Fixtures of the matching tests: the seed catalogue embedded by the real (untrained) model, and
a real `manage.py qcluster` worker process on the test database."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connection

from implants.models import ReferenceImage
from testkit.procs import stop as stop_process_group
from testkit.xrays import xray_png

ROOT = Path(__file__).resolve().parents[2]


def png_bytes(seed: int = 0, size: tuple[int, int] | None = None) -> bytes:
    """A valid greyscale PNG X-ray with one implant, different for every seed (``testkit.xrays``)."""
    return xray_png(seed, size)


def embed_catalog() -> None:
    call_command("reembed", "--stale", stdout=io.StringIO(), stderr=io.StringIO())


@pytest.fixture
def embedded_catalog(catalog) -> None:
    embed_catalog()
    assert not ReferenceImage.objects.filter(embedding__isnull=True).exists()


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


@pytest.fixture
def qcluster(transactional_db, tmp_path) -> Iterator[subprocess.Popen]:
    """A real django-q2 worker polling an idle queue every 50 ms."""
    with running_qcluster(tmp_path / "qcluster.log", RAIOX_Q_POLL="0.05") as proc:
        yield proc
