"""Rate-limit run (issue 13): gunicorn as deployed (2 web processes, one shared count), one client
sending more anonymous ``POST /upload`` than its limit, from several connections at once, and
another client behind the same proxy sending a few of its own.

The bench plays nginx: every request reaches gunicorn from 127.0.0.1 with ``X-Forwarded-For``
naming the client (RAIOX_TRUSTED_PROXY_COUNT=1). Prints the limit, requests sent, 202 / 429 counts
per client, and whether every 429 carried ``Retry-After``.

    .venv/bin/python -m bench.rate_limit [requests-from-the-first-client]
"""

from __future__ import annotations

import os
import random
import sys
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import httpx
from PIL import Image

from bench.common import drop_database, scratch_database, setup_django, table
from testkit import procs
from testkit.images import encode

DB = "raiox_bench_rate_limit"
LIMIT = "20/10m"
ABUSER = "198.51.100.7"
DENTIST = "203.0.113.9"


def xray(seed: int) -> bytes:
    rng = random.Random(seed)
    image = Image.frombytes("L", (256, 192), bytes(rng.randrange(256) for _ in range(256 * 192)))
    return encode(image)


def main(sent: int = 60, others: int = 10) -> str:
    setup_django()
    work = procs.ROOT / "var" / "bench-rate-limit"
    logs = work / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    for old in logs.iterdir():
        old.unlink()
    url = scratch_database(DB)
    port = procs.free_port()
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "MEDIA_ROOT": str(work / "media"),
        "RAIOX_ALLOW_UNTRAINED_MODEL": "1",
        "RAIOX_TRUSTED_PROXY_COUNT": "1",
        "RAIOX_RATE_LIMIT_INTAKE": LIMIT,
        "RAIOX_UPLOAD_WAIT_SECONDS": "0",  # no worker here: every accepted upload is a 202
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "GUNICORN_WORKERS": "2",
        "GUNICORN_LOG_LEVEL": "warning",
        "PYTHONUNBUFFERED": "1",
    }
    base = f"http://127.0.0.1:{port}"
    images = [xray(i) for i in range(sent + others)]
    results: dict[str, list[httpx.Response]] = {ABUSER: [], DENTIST: []}
    try:
        procs.manage(["migrate", "--noinput"], env=env, log=logs / "setup.log")
        procs.manage(["createcachetable"], env=env, log=logs / "setup.log")
        with (
            procs.gunicorn("raiox.wsgi", env=env, log=logs / "gunicorn.log") as web,
            httpx.Client(base_url=base, timeout=60) as client,
        ):
            procs.wait_http(f"{base}/healthcheck", web, logs / "gunicorn.log")

            def post(args: tuple[str, int]) -> tuple[str, httpx.Response]:
                who, i = args
                response = client.post(
                    "/upload",
                    files={"file": (f"rx-{i}.png", images[i], "image/png")},
                    headers={"X-Forwarded-For": who},
                )
                return who, response

            # The first client's requests from 4 connections at once (both web processes count),
            # the other client's interleaved with them.
            jobs = [(ABUSER, i) for i in range(sent)]
            for k in range(others):
                jobs.insert((k + 1) * len(jobs) // (others + 1), (DENTIST, sent + k))
            with ThreadPoolExecutor(4) as pool:
                for who, response in pool.map(post, jobs):
                    results[who].append(response)
    finally:
        drop_database(DB)

    def counts(who: str) -> Counter:
        return Counter(r.status_code for r in results[who])

    abuser, dentist = counts(ABUSER), counts(DENTIST)
    limited = [r for rs in results.values() for r in rs if r.status_code == 429]
    with_retry = sum(1 for r in limited if int(r.headers.get("Retry-After", "0")) > 0)
    rows = [
        ["limit (RAIOX_RATE_LIMIT_INTAKE)", LIMIT, "-"],
        ["requests sent", str(sent), str(others)],
        ["accepted (202)", str(abuser[202]), str(dentist[202])],
        ["refused (429)", str(abuser[429]), str(dentist[429])],
        ["other answers", str(sum(v for k, v in abuser.items() if k not in (202, 429))), "-"],
        ["429 with Retry-After", f"{with_retry}/{len(limited)}", "-"],
        ["the other address got a 429", "-", "no" if dentist[429] == 0 else "YES"],
    ]
    return table(
        f"Rate limit: anonymous POST /upload through gunicorn (2 web processes), limit {LIMIT} per address, "
        "4 connections at once",
        ["figure", f"client {ABUSER}", f"client {DENTIST} (same proxy)"],
        rows,
    )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 60)
