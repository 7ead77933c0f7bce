"""Web-process memory under worst-case uploads (issue 13): peak RSS of each gunicorn worker while 8
clients at once send small files that declare huge canvases.

The worst cases are what an outsider can send cheaply: a 7000 × 7000 PNG of a few dozen kB
(greyscale and colour, 49 megapixels, just under ``RAIOX_MAX_IMAGE_PIXELS``) and a 7000 × 7000
JPEG. Each is sent ``ROUNDS`` times by 8 concurrent clients to ``POST /upload`` (the anonymous
route; ``RAIOX_UPLOAD_WAIT_SECONDS=0`` so no worker is needed: only the web process is measured).
gunicorn runs with ``deploy/gunicorn.conf.py`` as deployed. The figure is the largest peak RSS
(``VmHWM``) of any gunicorn worker, read after the load.

``python -m bench.intake_memory`` measures this working tree; ``--before REV`` measures the code of
git revision REV too (extracted with ``git archive`` into a scratch folder, same venv and database),
for the before/after comparison. Budget: 150 MB per web process.
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from bench.common import children, drop_database, scratch_database, setup_django, table
from bench.intake import procs

DB = "raiox_bench_memory"
CLIENTS = 8
ROUNDS = 3
BUDGET_MB = 150


def worst_cases() -> dict[str, tuple[str, bytes, str]]:
    from PIL import Image

    def encode(img: Image.Image, fmt: str, **options: object) -> bytes:
        out = io.BytesIO()
        img.save(out, format=fmt, **options)
        return out.getvalue()

    grey = Image.new("L", (7000, 7000), 0)
    colour = Image.new("RGB", (7000, 7000), (0, 0, 0))
    return {
        "PNG 7000x7000 grey": ("a.png", encode(grey, "PNG", optimize=True), "image/png"),
        "PNG 7000x7000 RGB": ("b.png", encode(colour, "PNG", optimize=True), "image/png"),
        "JPEG 7000x7000 RGB": ("c.jpg", encode(colour, "JPEG", quality=10), "image/jpeg"),
    }


def _peak_rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _current_rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def measure(code_dir: Path, *, url: str, work: Path, label: str) -> list[object]:
    port = procs.free_port()
    media = work / f"media-{label}"
    log = work / f"gunicorn-{label}.log"
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "MEDIA_ROOT": str(media),
        "RAIOX_UPLOAD_WAIT_SECONDS": "0",
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "GUNICORN_LOG_LEVEL": "warning",
        "SITE_URL": f"http://127.0.0.1:{port}",
        "PYTHONUNBUFFERED": "1",
        "PYTHONPATH": str(code_dir),
    }
    env.pop("GUNICORN_WORKERS", None)  # as deployed: 2 x cores + 1 sync workers
    cases = worst_cases()
    base = f"http://127.0.0.1:{port}"
    with open(log, "ab") as out:
        web = subprocess.Popen(
            [str(procs.VENV_BIN / "gunicorn"), "-c", "deploy/gunicorn.conf.py", "raiox.wsgi"],
            cwd=code_dir,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        procs.wait_http(f"{base}/healthcheck", web, log)
        time.sleep(1.0)
        workers = children(web.pid)
        idle = max(_current_rss_mb(p) for p in workers)
        statuses: list[int] = []

        def send(case: tuple[str, bytes, str]) -> int:
            with httpx.Client(base_url=base, timeout=300) as client:
                return client.post("/upload", files={"file": case}).status_code

        started = time.perf_counter()
        with ThreadPoolExecutor(CLIENTS) as pool:
            jobs = [case for _ in range(ROUNDS) for case in cases.values() for _ in range(CLIENTS)]
            statuses = list(pool.map(send, jobs))
        elapsed = time.perf_counter() - started
        peak = max(_peak_rss_mb(p) for p in workers)
    finally:
        procs.stop(web)
    accepted = sum(1 for s in statuses if s in (200, 202))
    return [
        label,
        f"{idle:.0f} MB",
        f"{peak:.0f} MB",
        f"<= {BUDGET_MB} MB",
        f"{accepted}/{len(statuses)} ({', '.join(f'{s}' for s in sorted(set(statuses)))})",
        f"{elapsed:.1f} s",
    ]


def main(before: str | None = None) -> str:
    setup_django()
    work = procs.ROOT / "var" / "bench-memory"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    url = scratch_database(DB)
    rows = []
    try:
        procs.manage(["migrate", "--noinput"], env={**os.environ, "DATABASE_URL": url}, log=work / "setup.log")
        if before:
            with tempfile.TemporaryDirectory(prefix="raiox-before-") as folder:
                archive = subprocess.run(
                    ["git", "archive", before], cwd=procs.ROOT, check=True, capture_output=True
                ).stdout
                subprocess.run(["tar", "-x", "-C", folder], input=archive, check=True)
                rows.append(measure(Path(folder), url=url, work=work, label=f"before ({before})"))
        rows.append(measure(procs.ROOT, url=url, work=work, label="this tree"))
    finally:
        drop_database(DB)
    sizes = ", ".join(f"{name} {len(data) / 1024:.0f} kB" for name, (_, data, _) in worst_cases().items())
    return table(
        f"Web memory: {CLIENTS} concurrent POST /upload of worst-case files x {ROUNDS} rounds ({sizes}); "
        "gunicorn as deployed (deploy/gunicorn.conf.py)",
        ["code", "idle RSS (largest worker)", "peak RSS (largest worker)", "budget", "accepted", "wall time"],
        rows,
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", help="also measure this git revision (e.g. the commit before issue 13)")
    main(parser.parse_args().before)
    sys.exit(0)
