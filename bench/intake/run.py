"""`make bench-intake`: intake under load (issue 8) — Jotform webhooks against gunicorn as deployed,
the worker draining behind, the old synchronous-CLIP design side by side, and exactly-once counts.

Everything runs on loopback against a scratch database (``raiox_bench_intake``) on the embedded
PostgreSQL, local media under ``var/bench-intake``, and a stand-in for Jotform's file host serving
generated 0.5-2 MB X-rays over HTTP, which the worker downloads as it does from Jotform.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import runpy
import shutil
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from bench.common import drop_database, scratch_database, setup_django, table
from bench.intake import load
from testkit import procs
from testkit.payloads import JotformBodies, PlainFormBodies
from testkit.radiographs import write_pool

DB = "raiox_bench_intake"
TOKEN = "bench-intake-token"
TARGET_THROUGHPUT = 80.0  # acknowledged webhooks/s
TARGET_P95_MS = 150.0  # at 16 concurrent clients
PROCESS_TASK = "matching.tasks.process_submission"
NOTIFY_TASK = "submissions.tasks.notify_dentist"


@dataclass
class Plan:
    jotform: dict[int, int]  # concurrency -> requests
    plain: dict[int, int]
    baseline: dict[int, int]
    burst: int
    burst_concurrency: int
    repeat_share: float
    pool: int
    drain_timeout: float
    drain_window: float  # after the load levels: how long the worker may go on before the counts


FULL = Plan(
    jotform={1: 100, 4: 200, 16: 400, 64: 640},
    plain={1: 20, 4: 40, 16: 64},
    baseline={1: 8, 4: 16},
    burst=1000,
    burst_concurrency=16,
    repeat_share=0.05,
    pool=20,
    drain_timeout=900,
    drain_window=30,
)
QUICK = Plan(
    jotform={1: 20, 4: 40, 16: 80, 64: 128},
    plain={1: 5, 4: 8, 16: 16},
    baseline={1: 4, 4: 8},
    burst=200,
    burst_concurrency=16,
    repeat_share=0.05,
    pool=10,
    drain_timeout=300,
    drain_window=10,
)


@contextlib.contextmanager
def scratch_connection(name: str) -> Iterator[None]:
    """Point this process's ORM at the scratch database (same server) for the counts."""
    from django.db import connection

    original = connection.settings_dict["NAME"]
    connection.close()
    connection.settings_dict["NAME"] = name
    try:
        yield
    finally:
        connection.close()
        connection.settings_dict["NAME"] = original


def last_submission_pk() -> int:
    from submissions.models import Submission

    return Submission.objects.order_by("-pk").values_list("pk", flat=True).first() or 0


def wait_drain(after_pk: int, timeout: float) -> dict[str, object]:
    """Until every submission created after ``after_pk`` is done or failed and the queue is empty."""
    from django.db import connection
    from django_q.models import OrmQ

    from submissions.models import Status, Submission

    started = time.perf_counter()
    while True:
        subs = Submission.objects.filter(pk__gt=after_pk)
        pending = subs.filter(status__in=[Status.RECEIVED, Status.PROCESSING]).count()
        queued = OrmQ.objects.count()
        elapsed = time.perf_counter() - started
        if (pending == 0 and queued == 0) or elapsed > timeout:
            break
        time.sleep(0.5)
    counts = Counter(subs.values_list("status", flat=True))
    connection.close()
    return {
        "seconds": elapsed,
        "drained": pending == 0 and queued == 0,
        "submissions": sum(counts.values()),
        "done": counts.get(Status.DONE, 0),
        "failed": counts.get(Status.FAILED, 0),
        "pending": pending,
        "queued": queued,
    }


def task_runs(func: str, since_pk: int) -> dict[int, Counter]:
    """Per submission id: the results of every successful run of ``func`` (django-q Success rows)."""
    from django_q.models import Success

    runs: dict[int, Counter] = defaultdict(Counter)
    for args, result in Success.objects.filter(func=func).values_list("args", "result"):
        if args and args[0] > since_pk:
            runs[args[0]][result] += 1
    return runs


def configured_workers(env: dict[str, str]) -> int:
    """The worker count deploy/gunicorn.conf.py computes under ``env`` (for this machine's cores)."""
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        return int(runpy.run_path(str(procs.ROOT / "deploy" / "gunicorn.conf.py"))["workers"])
    finally:
        os.environ.clear()
        os.environ.update(saved)


def web_env(base: dict[str, str], port: int) -> dict[str, str]:
    return {**base, "GUNICORN_BIND": f"127.0.0.1:{port}", "SITE_URL": f"http://127.0.0.1:{port}"}


def summary_row(design: str, payload: str, r: load.RunResult) -> list[object]:
    return [
        design,
        payload,
        r.concurrency,
        len(r.outcomes),
        f"{r.throughput:.1f}",
        f"{r.latency(50):.0f}",
        f"{r.latency(95):.0f}",
        f"{r.latency(99):.0f}",
        r.errors,
        r.error_summary() if r.errors else "",
    ]


def exactly_once_requests(bodies: JotformBodies, url: str, plan: Plan, pool: list[Path], rng: random.Random):
    """``plan.burst`` deliveries: distinct submissionIDs plus repeats (half sent right beside their
    original, so both are in flight together; half later, as Jotform's retries come)."""
    repeats = round(plan.burst * plan.repeat_share)
    distinct = plan.burst - repeats
    ids = [str(5_930_000_000_000_000_000 + n) for n in range(distinct)]
    bodies_by_id = {sid: bodies.body(sid, pool[n % len(pool)].name, n) for n, sid in enumerate(ids)}
    order = list(ids)
    repeated = rng.sample(ids, repeats)
    concurrent, later = repeated[: repeats // 2], repeated[repeats // 2 :]
    for sid in concurrent:
        order.insert(order.index(sid) + 1, sid)
    for sid in later:
        first = order.index(sid)
        order.insert(rng.randint(min(first + 100, len(order)), len(order)), sid)
    content_type = bodies.content_type
    return ids, order, [(url, bodies_by_id[sid], content_type) for sid in order], set(concurrent)


def check_exactly_once(ids, order, outcomes, since_pk, drain) -> tuple[list[list[object]], list[str]]:
    from submissions.models import Source, Submission

    problems: list[str] = []
    answers: dict[str, list[load.Outcome]] = defaultdict(list)
    for sid, outcome in zip(order, outcomes, strict=True):
        answers[sid].append(outcome)
    for sid, got in answers.items():
        statuses = sorted(o.status for o in got)
        tokens = {(o.json or {}).get("token") for o in got}
        if statuses != [200] * (len(got) - 1) + [201] and statuses != [201] + [200] * (len(got) - 1):
            problems.append(f"submissionID {sid}: answers {statuses} (want one 201, then 200s)")
        if len(tokens) != 1 or None in tokens:
            problems.append(f"submissionID {sid}: tokens differ across deliveries")
    rows = Submission.objects.filter(source=Source.JOTFORM, external_id__in=ids)
    in_db = rows.count()
    distinct_in_db = rows.values("external_id").distinct().count()
    by_status = Counter(rows.values_list("status", flat=True))
    attempts = Counter(rows.values_list("attempts", flat=True))
    pks = set(rows.values_list("pk", flat=True))
    runs = task_runs(PROCESS_TASK, since_pk)
    done_runs = Counter({pk: runs[pk]["done"] for pk in pks})
    mails = task_runs(NOTIFY_TASK, since_pk)
    sent = Counter({pk: mails[pk]["sent"] for pk in pks})
    twice = {pk for pk in pks if done_runs[pk] > 1} | set(rows.filter(attempts__gt=1).values_list("pk", flat=True))
    lost = len(ids) - by_status.get("done", 0) - by_status.get("failed", 0)
    duplicated = in_db - distinct_in_db
    table_rows = [
        ["webhooks sent", len(order)],
        ["repeated deliveries (same submissionID)", len(order) - len(ids)],
        ["distinct submissionIDs", len(ids)],
        [
            "answered 201 (new) / 200 (repeat, same token)",
            f"{sum(o.status == 201 for o in outcomes)} / {sum(o.status == 200 for o in outcomes)}",
        ],
        ["errors (non-2xx or exception)", sum(not 200 <= o.status < 300 for o in outcomes)],
        ["submissions in DB", in_db],
        ["processed (done)", by_status.get("done", 0)],
        ["failed (with a reason)", by_status.get("failed", 0)],
        ["processing runs per submission (attempts)", dict(sorted(attempts.items()))],
        ["processed more than once", len(twice)],
        ["e-mails sent more than once", sum(1 for pk in pks if sent[pk] > 1)],
        ["lost", lost],
        ["duplicated", duplicated],
        ["worker drain after the burst", f"{drain['seconds']:.1f} s ({drain['done'] / drain['seconds']:.1f}/s)"],
    ]
    if lost:
        problems.append(f"{lost} submissions lost or unfinished")
    if duplicated:
        problems.append(f"{duplicated} duplicated rows")
    if twice:
        problems.append(f"{len(twice)} submissions processed more than once")
    return table_rows, problems


def main(argv: list[str] | None = None) -> dict[str, object]:
    """Run the bench, print its tables; return the figures (acks/s and p95 at 16 clients, the best
    acks/s, the burst's drain) and the tables as ``text``."""
    parser = argparse.ArgumentParser(prog="python -m bench.intake", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a smaller run (a minute or two) to check the set-up")
    parser.add_argument("--skip-baseline", action="store_true")
    parser.add_argument("--keep-db", action="store_true", help="leave the scratch database for inspection")
    args = parser.parse_args(argv)
    plan = QUICK if args.quick else FULL
    t_start = time.perf_counter()

    setup_django()
    from django.conf import settings

    work = Path(settings.VAR_DIR) / "bench-intake"
    shutil.rmtree(work / "media", ignore_errors=True)
    shutil.rmtree(work / "metrics", ignore_errors=True)
    for sub in ("media", "metrics", "logs"):
        (work / sub).mkdir(parents=True, exist_ok=True)
    logs = work / "logs"
    for old in logs.iterdir():
        old.unlink()
    print(f"intake bench: logs in {logs}", flush=True)
    pool = write_pool(work / "pool", plan.pool)
    sizes = sorted(p.stat().st_size for p in pool)
    print(f"X-ray pool: {len(pool)} files, {sizes[0] / 1e6:.2f}-{sizes[-1] / 1e6:.2f} MB", flush=True)

    url = scratch_database(DB)
    file_port, web_port = procs.free_port(), procs.free_port()
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "MEDIA_ROOT": str(work / "media"),
        "PROMETHEUS_MULTIPROC_DIR": str(work / "metrics"),
        "JOTFORM_WEBHOOK_TOKEN": TOKEN,
        "JOTFORM_FILE_HOSTS": f"127.0.0.1:{file_port}",
        "RAIOX_ALLOW_HTTP_DOWNLOADS": "1",
        "RAIOX_ALLOW_UNTRAINED_MODEL": "1",
        "RAIOX_CLIP_DEVICE": "cpu",
        "RAIOX_Q_WORKERS": "1",
        "RAIOX_Q_SAVE_LIMIT": "0",  # keep every task result: runs per submission are counted from them
        # Jotform's whole traffic from one address, faster than any real form: capacity is measured here,
        # the per-address limit in bench/rate_limit.py.
        "RAIOX_RATE_LIMIT_MACHINE": "off",
        "EMAIL_BACKEND": "django.core.mail.backends.dummy.EmailBackend",
        "GUNICORN_LOG_LEVEL": "warning",
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("GUNICORN_WORKERS", None)  # as the config computes it for this machine
    rng = random.Random(8)
    results: list[list[object]] = []
    drains: list[list[object]] = []
    text: list[str] = []
    figures: dict[str, object] = {"plan": "quick" if args.quick else "full"}
    try:
        with scratch_connection(DB):
            t = time.perf_counter()
            procs.manage(["migrate", "--noinput"], env=env, log=logs / "setup.log")
            procs.manage(["createcachetable"], env=env, log=logs / "setup.log")
            procs.manage(["seed_catalog", "-v", "0"], env=env, log=logs / "setup.log")
            procs.manage(["reembed", "--stale"], env=env, log=logs / "setup.log")
            from django_q.models import OrmQ

            OrmQ.objects.all().delete()  # seed_catalog's embed tasks: reembed already did them
            print(f"scratch database ready in {time.perf_counter() - t:.0f} s", flush=True)

            jot = JotformBodies(file_host=f"127.0.0.1:{file_port}", token=TOKEN)
            plain = PlainFormBodies()
            images = [p.read_bytes() for p in pool]
            web = f"http://127.0.0.1:{web_port}"
            endpoint = f"{web}/jotform?token={TOKEN}"

            with (
                procs.file_host(file_port, work / "pool", env=env, log=logs / "filehost.log") as fh,
                procs.gunicorn("raiox.wsgi", env=web_env(env, web_port), log=logs / "gunicorn.log") as gu,
                procs.qcluster(env=env, log=logs / "qcluster.log"),
            ):
                procs.wait_http(f"http://127.0.0.1:{file_port}/{pool[0].name}", fh, logs / "filehost.log")
                procs.wait_http(f"{web}/healthcheck", gu, logs / "gunicorn.log")
                workers = configured_workers(web_env(env, web_port))
                print(f"gunicorn: {workers} workers (deploy/gunicorn.conf.py on {os.cpu_count()} cores)", flush=True)
                load.run(
                    lambda n: (endpoint, jot.body(f"59{n:017d}", pool[0].name, n), jot.content_type),
                    total=2 * workers,
                    concurrency=workers,
                )  # warm every worker (imports, DB connection)

                # 1. Exactly once: a burst with repeated deliveries, some concurrent with their original.
                before = last_submission_pk()
                ids, order, requests, _ = exactly_once_requests(jot, endpoint, plan, pool, rng)
                t = time.perf_counter()
                outcomes = load.burst(requests, concurrency=plan.burst_concurrency)
                burst_seconds = time.perf_counter() - t
                done_during = wait_drain(before, 0)["done"]
                d = wait_drain(before, plan.drain_timeout)
                drains.append(
                    [
                        "exactly-once burst (until drained)",
                        d["submissions"],
                        f"{burst_seconds:.1f} s",
                        done_during,
                        f"{d['seconds']:.1f} s",
                        d["done"],
                        d["failed"],
                        d["pending"],
                    ]
                )
                figures.update(burst_submissions=d["submissions"], burst_done=d["done"], burst_drain_s=d["seconds"])
                once_rows, problems = check_exactly_once(ids, order, outcomes, before, d)
                once_rows.insert(6, ["burst sent in", f"{burst_seconds:.1f} s at concurrency {plan.burst_concurrency}"])

                # 2. Jotform's real webhook (no file bytes) at rising concurrency, worker draining behind.
                before = last_submission_pk()
                t_load = time.perf_counter()
                for level, (concurrency, total) in enumerate(plan.jotform.items(), start=1):

                    def make(n: int, level=level) -> load.Request:
                        sid = str(5_900_000_000_000_000_000 + level * 1_000_000 + n)
                        return endpoint, jot.body(sid, pool[n % len(pool)].name, n), jot.content_type

                    r = load.run(make, total=total, concurrency=concurrency)
                    results.append(summary_row("queue (new)", "Jotform webhook (URL)", r))
                    print(
                        f"  jotform c={concurrency}: {r.throughput:.1f}/s p95 {r.latency(95):.0f} ms errors {r.errors}",
                        flush=True,
                    )
                load_seconds = time.perf_counter() - t_load

                # 3. The old plain form: the X-ray's bytes in the request (validated before the answer).
                for concurrency, total in plan.plain.items():

                    def make_plain(n: int) -> load.Request:
                        i = n % len(pool)
                        return endpoint, plain.body(images[i], pool[i].name), plain.content_type

                    r = load.run(make_plain, total=total, concurrency=concurrency)
                    results.append(summary_row("queue (new)", "plain form, 0.6-1.9 MB file", r))
                    print(
                        f"  plain c={concurrency}: {r.throughput:.1f}/s p95 {r.latency(95):.0f} ms errors {r.errors}",
                        flush=True,
                    )
                load_seconds = time.perf_counter() - t_load
                done_during = wait_drain(before, 0)["done"]
                d = wait_drain(before, plan.drain_window)
                drains.append(
                    [
                        "load levels (webhooks + plain form)",
                        d["submissions"],
                        f"{load_seconds:.1f} s",
                        done_during,
                        f"{d['seconds']:.1f} s",
                        d["done"],
                        d["failed"],
                        d["pending"],
                    ]
                )

            # 4. The old design: CLIP in the request (no worker running: it gets both cores).
            if not args.skip_baseline:
                base_env = {**web_env(env, web_port), "GUNICORN_WORKERS": str(os.cpu_count() or 1)}
                with (
                    procs.file_host(file_port, work / "pool", env=env, log=logs / "filehost.log") as fh,
                    procs.gunicorn("bench.intake.baseline:application", env=base_env, log=logs / "baseline.log") as gu,
                ):
                    procs.wait_http(f"http://127.0.0.1:{file_port}/{pool[0].name}", fh, logs / "filehost.log")
                    procs.wait_http(web, gu, logs / "baseline.log", timeout=300)
                    for concurrency, total in plan.baseline.items():

                        def make_sync(n: int) -> load.Request:
                            sid = str(5_990_000_000_000_000_000 + n)
                            return endpoint, jot.body(sid, pool[n % len(pool)].name, n), jot.content_type

                        # Warm-up: every worker has its model and a DB connection before timing.
                        load.run(make_sync, total=concurrency, concurrency=concurrency)
                        r = load.run(make_sync, total=total, concurrency=concurrency)
                        results.append(summary_row("sync CLIP (old)", "Jotform webhook (URL)", r))
                        print(
                            f"  baseline c={concurrency}: {r.throughput:.1f}/s p95 {r.latency(95):.0f} ms "
                            f"errors {r.errors}",
                            flush=True,
                        )

            text.append(
                table(
                    f"Intake under load: acknowledged requests/s and latency (ms); targets >= "
                    f"{TARGET_THROUGHPUT:.0f} webhooks/s and p95 <= {TARGET_P95_MS:.0f} ms at 16 clients; "
                    f"gunicorn {workers} sync workers (deploy/gunicorn.conf.py), 1 qcluster worker",
                    ["design", "payload", "clients", "requests", "acks/s", "p50", "p95", "p99", "errors", "what"],
                    results,
                )
            )
            at16 = next(r for r in results if r[0] == "queue (new)" and r[2] == 16)
            best = max(float(r[4]) for r in results if r[0] == "queue (new)" and r[1].startswith("Jotform"))
            verdict = (
                f"targets: throughput {best:.1f}/s ({'met' if best >= TARGET_THROUGHPUT else 'MISSED'}), "
                f"p95 at 16 clients {at16[6]} ms ({'met' if float(at16[6]) <= TARGET_P95_MS else 'MISSED'})"
            )
            print(verdict, flush=True)
            text.append(verdict)
            figures.update(acks_16=float(at16[4]), p95_16_ms=float(at16[6]), best_acks=best)
            text.append(
                table(
                    "Worker drain behind the load (1 qcluster worker: download, validate, store, embed or reuse, "
                    "search, notify)",
                    [
                        "load",
                        "submissions",
                        "load lasted",
                        "done during load",
                        "then waited",
                        "done",
                        "failed",
                        "pending",
                    ],
                    drains,
                )
            )
            text.append(table(f"Exactly once: burst of {plan.burst} Jotform webhooks", ["count", "value"], once_rows))
            for problem in problems[:20]:
                print("PROBLEM:", problem, flush=True)
            text.append(f"exactly-once problems: {len(problems)}")
            figures["exactly_once_problems"] = len(problems)
    finally:
        if not args.keep_db:
            with contextlib.suppress(Exception):
                drop_database(DB)
    total = time.perf_counter() - t_start
    print(f"intake bench took {total:.0f} s", flush=True)
    return {**figures, "seconds": total, "text": "\n".join(text)}
