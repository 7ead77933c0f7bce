"""Real-browser fixtures: Debian's Chromium driven by Playwright, a live server, and a real
``manage.py qcluster`` worker processing the queue of the test database."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings
from django.db import connection

from testkit.procs import stop as stop_process_group

# Playwright's sync API runs an event loop in this thread; Django's ORM calls from the test body
# are still plain synchronous calls.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = Path(settings.BASE_DIR) / "var" / "screenshots"
# How long to wait for the worker before giving up (a hang guard, not a speed requirement).
WORKER_PATIENCE_S = 600


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        instance = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield instance
        instance.close()


@pytest.fixture
def screenshot():
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def take(page, name: str) -> Path:
        path = SCREENSHOTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take


def _database_url() -> str:
    d = connection.settings_dict
    host = quote(d["HOST"] or "", safe="")
    auth = quote(d["USER"] or "", safe="") + (f":{quote(d['PASSWORD'], safe='')}" if d["PASSWORD"] else "")
    port = f":{d['PORT']}" if d["PORT"] else ""
    return f"postgres://{auth}@{host}{port}/{d['NAME']}"


@pytest.fixture
def worker(live_server, catalog, tmp_path):
    """``manage.py qcluster`` on the test database and the test's media folder. Waits until the
    catalogue's reference images are embedded (queued by seed_catalog)."""
    from implants.models import ReferenceImage

    env = {
        **os.environ,
        "DATABASE_URL": _database_url(),
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "RAIOX_ALLOW_UNTRAINED_MODEL": "1",
        "RAIOX_Q_WORKERS": "1",
        # The worker's e-mails go to files (the only mock: delivery); tests read them from there.
        "EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
        "EMAIL_FILE_PATH": str(tmp_path / "mail"),
    }
    log = open(tmp_path / "qcluster.log", "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [sys.executable, "manage.py", "qcluster"],
        cwd=settings.BASE_DIR,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: stopped with its children below
    )
    try:
        deadline = time.monotonic() + WORKER_PATIENCE_S
        while ReferenceImage.objects.filter(embedding__isnull=True).exists():
            assert proc.poll() is None, (tmp_path / "qcluster.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "worker did not embed the catalogue"
            time.sleep(0.5)
        yield proc
    finally:
        stop_process_group(proc)
        log.close()
        connection.close()
