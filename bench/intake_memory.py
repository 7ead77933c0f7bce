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

Issue 22 adds the crafted structures of ``testkit.crafted`` (the builders the security tests use,
as ``bench.crafted`` does): a TIFF of 50 000 chained pages, JPEGs of a million fill bytes or
250 000 empty segments, a PNG of 200 000 private chunks before IDAT, DICOMs of 600 000 empty
elements or sequences 200 deep, headers without their pixels, sent by the same 8 clients in the
same rounds. Each request's time is taken at the client (waiting for a free gunicorn worker
included); the slowest refusal is the longest of the 4xx answers. Budget: 1 s.
"""

from __future__ import annotations

import argparse
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
from testkit import procs

DB = "raiox_bench_memory"
CLIENTS = 8
ROUNDS = 3
BUDGET_MB = 150
REFUSAL_BUDGET_S = 1.0


def worst_cases() -> dict[str, tuple[str, bytes, str]]:
    from PIL import Image

    from testkit.images import encode

    grey = Image.new("L", (7000, 7000), 0)
    colour = Image.new("RGB", (7000, 7000), (0, 0, 0))
    return {
        "PNG 7000x7000 grey": ("a.png", encode(grey, "PNG", optimize=True), "image/png"),
        "PNG 7000x7000 RGB": ("b.png", encode(colour, "PNG", optimize=True), "image/png"),
        "JPEG 7000x7000 RGB": ("c.jpg", encode(colour, "JPEG", quality=10), "image/jpeg"),
    }


def crafted_cases() -> dict[str, tuple[str, bytes, str]]:
    """Issue 22's crafted structures, sent as an anonymous upload would send them."""
    from testkit.crafted import CRAFTED_STRUCTURES, base_image, dicom_compressed

    builders = {name: build for name, (build, _) in CRAFTED_STRUCTURES.items()}
    # Compressed DICOMs whose header and codestream disagree (``tests/security/test_compressed_dicom.py``).
    builders["dicom-128x128-holding-a-7000x7000-jpeg"] = lambda: dicom_compressed(
        rows=128, columns=128, fragments=[base_image("JPEG", size=(7000, 7000))]
    )
    builders["dicom-50-frames-4000x4000-in-1-kb"] = lambda: dicom_compressed(
        rows=4000, columns=4000, frames=50, fragments=[base_image("JPEG", size=(64, 64))]
    )
    return {name: ("raio-x.bin", build(), "application/octet-stream") for name, build in builders.items()}


def all_cases() -> dict[str, tuple[str, bytes, str]]:
    return {**worst_cases(), **crafted_cases()}


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
    cases = all_cases()
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

        def send(name: str) -> tuple[str, int, float]:
            with httpx.Client(base_url=base, timeout=300) as client:
                sent = time.perf_counter()
                status = client.post("/upload", files={"file": cases[name]}).status_code
                return name, status, time.perf_counter() - sent

        started = time.perf_counter()
        with ThreadPoolExecutor(CLIENTS) as pool:
            jobs = [name for _ in range(ROUNDS) for name in cases for _ in range(CLIENTS)]
            answers = list(pool.map(send, jobs))
        elapsed = time.perf_counter() - started
        peak = max(_peak_rss_mb(p) for p in workers)
    finally:
        procs.stop(web)
    statuses = [status for _, status, _ in answers]
    accepted = sum(1 for s in statuses if s in (200, 202))
    refusals = [(seconds, name) for name, status, seconds in answers if 400 <= status < 500]
    slowest, slowest_name = max(refusals, default=(float("nan"), "-"))
    per_case = [
        [
            label,
            name,
            f"{len(cases[name][1]) / 1024:.0f} kB",
            ", ".join(str(s) for s in sorted({s for n, s, _ in answers if n == name})),
            f"{max(t for n, _, t in answers if n == name) * 1000:.0f} ms",
        ]
        for name in cases
    ]
    return [
        label,
        f"{idle:.0f} MB",
        f"{peak:.0f} MB",
        f"<= {BUDGET_MB} MB",
        f"{slowest * 1000:.0f} ms ({slowest_name})",
        f"<= {REFUSAL_BUDGET_S * 1000:.0f} ms",
        f"{accepted}/{len(statuses)} ({', '.join(f'{s}' for s in sorted(set(statuses)))})",
        f"{elapsed:.1f} s",
    ], per_case


def main(before: str | None = None) -> str:
    setup_django()
    work = procs.ROOT / "var" / "bench-memory"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    url = scratch_database(DB)
    rows, per_case = [], []
    try:
        procs.manage(["migrate", "--noinput"], env={**os.environ, "DATABASE_URL": url}, log=work / "setup.log")
        if before:
            with tempfile.TemporaryDirectory(prefix="raiox-before-") as folder:
                archive = subprocess.run(
                    ["git", "archive", before], cwd=procs.ROOT, check=True, capture_output=True
                ).stdout
                subprocess.run(["tar", "-x", "-C", folder], input=archive, check=True)
                row, cases = measure(Path(folder), url=url, work=work, label=f"before ({before})")
                rows.append(row)
                per_case += cases
        row, cases = measure(procs.ROOT, url=url, work=work, label="this tree")
        rows.append(row)
        per_case += cases
    finally:
        drop_database(DB)
    summary = table(
        f"Web memory: {CLIENTS} concurrent POST /upload of {len(all_cases())} worst-case and crafted files "
        f"x {ROUNDS} rounds; gunicorn as deployed (deploy/gunicorn.conf.py)",
        [
            "code",
            "idle RSS (largest worker)",
            "peak RSS (largest worker)",
            "budget",
            "slowest refusal",
            "budget",
            "accepted",
            "wall time",
        ],
        rows,
    )
    cases = table(
        "Each file: the answers it got and its slowest one", ["code", "file", "size", "answers", "slowest"], per_case
    )
    return summary + "\n" + cases


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", help="also measure this git revision (e.g. the commit before issue 13)")
    main(parser.parse_args().before)
    sys.exit(0)
