"""End to end: ``POST /upload`` -> top-3 answer through gunicorn and a real ``manage.py qcluster``
worker, and the resident memory of both kinds of process.

It runs what production runs: gunicorn with ``deploy/gunicorn.conf.py`` (2 sync workers on a free
loopback port) and one django-q2 cluster (``RAIOX_Q_WORKERS`` default, poll default), against this
checkout's database (the embedded PostgreSQL in var/pgdata unless DATABASE_URL is set) and media.
The seed catalogue is created and embedded first if needed; one request warms the worker (model
build); then 50 X-ray-like images (an implant drawing from ``implants.synthetic`` scaled to a
periapical film's 1200x1800 px with film grain: 0.5-2 MB PNG or JPEG, fresh pixels every run so
no embedding is reused) are posted one at a time and timed to the JSON answer with the top 3.

Submissions created here carry the name "bench e2e" and stay in the database like any upload.
Every process started here is stopped at the end, also on error or Ctrl-C.
"""

from __future__ import annotations

import io
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from bench.common import children, percentile, rss_mb, setup_django, table

ROOT = Path(__file__).resolve().parents[1]
UPLOADS = 50
BASELINE = "old system: 20-40 s per request (CLIP loaded inside the request)"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def xray(i: int, rng: np.random.Generator) -> tuple[str, bytes, str]:
    """A radiograph-like file: an implant drawing at film size with grain, PNG or JPEG."""
    from PIL import Image

    from implants.catalog import CATALOG
    from implants.synthetic import Silhouette, render

    items = [item for group in CATALOG.values() for item in group]
    drawing = render(Silhouette(**items[i % len(items)]["drawing"]), seed_name=f"e2e-{rng.integers(1 << 62)}")
    big = np.asarray(drawing.convert("L").resize((1200, 1800), Image.BICUBIC), dtype=np.float32)
    big += rng.normal(scale=7.0, size=big.shape)
    img = Image.fromarray(np.clip(big, 0, 255).astype(np.uint8), mode="L")
    out = io.BytesIO()
    if i % 2:
        img.save(out, format="JPEG", quality=95)
        return f"rx{i}.jpg", out.getvalue(), "image/jpeg"
    img.save(out, format="PNG")
    return f"rx{i}.png", out.getvalue(), "image/png"


def process_env() -> dict[str, str]:
    env = {**os.environ, "RAIOX_ALLOW_UNTRAINED_MODEL": "1", "PYTHONUNBUFFERED": "1"}
    env.setdefault("DJANGO_SETTINGS_MODULE", "raiox.settings")
    return env


def manage(*args: str) -> None:
    subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=process_env(), check=True, capture_output=True)


def holds_torch(pid: int) -> bool:
    with open(f"/proc/{pid}/maps") as fh:
        maps = fh.read()
    return "libtorch" in maps or "/torch/lib/" in maps


def pss_mb(pid: int) -> float:
    """Proportional set size: shared pages split between the processes sharing them, so the PSS
    of a process tree adds up to what it really occupies (RSS would count them once each)."""
    with open(f"/proc/{pid}/smaps_rollup") as fh:
        for line in fh:
            if line.startswith("Pss:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def tree_memory(pid: int) -> tuple[float, float, int, int]:
    """(biggest RSS, sum of PSS) in MB, the number of processes and how many hold torch, over a
    process and its descendants."""
    rss, pss, torch_holders = [], [], 0
    for p in [pid, *children(pid)]:
        try:
            rss.append(rss_mb(p))
            pss.append(pss_mb(p))
            torch_holders += holds_torch(p)
        except OSError:
            continue
    return max(rss), sum(pss), len(rss), torch_holders


def stop(proc: subprocess.Popen | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)  # its own process group: the workers go with it
        proc.wait(timeout=30)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()


def wait_http(url: str, seconds: float) -> None:
    import httpx

    deadline = time.monotonic() + seconds
    while True:
        try:
            httpx.get(url, timeout=2)
            return
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def main(uploads: int = UPLOADS) -> str:
    import httpx

    setup_django()  # for implants.synthetic's drawings only: this process never serves requests
    # The catalogue exists and is embedded by the current model before the clock starts.
    manage("migrate", "--noinput")
    manage("seed_catalog", "--verbosity", "0")
    manage("reembed", "--stale")
    port = free_port()
    logs = ROOT / "var" / "bench-e2e"
    logs.mkdir(parents=True, exist_ok=True)
    web = worker = None
    try:
        web = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "deploy/gunicorn.conf.py", "raiox.wsgi"],
            cwd=ROOT,
            env={**process_env(), "GUNICORN_BIND": f"127.0.0.1:{port}", "GUNICORN_WORKERS": "2"},
            stdout=open(logs / "gunicorn.log", "wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        worker = subprocess.Popen(
            [sys.executable, "manage.py", "qcluster"],
            cwd=ROOT,
            env=process_env(),
            stdout=open(logs / "qcluster.log", "wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        base = f"http://127.0.0.1:{port}"
        wait_http(base + "/healthcheck", 60)
        rng = np.random.default_rng(time.time_ns())
        files = [xray(i, rng) for i in range(uploads + 1)]
        sizes = [len(data) / 1e6 for _, data, _ in files]
        with httpx.Client(base_url=base, timeout=120) as client:

            def post(name: str, data: bytes, mime: str) -> dict:
                response = client.post("/upload", files={"file": (name, data, mime)}, data={"nome": "bench e2e"})
                if response.status_code == 202:  # longer than RAIOX_UPLOAD_WAIT_SECONDS: poll
                    status_url = response.json()["status_url"]
                    while (body := client.get(status_url).json())["status"] not in ("done", "failed"):
                        time.sleep(0.05)
                    return body
                response.raise_for_status()
                return response.json()

            started = time.perf_counter()
            post(*files[0])  # warm-up: the worker builds the model on its first task
            warm_up = time.perf_counter() - started
            times = []
            for name, data, mime in files[1:]:
                started = time.perf_counter()
                body = post(name, data, mime)
                times.append(time.perf_counter() - started)
                if body.get("status") != "done" or len(body.get("implants", [])) != 3:
                    raise RuntimeError(f"/upload did not answer 3 implants: {body}")
        web_workers = children(web.pid)
        web_rss = [rss_mb(p) for p in web_workers]
        web_torch = any(holds_torch(p) for p in web_workers)
        worker_max, worker_pss, worker_count, worker_torch = tree_memory(worker.pid)
    finally:
        stop(web)
        stop(worker)

    print(BASELINE)
    print(f"images: {min(sizes):.2f}-{max(sizes):.2f} MB (PNG and JPEG, 1200x1800); warm-up request {warm_up:.1f} s")
    print(f"web workers hold torch: {web_torch}; qcluster: {worker_torch} of its {worker_count} processes hold torch")
    if web_torch:
        raise RuntimeError("a gunicorn worker has torch loaded: web processes must never import it")
    rows = [
        ["/upload -> top 3, p50", f"{percentile(times, 50):.2f} s", "<= 1 s", "20-40 s"],
        ["/upload -> top 3, p95", f"{percentile(times, 95):.2f} s", "-", "20-40 s"],
        ["/upload -> top 3, max", f"{max(times):.2f} s", "-", "20-40 s"],
        ["RSS web worker (biggest of 2)", f"{max(web_rss):.0f} MB", "<= 150 MB", "-"],
        ["web worker holds torch", "yes" if web_torch else "no", "no", "yes"],
        ["RSS qcluster (biggest process)", f"{worker_max:.0f} MB", "-", "-"],
        [f"PSS qcluster (sum over its {worker_count} processes)", f"{worker_pss:.0f} MB", "-", "-"],
    ]
    return table(
        f"End to end: {len(times)} X-rays posted one at a time to gunicorn (2 workers) + 1 qcluster, warm worker",
        ["measure", "value", "target", "old system"],
        rows,
    )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else UPLOADS)
