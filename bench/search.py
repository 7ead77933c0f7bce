"""Search latency p50/p95 and recall@3 (implants, folded) against an exact scan, for 10^3 to 10^6
synthetic 512-d vectors: HNSW build parameters (m, ef_construction: build time, index size) and
``hnsw.ef_search``, unfiltered and filtered (refine-by-features keeping ~10 % and ~1 % of the rows).

Usage: ``python -m bench.search [N ...] [--grid M:EFC,M:EFC] [--ef 40,100] [--no-filters]
[--exact-up-to N]`` (defaults: 10^3, 10^4, 10^5; the migration's parameters; the search's EF_SEARCH;
filters on; exact rows up to 10^5). ``python -m bench.search 1000000`` is the 10^6 row
(``make bench`` runs it after the others; see "10^6" below).

It times the real ``matching.search.nearest_implants`` (Django ORM, the HNSW index, iterative index
scans, folding, the exact fallback) in a scratch database (``raiox_bench_search``, migrated, then
filled with implants and reference images, dropped at the end), so the bench cannot drift from the
search it measures. The "exact" rows run the same call with ``exact=True`` (index scans off,
PostgreSQL folds): recall must be 1.000 (it checks the numpy reference). Recall@3 = the share of
the exact top-3 implants (numpy brute force over the same rows: one model, active implants
matching the filter, the best image of each implant) that the search returned. "Shown exactly" =
the share of queries whose list is the exact one: same implants, same order, each with the
similarity of its best image (what the dentist reads). The "index order" row is the same scan
without the exact rescoring of the implants it finds (``RESCORE_FACTOR = 0``), for comparison.

Synthetic catalogue (why this shape): a real one lists hundreds to a few thousand implant systems,
each with a handful of catalogue images, and grows with confirmed cases (a dentist confirms the
implant, the X-ray becomes a reference image), which pile up on the popular systems. So:

- ``n / 20`` implants (50, 500, 5,000, 50,000): at 10^5 vectors a large catalogue with a long
  history, at 10^6 a stress test far past any real one;
- each implant has 3-8 catalogue images; the rest of the ``n`` rows are confirmed cases spread
  with a mild popularity skew (weight ~ 1 / rank^0.3: the most common system has ~7x the mean at
  10^5, ~12x at 10^6), and queries are drawn with the same popularity;
- geometry: every radiograph shares a large common component (CLIP sees all X-rays as alike), an
  implant's images lie around the implant's direction, and implants come in look-alike families
  of 10 (one manufacturer's line): cosine ~0.92 within an implant, ~0.77 between family members,
  ~0.45 otherwise. The 2nd and 3rd implants are then the query's look-alikes, as in real use;
  isotropic noise would make them random far-away points, whose order means nothing to a dentist.

Filters: every 10th implant is ``parallel`` (body shape) and every 100th is at ``tissue`` level, so
``{"body_shape": "parallel"}`` keeps ~10 % of the rows and ``{"level": "tissue"}`` ~1 %; the queries
are the same (drawn by popularity over all implants), so the kept rows are rarely the nearest ones:
the iterative index scan has to walk past most of the graph's neighbourhood to find them.

Memory and speed at any size: the vectors are generated in chunks of ``CHUNK`` rows (each chunk
from its own seed, so the same chunk can be generated again), sent to PostgreSQL by binary COPY
(built in numpy, no Python loop per row), and the numpy ground truth is computed chunk by chunk
(the best cosine of each implant for every query), so Python never holds the 2 GB of a 10^6 set.
The HNSW index is built after the load with the migration's parameters, ``maintenance_work_mem``
sized so the graph fits (pgvector warns when it does not; the warning is printed) and one parallel
worker on this 2-core machine. Autovacuum is off on the scratch table and the load ends with
``VACUUM ANALYZE``, so no background vacuum runs into the build or the timings.

10^6: the same measurements minus the exact-scan rows (an exact scan of 10^6 rows takes seconds
per query; recall is checked against numpy anyway), plus the free disk it needs (checked first)
and the database server's memory at its peak during the build.
"""

from __future__ import annotations

import argparse
import os
import shutil
import threading
import time
from collections.abc import Iterator

import numpy as np

from bench.common import drop_database, percentile, scratch_database, setup_django, table

DB = "raiox_bench_search"
K = 3
QUERIES = 200
EXACT_QUERIES = 50  # the exact scan is slow at 10^5
MODEL_ID = "bench/synthetic"
FAMILY = 10  # implants per look-alike family
# Weights of the shared, family, implant and image components (unit random directions).
COMMON, FAMILY_W, IMPLANT_W, IMAGE_W = 1.2, 1.0, 0.7, 0.5
SKEW = 0.3
# The HNSW parameters of implants' migration (refimage_embedding_hnsw).
M, EF_CONSTRUCTION = 16, 128
DEFAULT_SIZES = (1_000, 10_000, 100_000)
MILLION = 1_000_000
EXACT_UP_TO = 100_000  # sizes above this get no exact-scan rows
CHUNK = 20_000  # vectors generated, sent and compared at a time (~40 MB of float32)
# Bytes per vector the HNSW build keeps in memory (the 2,056-byte vector, 2*m neighbour slots at
# layer 0 and bookkeeping: 2.9 KB measured at 50,000), with a margin; maintenance_work_mem = n * this.
GRAPH_BYTES_PER_VECTOR = 4_000
# Disk per vector while the set exists: heap (~2.2 KB with the row header), HNSW index (~2.7 KB),
# the table's btrees; plus WAL (max_wal_size) and a margin.
DISK_BYTES_PER_VECTOR = 6_000
DISK_SLACK = 3 * 1024**3


def _unit(rng: np.random.Generator, *shape: int) -> np.ndarray:
    v = rng.normal(size=(*shape, 512))
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


class Catalogue:
    """The synthetic catalogue of ``n`` vectors (see the module docstring). The implants' directions,
    the implant of every row (sorted by implant) and the queries are held; the vectors themselves are
    generated on demand, ``CHUNK`` rows at a time, each chunk from its own seed."""

    def __init__(self, n: int) -> None:
        self.n = n
        rng = np.random.default_rng(n)
        implants = max(10, n // 20)
        common = _unit(rng)
        families = _unit(rng, implants // FAMILY + 1)
        self.directions = (
            COMMON * common + FAMILY_W * families[np.arange(implants) // FAMILY] + IMPLANT_W * _unit(rng, implants)
        )
        catalogue = np.minimum(rng.integers(3, 9, size=implants), max(1, n // implants))
        popularity = 1.0 / (1 + rng.permutation(implants)) ** SKEW
        popularity /= popularity.sum()
        confirmed = rng.multinomial(max(0, n - int(catalogue.sum())), popularity)
        self.implant_of = np.repeat(np.arange(implants), catalogue + confirmed)[:n]
        self.implants = int(self.implant_of.max()) + 1
        asked = rng.choice(implants, size=QUERIES, p=popularity)
        queries = self.directions[asked] + IMAGE_W * _unit(rng, QUERIES)
        self.queries = (queries / np.linalg.norm(queries, axis=1, keepdims=True)).astype(np.float32)

    def chunks(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(vectors float32 [rows, 512], implant index of each row), CHUNK rows at a time, in order."""
        for number, start in enumerate(range(0, self.n, CHUNK)):
            of = self.implant_of[start : start + CHUNK]
            rng = np.random.default_rng([self.n, number])
            vectors = self.directions[of] + IMAGE_W * _unit(rng, len(of))
            vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
            yield vectors.astype(np.float32), of

    def best_per_implant(self) -> np.ndarray:
        """[implants, QUERIES] float64: each implant's best cosine with each query (brute force over
        every row, chunk by chunk; rows are sorted by implant, so each chunk folds with reduceat)."""
        best = np.full((self.implants, QUERIES), -np.inf)
        queries = self.queries.astype(np.float64).T
        for vectors, of in self.chunks():
            sims = vectors.astype(np.float64) @ queries
            present, starts = np.unique(of, return_index=True)
            best[present] = np.maximum(best[present], np.maximum.reduceat(sims, starts, axis=0))
        return best


def top_implants(best: np.ndarray, keep: np.ndarray, k: int = K) -> list[list[tuple[int, float]]]:
    """For each query (column of ``best``), the k best implants among ``keep`` (fewer if fewer
    exist), each with its best cosine."""
    kept = np.flatnonzero(keep)
    scores = best[kept]  # [kept implants, queries]
    order = np.argsort(-scores, axis=0, kind="stable")[:k]
    return [[(int(kept[i]), float(scores[i, q])) for i in order[:, q]] for q in range(best.shape[1])]


def shown_exactly(result: list[tuple[int, float]], truth: list[tuple[int, float]]) -> bool:
    """The list a dentist reads is the exact one: same implants, same order, each with the
    similarity of its best image (pgvector computes in float32: 1e-5)."""
    return [i for i, _ in result] == [i for i, _ in truth] and all(
        abs(similarity - (1 + cosine) / 2) < 1e-5 for (_, similarity), (_, cosine) in zip(result, truth, strict=True)
    )


FILTERS = {"none": None, "10 %": {"body_shape": "parallel"}, "1 %": {"level": "tissue"}}


def filter_mask(implants: int, name: str) -> np.ndarray:
    """Which implant indexes FILTERS[name] keeps (see the module docstring)."""
    index = np.arange(implants)
    return {"none": index >= 0, "10 %": index % 10 == 0, "1 %": index % 100 == 0}[name]


# Binary COPY (PostgreSQL's documented format): a signature, then per row the field count and each
# field as length + bytes in network order; pgvector's binary vector is int16 dim, int16 0, float4s.
COPY_COLUMNS = (
    "implant_id, image, source, content_hash, embedding, embedding_model, embedded_at, created_at, updated_at"
)
_IMAGE, _SOURCE, _MODEL = b"referencia/bench.png", b"catalog", MODEL_ID.encode()
_ROW = np.dtype(
    [
        ("fields", ">i2"),
        ("implant_len", ">i4"),
        ("implant", ">i8"),
        ("image_len", ">i4"),
        ("image", f"S{len(_IMAGE)}"),
        ("source_len", ">i4"),
        ("source", f"S{len(_SOURCE)}"),
        ("hash_len", ">i4"),  # content_hash: "" (length 0, no bytes)
        ("vector_len", ">i4"),
        ("dim", ">i2"),
        ("unused", ">i2"),
        ("vector", ">f4", (512,)),
        ("model_len", ">i4"),
        ("model", f"S{len(_MODEL)}"),
        ("embedded_len", ">i4"),
        ("embedded", ">i8"),
        ("created_len", ">i4"),
        ("created", ">i8"),
        ("updated_len", ">i4"),
        ("updated", ">i8"),
    ]
)
_SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" * 2
_TRAILER = b"\xff\xff"


def copy_rows(implant_ids: np.ndarray, vectors: np.ndarray, now_us: int) -> bytes:
    """The binary COPY rows of one chunk (``now_us``: microseconds since 2000-01-01 UTC)."""
    rows = np.zeros(len(vectors), dtype=_ROW)
    rows["fields"] = 9
    rows["implant_len"], rows["implant"] = 8, implant_ids
    rows["image_len"], rows["image"] = len(_IMAGE), _IMAGE
    rows["source_len"], rows["source"] = len(_SOURCE), _SOURCE
    rows["vector_len"], rows["dim"], rows["vector"] = 4 + 4 * 512, 512, vectors
    rows["model_len"], rows["model"] = len(_MODEL), _MODEL
    for field in ("embedded", "created", "updated"):
        rows[f"{field}_len"], rows[field] = 8, now_us
    return rows.tobytes()


def load(catalogue: Catalogue) -> tuple[list[int], float]:
    """Fill the scratch database (no HNSW index yet); return (implant ids by index, load s)."""
    from django.db import connection

    from implants.models import Implant, Manufacturer, ReferenceImage

    table_name = ReferenceImage._meta.db_table
    with connection.cursor() as cur:
        cur.execute(f"TRUNCATE {table_name}, {Implant._meta.db_table}, {Manufacturer._meta.db_table} CASCADE")
        cur.execute("DROP INDEX IF EXISTS refimage_embedding_hnsw")  # built after the load: much faster
        cur.execute(f"ALTER TABLE {table_name} SET (autovacuum_enabled = false)")  # the load vacuums
    started = time.perf_counter()
    maker = Manufacturer.objects.create(name="Bench", slug="bench")
    implants = Implant.objects.bulk_create(
        (
            Implant(
                manufacturer=maker,
                name=f"bench {i}",
                connection="external_hex",
                body_shape="parallel" if i % 10 == 0 else "tapered",
                level="tissue" if i % 100 == 0 else "bone",
                thread_shape="v",
            )
            for i in range(catalogue.implants)
        ),
        batch_size=5_000,
    )
    ids = np.array([i.pk for i in implants], dtype=np.int64)
    now_us = int((time.time() - 946_684_800) * 1e6)  # PostgreSQL's epoch is 2000-01-01 UTC
    raw = connection.connection
    with raw.cursor() as cur:
        with cur.copy(f"COPY {table_name} ({COPY_COLUMNS}) FROM STDIN (FORMAT BINARY)") as copy:
            copy.write(_SIGNATURE)
            for vectors, of in catalogue.chunks():
                copy.write(copy_rows(ids[of], vectors, now_us))
            copy.write(_TRAILER)
        raw.commit()
    with connection.cursor() as cur:
        cur.execute(f"VACUUM ANALYZE {table_name}")
        cur.execute(f"ANALYZE {Implant._meta.db_table}")
    return [int(i) for i in ids], time.perf_counter() - started


def _postmaster():
    """The database server's processes (postmaster + backends and workers), found from ours."""
    import psutil
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute("SELECT pg_backend_pid()")
        backend = psutil.Process(cur.fetchone()[0])
    postmaster = backend.parent()
    return postmaster


def _memory(postmaster, *, pss: bool) -> float:
    """Summed RSS (shared buffers counted in each process, as earlier runs printed) or PSS (shared
    pages split between the processes mapping them: what the server really holds), MB."""
    import psutil

    total = 0
    for p in [postmaster, *postmaster.children(recursive=True)]:
        try:
            total += p.memory_full_info().pss if pss else p.memory_info().rss
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return total / 1e6


def server_rss_mb() -> float:
    """Resident memory of the database server's processes (postmaster + backends), MB."""
    return _memory(_postmaster(), pss=False)


class PeakMemory:
    """Samples the server's summed RSS and PSS every half second in a thread; keeps the peaks."""

    def __init__(self) -> None:
        self.postmaster = _postmaster()
        self.rss = self.pss = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while True:
            self.rss = max(self.rss, _memory(self.postmaster, pss=False))
            self.pss = max(self.pss, _memory(self.postmaster, pss=True))
            if self._stop.wait(0.5):
                return

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def maintenance_work_mem_mb(n: int) -> int:
    return max(256, -(-n * GRAPH_BYTES_PER_VECTOR // 1024**2))


def build_index(m: int, ef_construction: int, n: int) -> dict:
    """(Re)build the HNSW index with these parameters; return build s, index bytes, the server's
    peak memory during the build and pgvector's notices (e.g. the graph outgrew memory)."""
    from django.db import connection

    notices: list[str] = []
    raw = connection.connection

    def keep(diagnostic) -> None:
        notices.append(diagnostic.message_primary or "")

    with connection.cursor() as cur:
        cur.execute("DROP INDEX IF EXISTS refimage_embedding_hnsw")
        cur.execute(f"SET maintenance_work_mem = '{maintenance_work_mem_mb(n)}MB'")
        # pgvector builds in parallel: the leader and one worker on this 2-core machine (more
        # workers than cores only add switching).
        workers = min(2, max(0, (os.cpu_count() or 1) - 1))
        cur.execute("SET max_parallel_maintenance_workers = %s", [workers])
        raw.add_notice_handler(keep)
        try:
            with PeakMemory() as peak:
                started = time.perf_counter()
                cur.execute(
                    "CREATE INDEX refimage_embedding_hnsw ON implants_referenceimage USING hnsw"
                    f" (embedding vector_cosine_ops) WITH (m = {int(m)}, ef_construction = {int(ef_construction)})"
                )
                built = time.perf_counter() - started
        finally:
            raw.remove_notice_handler(keep)
        cur.execute("SELECT pg_relation_size('refimage_embedding_hnsw'), pg_relation_size('implants_referenceimage')")
        size, heap = cur.fetchone()
        cur.execute("RESET maintenance_work_mem")
        cur.execute("RESET max_parallel_maintenance_workers")
        cur.execute("ANALYZE implants_referenceimage")
    for notice in notices:
        print(f"  pgvector: {notice}", flush=True)
    return {
        "build_s": built,
        "index_bytes": size,
        "heap_bytes": heap,
        "peak_rss_mb": peak.rss,
        "peak_pss_mb": peak.pss,
        "maintenance_work_mem_mb": maintenance_work_mem_mb(n),
        "workers": workers,
        "notices": notices,
    }


def run_queries(queries: np.ndarray, *, ef_search: int | None, exact: bool, implant_filter: dict | None):
    from matching.search import nearest_implants

    times, results = [], []
    for q in queries:
        as_list = q.tolist()
        t = time.perf_counter()
        hits = nearest_implants(
            as_list, model_id=MODEL_ID, k=K, ef_search=ef_search, exact=exact, implant_filter=implant_filter
        )
        times.append((time.perf_counter() - t) * 1000)
        results.append([(h.implant_id, h.similarity) for h in hits])
    return times, results


def chosen_plan(query: np.ndarray, implant_filter: dict | None, ef: int) -> str:
    """What the planner picks for the search's index query: "HNSW" or "exact" (seq scan + sort)."""
    from django.db import connection

    from matching import search

    if implant_filter and search.filtered_rows(MODEL_ID, implant_filter) <= search.EXACT_MAX_ROWS:
        return "exact (filter)"  # the search's own rule, before any planner
    qs = search._queryset(search.distance_to(query.tolist()), MODEL_ID, implant_filter, [])
    sql, params = qs[: search.candidate_limit(K, search.images_per_implant(MODEL_ID))].query.sql_with_params()
    with connection.cursor() as cur:
        cur.execute(
            f"SET LOCAL hnsw.iterative_scan = relaxed_order; SET LOCAL hnsw.ef_search = {ef}; EXPLAIN {sql}", params
        )
        while cur.description is None:
            cur.nextset()
        text = "\n".join(row[0] for row in cur.fetchall())
    return "HNSW" if "refimage_embedding_hnsw" in text else "exact"


def _setting(name: str) -> str:
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute(f"SHOW {name}")
        return cur.fetchone()[0]


def disk_check(n: int) -> str | None:
    """Why the server's disk cannot take ``n`` vectors (None when it can)."""
    need = n * DISK_BYTES_PER_VECTOR + DISK_SLACK
    free = shutil.disk_usage(_setting("data_directory")).free
    if free < need:
        return f"{free / 1e9:.1f} GB free on the database's disk, {need / 1e9:.1f} GB needed for {n:,} vectors"
    return None


def estimate_seconds(n: int) -> float:
    """A rough duration of one size on a quiet 2-core machine (load, ground truth, build, queries),
    from the runs at 2-5 x 10^4 and 10^5 (build ~ n^1.2); for `make bench`'s opening estimate."""
    load = 6e-5 * n
    truth = 2.5e-5 * n
    build = 3.3e-4 * n * (n / 1e5) ** 0.2
    queries = len(FILTERS) * (QUERIES + 5) * (0.002 + 1e-7 * n)
    exact = (EXACT_QUERIES + 5) * 3e-6 * n if n <= EXACT_UP_TO else 0.0
    return load + truth + build + queries + exact


def main(
    sizes=DEFAULT_SIZES, grid=None, ef_values=None, filters=True, exact_up_to: int = EXACT_UP_TO
) -> dict[str, object]:
    """Print the tables; return the figures: ``rows`` (one dict per table row), ``sizes`` (per
    size: load, build, index size, memory), ``skipped`` (sizes not run, with why) and ``text``."""
    setup_django()
    from django.core.management import call_command
    from django.db import connection

    from matching import search
    from matching.search import EF_SEARCH, MAX_EF_SEARCH, candidate_limit, forget_images_per_implant, images_per_implant

    grid = grid or [(M, EF_CONSTRUCTION)]
    ef_values = ef_values or [EF_SEARCH]
    original = connection.settings_dict["NAME"]
    scratch_database(DB)
    connection.close()
    connection.settings_dict["NAME"] = DB
    rows_out: list[list[str]] = []
    figures: list[dict[str, object]] = []
    per_size: dict[int, dict[str, object]] = {}
    skipped: dict[int, str] = {}

    def measure(label, n, truth_by_filter, queries, ef, exact, build, names):
        for name in names:
            asked = queries if not exact else queries[:EXACT_QUERIES]
            run_queries(asked[:5], ef_search=ef, exact=exact, implant_filter=FILTERS[name])  # warm
            times, results = run_queries(asked, ef_search=ef, exact=exact, implant_filter=FILTERS[name])
            truth = truth_by_filter[name][: len(asked)]
            # A filter may keep fewer than K implants (1 % of 50): recall over what exists.
            pairs = list(zip(results, truth, strict=True))
            recall = float(np.mean([len({i for i, _ in r} & {i for i, _ in t_}) / len(t_) for r, t_ in pairs]))
            exactly = float(np.mean([shown_exactly(r, t_) for r, t_ in pairs]))
            chosen = "-" if exact else chosen_plan(queries[0], FILTERS[name], ef)
            limit = candidate_limit(K, images_per_implant(MODEL_ID))
            ef_used = None if exact else min(MAX_EF_SEARCH, max(ef, limit))  # never below the LIMIT
            p50, p95 = percentile(times, 50), percentile(times, 95)
            figures.append(
                {
                    "n": n,
                    "index": label,
                    "filter": name,
                    "ef_search": ef_used,
                    "planner": chosen,
                    "queries": len(asked),
                    "p50_ms": p50,
                    "p95_ms": p95,
                    "recall": recall,
                    "shown_exactly": exactly,
                    **({"build_s": build["build_s"], "index_bytes": build["index_bytes"]} if build else {}),
                }
            )
            build_cell = f"{build['build_s']:.1f} s (load {build['load_s']:.1f} s)" if build else "-"
            size_cell = f"{build['index_bytes'] / 1e6:.1f} MB" if build else "-"
            rows_out.append(
                [
                    f"{n:,}",
                    label,
                    name,
                    "-" if ef_used is None else str(ef_used),
                    chosen,
                    f"{p50:.2f}",
                    f"{p95:.2f}",
                    f"{recall:.3f}",
                    f"{exactly:.3f}",
                    build_cell,
                    size_cell,
                ]
            )
            print(rows_out[-1], flush=True)
            build = None  # build time and size on the first row of a build only

    try:
        call_command("migrate", verbosity=0)
        print(
            f"search bench: shared_buffers {_setting('shared_buffers')}, server {_setting('server_version')},"
            f" sizes {', '.join(f'{n:,}' for n in sizes)}",
            flush=True,
        )
        for n in sizes:
            short = disk_check(n)
            if short:
                print(f"n={n:,}: SKIPPED, {short}", flush=True)
                skipped[n] = short
                continue
            started = time.perf_counter()
            print(f"n={n:,}: load average {os.getloadavg()[0]:.2f}, generating and loading ...", flush=True)
            catalogue = Catalogue(n)
            ids, loaded = load(catalogue)
            forget_images_per_implant()
            t = time.perf_counter()
            best = catalogue.best_per_implant()
            names = list(FILTERS) if filters else ["none"]
            truth_by_filter = {
                name: [
                    [(ids[i], cosine) for i, cosine in top]
                    for top in top_implants(best, filter_mask(catalogue.implants, name))
                ]
                for name in names
            }
            truth_s = time.perf_counter() - t
            del best
            crowded = int(np.bincount(catalogue.implant_of).max())
            print(
                f"n={n:,}: {catalogue.implants:,} implants, most images {crowded}, load {loaded:.1f} s,"
                f" numpy ground truth {truth_s:.1f} s, LIMIT {candidate_limit(K, images_per_implant(MODEL_ID))}",
                flush=True,
            )
            size = per_size[n] = {"load_s": loaded, "truth_s": truth_s, "implants": catalogue.implants}
            for m, ef_construction in grid:
                build = build_index(m, ef_construction, n)
                build["load_s"] = loaded
                if (m, ef_construction) == (M, EF_CONSTRUCTION) or "build_s" not in size:
                    size.update({k: v for k, v in build.items() if k != "load_s"})
                print(
                    f"n={n:,}: HNSW m={m} efc={ef_construction} built in {build['build_s']:.1f} s"
                    f" (maintenance_work_mem {build['maintenance_work_mem_mb']} MB, {build['workers']} worker),"
                    f" index {build['index_bytes'] / 1e6:.1f} MB, heap {build['heap_bytes'] / 1e6:.1f} MB,"
                    f" server peak RSS {build['peak_rss_mb']:.0f} MB / PSS {build['peak_pss_mb']:.0f} MB",
                    flush=True,
                )
                label = f"HNSW m={m} efc={ef_construction}"
                for ef in ef_values:
                    measure(label, n, truth_by_filter, catalogue.queries, ef, False, build, names)
                    build = None
                # Baseline: the same scan without the exact rescoring of the implants it finds
                # (matching/search.py, RESCORE_FACTOR), unfiltered: what the rescoring costs and buys.
                rescore = search.RESCORE_FACTOR
                search.RESCORE_FACTOR = 0
                try:
                    baseline = f"{label}, index order"
                    measure(baseline, n, truth_by_filter, catalogue.queries, ef_values[0], False, None, ["none"])
                finally:
                    search.RESCORE_FACTOR = rescore
            if n <= exact_up_to:
                measure("exact", n, truth_by_filter, catalogue.queries, None, True, None, names)
            size["rss_mb"] = server_rss_mb()
            size["pss_mb"] = _memory(_postmaster(), pss=True)
            size["seconds"] = time.perf_counter() - started
            print(
                f"n={n:,}: database server RSS {size['rss_mb']:.0f} MB (PSS {size['pss_mb']:.0f} MB);"
                f" size done in {size['seconds']:.0f} s, load average {os.getloadavg()[0]:.2f}",
                flush=True,
            )
            del catalogue
    finally:
        connection.close()
        connection.settings_dict["NAME"] = original
        drop_database(DB)
    text = table(
        f"Search: nearest_implants, top-{K} implants, {QUERIES} queries ({EXACT_QUERIES} for exact) "
        "(targets at 10^5: p95 <= 5 ms, recall@3 >= 0.995; filtered p95 <= 10 ms, recall@3 >= 0.99)",
        [
            "vectors",
            "index",
            "filter keeps",
            "ef_search",
            "planner",
            "p50 ms",
            "p95 ms",
            "recall@3",
            "shown exactly",
            "index build",
            "index size",
        ],
        rows_out,
    )
    memory_rows = [
        [
            f"{n:,}",
            f"{s['load_s']:.1f} s",
            f"{s['build_s']:.1f} s" if "build_s" in s else "-",
            f"{s['index_bytes'] / 1e6:.1f} MB" if "index_bytes" in s else "-",
            f"{s['heap_bytes'] / 1e6:.1f} MB" if "heap_bytes" in s else "-",
            f"{s['maintenance_work_mem_mb']} MB" if "maintenance_work_mem_mb" in s else "-",
            f"{s['peak_rss_mb']:.0f} / {s['peak_pss_mb']:.0f} MB" if "peak_rss_mb" in s else "-",
            f"{s['rss_mb']:.0f} / {s['pss_mb']:.0f} MB",
            f"{s['seconds']:.0f} s",
        ]
        for n, s in per_size.items()
    ]
    text += "\n" + table(
        "Search: load, build and memory per size (database server: summed RSS, shared buffers counted in"
        " each process / PSS, shared pages split)",
        [
            "vectors",
            "load (COPY + VACUUM)",
            "HNSW build",
            "index size",
            "table size",
            "maintenance_work_mem",
            "server peak in build RSS / PSS",
            "server after queries RSS / PSS",
            "whole size",
        ],
        memory_rows,
    )
    return {"rows": figures, "sizes": per_size, "skipped": skipped, "text": text}


def _parse(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sizes", nargs="*", type=int, default=list(DEFAULT_SIZES))
    parser.add_argument("--grid", default="", help="m:ef_construction pairs, e.g. 16:64,16:128")
    parser.add_argument("--ef", default="", help="hnsw.ef_search values, e.g. 40,100")
    parser.add_argument("--no-filters", action="store_true")
    parser.add_argument("--exact-up-to", type=int, default=EXACT_UP_TO, help="exact-scan rows up to this size")
    args = parser.parse_args(argv)
    grid = [tuple(int(x) for x in pair.split(":")) for pair in args.grid.split(",") if pair]
    ef_values = [int(x) for x in args.ef.split(",") if x]
    return tuple(args.sizes), grid or None, ef_values or None, not args.no_filters, args.exact_up_to


if __name__ == "__main__":
    sizes, grid, ef_values, filters, exact_up_to = _parse()
    main(sizes, grid, ef_values, filters, exact_up_to)
