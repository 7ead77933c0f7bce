"""`make bench`: every benchmark, one after the other, each printing its table, then a summary of
issue 15's figures beside their earlier values and targets (``bench.summary``), written to
``var/bench/summary.md`` (with the raw figures in ``var/bench/figures.json``) and printed.

Order: embeddings, search at 10^3-10^5, end to end, intake under load, the fixture finder on
generated films (``bench.fixtures``), then the 10^6-vector search
row (the longest: ~2 GB of vectors and a ~2.7 GB index; last, so a run cut short still has the
rest). The machine's load average is printed before and after each bench and kept in the summary:
run it on a quiet machine (nothing else on the 2 cores), or the latencies mean little.

``python -m bench.all [--tiny] [--million N] [--only NAMES]``:

- ``--million N`` (or ``RAIOX_BENCH_MILLION=N``): the size of the big search row, default 10^6;
  0 skips it.
- ``--only embedding,search,e2e,intake,fixtures,million``: a subset (the others show "not run").
- ``--tiny``: small sizes everywhere, to check the whole path in a few minutes (figures
  meaningless): 8 images, search at 10^3 and 10^4, the big row at 20,000, 5 uploads, the quick
  intake plan without its baseline, 2 generated films per condition for the fixture finder.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import time
import traceback
from pathlib import Path

from bench import summary

BENCHES = ("embedding", "search", "e2e", "intake", "fixtures", "million")
# Rough durations on the quiet 2-core machine (s), for the opening estimate: embeddings (3
# variants, 64 images), end to end (set-up + 50 uploads), intake (full plan, bench/RESULTS.md: 358-394 s).
# Fixture finder: 40 generated films per condition on the held-out seed.
ESTIMATE_S = {"embedding": 120, "e2e": 150, "intake": 400, "fixtures": 90}


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def _commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True)
        dirty = subprocess.run(["git", "status", "--porcelain"], capture_output=True, text=True, check=True).stdout
        return out.stdout.strip() + (" (with uncommitted changes)" if dirty.strip() else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _machine() -> str:
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3
    return f"{os.cpu_count()} cores, {memory:.0f} GiB RAM"


def plan(args) -> dict[str, tuple]:
    """bench name -> (callable, args) for this run."""
    from bench import e2e, embedding, fixtures, intake, search

    if args.tiny:
        million = args.million if args.million_given else 20_000
        steps = {
            "embedding": (embedding.main, (8,)),
            "search": (search.main, ((1_000, 10_000),)),
            "e2e": (e2e.main, (5,)),
            "intake": (intake.main, (["--quick", "--skip-baseline"],)),
            "fixtures": (fixtures.main, (2,)),  # 2 films per condition, the held-out seed
        }
    else:
        million = args.million
        steps = {
            "embedding": (embedding.main, ()),
            "search": (search.main, ()),
            "e2e": (e2e.main, ()),
            "intake": (intake.main, ([],)),  # load levels, the exactly-once burst and the queue drain
            "fixtures": (fixtures.main, (40,)),  # the fixture finder on generated films, held-out seed
        }
    if million:
        # The same search at one big size; no exact-scan rows (seconds per query at 10^6).
        steps["million"] = (search.main, ((million,), None, None, True, 0))
    return steps


def estimate(steps: dict[str, tuple], args) -> dict[str, float]:
    from bench import search

    out = {}
    for name, (_, call_args) in steps.items():
        if name in ("search", "million"):
            sizes = call_args[0] if call_args else search.DEFAULT_SIZES
            out[name] = sum(search.estimate_seconds(n) for n in sizes)
        else:
            out[name] = ESTIMATE_S[name] / (4 if args.tiny else 1)
    return out


def main(argv: list[str] | None = None) -> dict[str, object]:
    parser = argparse.ArgumentParser(prog="python -m bench.all", description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="small sizes: check the path, not the figures")
    parser.add_argument("--million", type=int, default=None, help="size of the big search row (0 skips it)")
    parser.add_argument("--only", default="", help=f"comma-separated subset of {','.join(BENCHES)}")
    parser.add_argument("--out", default="", help="summary file (default var/bench/summary.md)")
    args = parser.parse_args(argv)
    args.million_given = args.million is not None or "RAIOX_BENCH_MILLION" in os.environ
    if args.million is None:
        args.million = int(os.environ.get("RAIOX_BENCH_MILLION", "1000000"))
    only = [b.strip() for b in args.only.split(",") if b.strip()]
    unknown = set(only) - set(BENCHES)
    if unknown:
        parser.error(f"unknown bench {sorted(unknown)}; choose from {','.join(BENCHES)}")

    from bench.common import setup_django

    setup_django()
    from django.conf import settings

    out = Path(args.out) if args.out else Path(settings.VAR_DIR) / "bench" / "summary.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    steps = plan(args)
    why_not: dict[str, str] = {}
    if not args.million:
        why_not["million"] = "skipped: --million 0 / RAIOX_BENCH_MILLION=0"
    for name in list(steps):
        if only and name not in only:
            del steps[name]
            why_not[name] = "not in --only"
    durations = estimate(steps, args)
    if args.tiny:
        mode = "TINY run (--tiny): small sizes to check the path; the figures mean nothing."
    elif only:
        mode = f"Partial run (--only {', '.join(steps)})."
    else:
        mode = "Full run (`make bench`)."
    meta = {"started": _now(), "machine": _machine(), "commit": _commit(), "mode": mode}
    total = sum(durations.values())
    print(
        f"make bench: {', '.join(steps)}; estimated {total / 60:.0f} min on a quiet machine ("
        + ", ".join(f"{name} ~{s / 60:.1f} min" for name, s in durations.items())
        + f"). Load average now: {summary._load(os.getloadavg())}. Summary: {out}",
        flush=True,
    )

    results: dict[str, object] = {}
    runs: list[dict] = []
    for name, (func, call_args) in steps.items():
        run = {"name": name, "started": _now(), "load_before": os.getloadavg()}
        print(f"\n=== bench {name}: load average before {summary._load(run['load_before'])} (1/5/15 min)", flush=True)
        started = time.perf_counter()
        try:
            results[name] = func(*call_args)
            run["outcome"] = "ok"
        except Exception as exc:  # one failed bench must not lose the others' figures
            traceback.print_exc()
            run["outcome"] = f"failed: {type(exc).__name__}: {exc}"
            why_not[name] = run["outcome"]
        run["seconds"] = time.perf_counter() - started
        run["load_after"] = os.getloadavg()
        runs.append(run)
        print(
            f"=== bench {name}: {run['outcome']} in {run['seconds']:.0f} s,"
            f" load average after {summary._load(run['load_after'])}",
            flush=True,
        )
        _write(out, results, runs, meta, why_not)

    text = _write(out, results, runs, meta, why_not)
    print("\n" + text.split("\n## Each bench's tables")[0], flush=True)
    print(f"summary written to {out} (raw figures: {out.with_name('figures.json')})", flush=True)
    return results


def _write(out: Path, results: dict, runs: list[dict], meta: dict, why_not: dict[str, str]) -> str:
    text = summary.render(results, runs, meta, why_not)
    out.write_text(text)
    raw = {name: {k: v for k, v in figures.items() if k != "text"} for name, figures in results.items()}
    dump = {"meta": meta, "runs": runs, "figures": raw}
    out.with_name("figures.json").write_text(json.dumps(dump, indent=1, default=str))
    return text


if __name__ == "__main__":
    main()
