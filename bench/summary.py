"""The summary of one ``make bench`` run: every figure of issue 15's table beside its earlier figure
and its target, whether this run met it, and the machine's load around each bench (so a quiet run
is on record). ``bench.all`` writes it to ``var/bench/summary.md`` after each bench (a run cut short
keeps what it measured) and prints it at the end.

The "earlier" column is issue 15's "now" column, copied here once (the figures the issue set out to
improve, from the issue-3 quiet run and the issue-15 shared-machine runs in bench/RESULTS.md); the
targets are the issue's. Each bench's ``main()`` returns its figures as a dict; ``figure_rows``
reads them, and a bench that did not run (skipped, failed) leaves its rows "not run".
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

EARLIER_SOURCE = 'issue 15\'s table, column "now" (bench/RESULTS.md: issue-3 quiet run, issue-15 runs)'
HNSW = "HNSW m=16 efc=128"  # the migration's index (bench.search's label)


@dataclass
class Figure:
    name: str
    earlier: str
    target: str
    bench: str  # the key of the bench's figures in the results
    # results -> (this run's text, met: True / False / None when the issue sets no target)
    read: Callable[[dict], tuple[str, bool | None]]


def _search_row(results: dict, bench: str, n: int, filter_name: str) -> dict:
    for row in results[bench]["rows"]:
        if row["n"] == n and row["index"] == HNSW and row["filter"] == filter_name:
            return row
    raise LookupError(f"no {HNSW} row at {n:,} with filter {filter_name!r}")


def _p95_recall(bench: str, n: int, filter_name: str, p95_max: float | None, recall_min: float | None):
    def read(results: dict) -> tuple[str, bool | None]:
        row = _search_row(results, bench, n, filter_name)
        text = f"{row['p95_ms']:.2f} ms / {row['recall']:.3f}; planner: {row['planner']}"
        if p95_max is None:
            return text, None
        return text, row["p95_ms"] <= p95_max and row["recall"] >= recall_min

    return read


def _recall(n: int, minimum: float):
    def read(results: dict) -> tuple[str, bool | None]:
        row = _search_row(results, "search", n, "none")
        return f"{row['recall']:.3f}", row["recall"] >= minimum

    return read


def _p50(n: int, maximum_ms: float):
    def read(results: dict) -> tuple[str, bool | None]:
        row = _search_row(results, "search", n, "none")
        return f"{row['p50_ms']:.2f} ms; planner: {row['planner']}", row["p50_ms"] <= maximum_ms

    return read


def _rescoring(results: dict) -> tuple[str, bool | None]:
    """What the exact rescoring of the implants the index finds costs and buys (matching/search.py)."""
    row = _search_row(results, "search", 100_000, "none")
    rows = results["search"]["rows"]
    base = [r for r in rows if r["n"] == 100_000 and r["index"] == f"{HNSW}, index order"]
    if not base:
        raise LookupError("no index-order row at 100,000")
    base = base[0]
    text = (
        f"rescored p50 {row['p50_ms']:.2f} / p95 {row['p95_ms']:.2f} ms, shown exactly {row['shown_exactly']:.3f};"
        f" index order p50 {base['p50_ms']:.2f} / p95 {base['p95_ms']:.2f} ms, shown exactly"
        f" {base['shown_exactly']:.3f}"
    )
    return text, None


def _upload(results: dict) -> tuple[str, bool | None]:
    e2e = results["e2e"]
    text = (
        f"{e2e['p50_s']:.2f} s (web {e2e['web_p50_s']:.3f} + hand-off {e2e['handoff_p50_s']:.3f}"
        f" + worker {e2e['worker_p50_s']:.3f} + hand-back {e2e['handback_p50_s']:.3f} s, p50 each)"
    )
    return text, e2e["p50_s"] <= 0.25


def _ack_p95(results: dict) -> tuple[str, bool | None]:
    intake = results["intake"]
    return f"{intake['p95_16_ms']:.0f} ms ({intake['plan']} plan)", intake["p95_16_ms"] <= 150


def _acks(results: dict) -> tuple[str, bool | None]:
    intake = results["intake"]
    return f"{intake['acks_16']:.1f}/s (best level {intake['best_acks']:.1f}/s)", intake["acks_16"] >= 80


def _embeddings(variant: str):
    def read(results: dict) -> tuple[str, bool | None]:
        emb = results["embedding"]
        v = emb["variants"][variant]
        rate = v[f"batch{emb['worker_batch']}"]
        text = (
            f"{rate:.1f} images/s at batch {emb['worker_batch']} ({emb['threads']} torch threads);"
            f" cosine with fp32 {v['cos_mean']:.4f} / {v['cos_min']:.4f} (mean / min), same top-3 {v['top3']:.3f}"
        )
        return text, rate >= 20 and v["cos_min"] >= 0.99 and v["top3"] >= 0.99

    return read


def _drain(results: dict) -> tuple[str, bool | None]:
    intake = results["intake"]
    rate = intake["burst_done"] / intake["burst_drain_s"]
    text = (
        f"{rate:.1f} submissions/s ({intake['burst_done']} of {intake['burst_submissions']} done"
        f" {intake['burst_drain_s']:.1f} s after the burst, {intake['plan']} plan)"
    )
    return text, rate >= 10


def _million_build(results: dict) -> tuple[str, bool | None]:
    (n, size), *_ = results["million"]["sizes"].items()
    text = (
        f"{n:,} vectors: load {size['load_s']:.0f} s (binary COPY + VACUUM), HNSW build {size['build_s']:.0f} s"
        f" (maintenance_work_mem {size['maintenance_work_mem_mb']} MB, {size['workers']} worker),"
        f" index {size['index_bytes'] / 1e9:.2f} GB, table {size['heap_bytes'] / 1e9:.2f} GB"
    )
    if size.get("notices"):
        text += f"; pgvector: {'; '.join(size['notices'])}"
    return text, None


def _million_memory(results: dict) -> tuple[str, bool | None]:
    (_, size), *_ = results["million"]["sizes"].items()
    text = (
        f"peak during the build {size['peak_rss_mb']:.0f} MB RSS / {size['peak_pss_mb']:.0f} MB PSS;"
        f" after the queries {size['rss_mb']:.0f} / {size['pss_mb']:.0f} MB"
    )
    return text, None


def _million_search(filter_name: str):
    def read(results: dict) -> tuple[str, bool | None]:
        (n, _), *_ = results["million"]["sizes"].items()
        row = _search_row(results, "million", n, filter_name)
        text = (
            f"{n:,} vectors: p50 {row['p50_ms']:.2f} / p95 {row['p95_ms']:.2f} ms, recall@3 {row['recall']:.3f};"
            f" planner: {row['planner']}"
        )
        return text, None

    return read


FIGURES = [
    Figure(
        "search top-3 implants at 10⁵ vectors, p95 / recall@3",
        "10.0–12.0 ms / 0.977–0.995 (two runs)",
        "≤ 5 ms / ≥ 0.995",
        "search",
        _p95_recall("search", 100_000, "none", 5.0, 0.995),
    ),
    Figure(
        "search at 10⁵: exact rescoring of the implants the index finds, beside the index's own order",
        "not measured (index order only)",
        "— (issue sets none)",
        "search",
        _rescoring,
    ),
    Figure("search at 10⁴, recall@3", "0.985", "≥ 0.995", "search", _recall(10_000, 0.995)),
    Figure("search at 10³ vectors, p50", "6.7 ms", "≤ 2 ms", "search", _p50(1_000, 2.0)),
    Figure(
        "refine-by-feature (filtered) search at 10⁵, keeping 10 %, p95 / recall@3",
        "not measured",
        "≤ 10 ms / ≥ 0.99",
        "search",
        _p95_recall("search", 100_000, "10 %", 10.0, 0.99),
    ),
    Figure(
        "refine-by-feature (filtered) search at 10⁵, keeping 1 %, p95 / recall@3",
        "not measured",
        "≤ 10 ms / ≥ 0.99",
        "search",
        _p95_recall("search", 100_000, "1 %", 10.0, 0.99),
    ),
    Figure(
        "`POST /upload` → top 3 with a warm worker, p50",
        "0.36–0.45 s (~0.2 s waiting in the queue)",
        "≤ 0.25 s",
        "e2e",
        _upload,
    ),
    Figure("Jotform webhook ack at 16 clients, p95", "193–199 ms (two runs)", "≤ 150 ms", "intake", _ack_p95),
    Figure("Jotform webhook acks/s at 16 clients", "91–103/s", "≥ 80/s", "intake", _acks),
    Figure(
        "embeddings per 2-core worker, batched, fp32",
        "13.1–16.4 images/s",
        "≥ 20 images/s",
        "embedding",
        _embeddings("fp32"),
    ),
    Figure(
        "embeddings per 2-core worker, batched, int8 (`RAIOX_CLIP_QUANTIZE=int8`)",
        "not measured on a quiet machine",
        "≥ 20 images/s, cosine ≥ 0.99 of fp32, same top-3 ≥ 0.99",
        "embedding",
        _embeddings("int8"),
    ),
    Figure(
        "worker drain after a burst of Jotform webhooks",
        "3.4 submissions/s (`bench.intake --quick`: 190 in 56.5 s)",
        "≥ 10 submissions/s",
        "intake",
        _drain,
    ),
    Figure("10⁶ vectors: load, build time, index size", "not run", "— (issue sets none)", "million", _million_build),
    Figure(
        "10⁶ vectors: search unfiltered, p50 / p95 / recall@3",
        "not run",
        "— (at 10⁵: ≤ 5 ms / ≥ 0.995)",
        "million",
        _million_search("none"),
    ),
    Figure(
        "10⁶ vectors: filtered, keeping 10 %",
        "not run",
        "— (at 10⁵: ≤ 10 ms / ≥ 0.99)",
        "million",
        _million_search("10 %"),
    ),
    Figure(
        "10⁶ vectors: filtered, keeping 1 %",
        "not run",
        "— (at 10⁵: ≤ 10 ms / ≥ 0.99)",
        "million",
        _million_search("1 %"),
    ),
    Figure("10⁶ vectors: database server memory", "not run", "—", "million", _million_memory),
]


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def figure_rows(results: dict, why_not: dict[str, str]) -> list[list[str]]:
    """One row per figure: figure | earlier | this run | target | met? (``why_not``: why a bench
    has no results: skipped, failed)."""
    rows = []
    for figure in FIGURES:
        if figure.bench not in results:
            now, verdict = f"not run ({why_not.get(figure.bench, 'not asked')})", "-"
        else:
            try:
                now, met = figure.read(results)
                verdict = "n/a" if met is None else ("**yes**" if met else "no")
            except (KeyError, LookupError, ValueError, ZeroDivisionError) as exc:
                now, verdict = f"missing ({type(exc).__name__}: {exc})", "-"
        rows.append([figure.name, figure.earlier, now, figure.target, verdict])
    return rows


def markdown_table(headers: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(_cell(str(c)) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _load(values) -> str:
    return " / ".join(f"{v:.2f}" for v in values) if values else "-"


def render(results: dict, runs: list[dict], meta: dict, why_not: dict[str, str]) -> str:
    """The summary markdown: the figures table, the load around each bench, then each bench's own
    tables as printed."""
    heading = [
        f"# `make bench` summary — {meta['started']} UTC",
        "",
        f"Machine: {meta['machine']}. Commit {meta['commit']}. {meta['mode']}",
        f"Earlier figures: {EARLIER_SOURCE}. Targets: issue 15.",
        "",
        markdown_table(["figure", "earlier", "this run", "target", "met?"], figure_rows(results, why_not)),
        "",
        "## Machine load around each bench (load average over 1 / 5 / 15 min)",
        "",
        markdown_table(
            ["bench", "started (UTC)", "took", "load before", "load after", "outcome"],
            [
                [
                    r["name"],
                    r["started"],
                    f"{r['seconds']:.0f} s" if r.get("seconds") is not None else "-",
                    _load(r.get("load_before")),
                    _load(r.get("load_after")),
                    r.get("outcome", "-"),
                ]
                for r in runs
            ],
        ),
        "",
        "Quiet means nothing else running: a 1-minute load average well under 1 before each bench on"
        ' this 2-core machine (a bench\'s own load shows in its "after").',
    ]
    tables = ["", "## Each bench's tables, as printed", ""]
    for name in ("embedding", "search", "million", "e2e", "intake"):
        if name in results and isinstance(results[name], dict) and results[name].get("text"):
            tables += [f"### bench: {name}", "", results[name]["text"].strip(), ""]
    return "\n".join(heading + tables) + "\n"
