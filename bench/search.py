"""Search latency p50/p95 and recall@3 (implants, folded) against an exact scan, for 10^3 to 10^6
synthetic 512-d vectors: HNSW build parameters (m, ef_construction: build time, index size) and
``hnsw.ef_search``, unfiltered and filtered (refine-by-features keeping ~10 % and ~1 % of the rows).

Usage: ``python -m bench.search [N ...] [--grid M:EFC,M:EFC] [--ef 40,100] [--filters]``
(defaults: 10^3, 10^4, 10^5; the migration's parameters; the search's EF_SEARCH; filters on).

It times the real ``matching.search.nearest_implants`` (Django ORM, the HNSW index, iterative index
scans, folding, the exact fallback) in a scratch database (``raiox_bench_search``, migrated, then
filled with implants and reference images), so the bench cannot drift from the search it measures.
The "exact" rows run the same call with ``exact=True`` (index scans off, PostgreSQL folds): recall
must be 1.000 (it checks the numpy reference). Recall@3 = the share of the exact top-3 implants
(numpy brute force over the same rows: one model, active implants matching the filter, the best
image of each implant) that the search returned.

Synthetic catalogue (why this shape): a real one lists hundreds to a few thousand implant systems,
each with a handful of catalogue images, and grows with confirmed cases (a dentist confirms the
implant, the X-ray becomes a reference image), which pile up on the popular systems. So:

- ``n / 20`` implants (50, 500, 5,000): at 10^5 vectors a large catalogue with a long history;
- each implant has 3-8 catalogue images; the rest of the ``n`` rows are confirmed cases spread
  with a mild popularity skew (weight ~ 1 / rank^0.3: the most common system has ~7x the mean),
  and queries are drawn with the same popularity;
- geometry: every radiograph shares a large common component (CLIP sees all X-rays as alike), an
  implant's images lie around the implant's direction, and implants come in look-alike families
  of 10 (one manufacturer's line): cosine ~0.92 within an implant, ~0.77 between family members,
  ~0.45 otherwise. The 2nd and 3rd implants are then the query's look-alikes, as in real use;
  isotropic noise would make them random far-away points, whose order means nothing to a dentist.

Filters: every 10th implant is ``parallel`` (body shape) and every 100th is at ``tissue`` level, so
``{"body_shape": "parallel"}`` keeps ~10 % of the rows and ``{"level": "tissue"}`` ~1 %; the queries
are the same (drawn by popularity over all implants), so the kept rows are rarely the nearest ones:
the iterative index scan has to walk past most of the graph's neighbourhood to find them.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from bench.common import drop_database, percentile, scratch_database, setup_django, table

DB = "raiox_bench_search"
K = 3
QUERIES = 200
MODEL_ID = "bench/synthetic"
FAMILY = 10  # implants per look-alike family
# Weights of the shared, family, implant and image components (unit random directions).
COMMON, FAMILY_W, IMPLANT_W, IMAGE_W = 1.2, 1.0, 0.7, 0.5
SKEW = 0.3
# The HNSW parameters of implants' migration (refimage_embedding_hnsw).
M, EF_CONSTRUCTION = 16, 128


def _unit(rng: np.random.Generator, *shape: int) -> np.ndarray:
    v = rng.normal(size=(*shape, 512))
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def dataset(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(vectors float32 [n, 512], implant index of each vector, queries float32 [QUERIES, 512])."""
    implants = max(10, n // 20)
    common = _unit(rng)
    families = _unit(rng, implants // FAMILY + 1)
    directions = COMMON * common + FAMILY_W * families[np.arange(implants) // FAMILY] + IMPLANT_W * _unit(rng, implants)
    catalogue = np.minimum(rng.integers(3, 9, size=implants), max(1, n // implants))
    popularity = 1.0 / (1 + rng.permutation(implants)) ** SKEW
    popularity /= popularity.sum()
    confirmed = rng.multinomial(max(0, n - int(catalogue.sum())), popularity)
    implant_of = np.repeat(np.arange(implants), catalogue + confirmed)[:n]
    vectors = directions[implant_of] + IMAGE_W * _unit(rng, len(implant_of))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    asked = rng.choice(implants, size=QUERIES, p=popularity)
    queries = directions[asked] + IMAGE_W * _unit(rng, QUERIES)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    return vectors.astype(np.float32), implant_of, queries.astype(np.float32)


def exact(vectors: np.ndarray, implant_of: np.ndarray, q: np.ndarray, k: int = K) -> list[int]:
    """Brute force in float64: the best cosine of each implant, the k best implants."""
    sims = vectors.astype(np.float64) @ q.astype(np.float64)
    best = np.full(int(implant_of.max()) + 1, -np.inf)
    np.maximum.at(best, implant_of, sims)
    return [int(i) for i in np.argsort(-best, kind="stable")[:k]]


FILTERS = {"none": None, "10 %": {"body_shape": "parallel"}, "1 %": {"level": "tissue"}}


def filter_mask(implants: int, name: str) -> np.ndarray:
    """Which implant indexes FILTERS[name] keeps (see the module docstring)."""
    index = np.arange(implants)
    return {"none": index >= 0, "10 %": index % 10 == 0, "1 %": index % 100 == 0}[name]


def load(vectors: np.ndarray, implant_of: np.ndarray) -> tuple[list[int], float]:
    """Fill the scratch database (no HNSW index yet); return (implant ids by index, load s)."""
    from django.db import connection

    from implants.models import Implant, Manufacturer, ReferenceImage

    table_name = ReferenceImage._meta.db_table
    with connection.cursor() as cur:
        cur.execute(f"TRUNCATE {table_name}, {Implant._meta.db_table}, {Manufacturer._meta.db_table} CASCADE")
        cur.execute("DROP INDEX IF EXISTS refimage_embedding_hnsw")  # built after the load: much faster
    started = time.perf_counter()
    maker = Manufacturer.objects.create(name="Bench", slug="bench")
    implants = Implant.objects.bulk_create(
        Implant(
            manufacturer=maker,
            name=f"bench {i}",
            connection="external_hex",
            body_shape="parallel" if i % 10 == 0 else "tapered",
            level="tissue" if i % 100 == 0 else "bone",
            thread_shape="v",
        )
        for i in range(int(implant_of.max()) + 1)
    )
    ids = [i.pk for i in implants]
    raw = connection.connection
    with (
        raw.cursor() as cur,
        cur.copy(
            f"COPY {table_name} (implant_id, image, source, content_hash, embedding, embedding_model, embedded_at,"
            " created_at, updated_at) FROM STDIN"
        ) as copy,
    ):
        for index, v in zip(implant_of, vectors, strict=True):
            text = "[" + ",".join(f"{x:.8g}" for x in v) + "]"
            copy.write_row((ids[index], "referencia/bench.png", "catalog", "", text, MODEL_ID, "now", "now", "now"))
    with connection.cursor() as cur:
        cur.execute(f"ANALYZE {table_name}")
        cur.execute(f"ANALYZE {Implant._meta.db_table}")
    return ids, time.perf_counter() - started


def build_index(m: int, ef_construction: int) -> tuple[float, int]:
    """(Re)build the HNSW index with these parameters; return (build s, index bytes)."""
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute("DROP INDEX IF EXISTS refimage_embedding_hnsw")
        cur.execute("SET maintenance_work_mem = '2GB'")
        # The build uses parallel workers (pgvector 0.6+); the machine has few cores.
        cur.execute("SET max_parallel_maintenance_workers = %s", [max(0, (os.cpu_count() or 1) - 1)])
        started = time.perf_counter()
        cur.execute(
            "CREATE INDEX refimage_embedding_hnsw ON implants_referenceimage USING hnsw (embedding vector_cosine_ops)"
            f" WITH (m = {int(m)}, ef_construction = {int(ef_construction)})"
        )
        built = time.perf_counter() - started
        cur.execute("SELECT pg_relation_size('refimage_embedding_hnsw')")
        size = cur.fetchone()[0]
        cur.execute("ANALYZE implants_referenceimage")
    return built, size


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
        results.append([h.implant_id for h in hits])
    return times, results


def chosen_plan(query: np.ndarray, implant_filter: dict | None, ef: int) -> str:
    """What the planner picks for the search's index query: "HNSW" or "exact" (seq scan + sort)."""
    from django.db import connection

    from matching import search

    if implant_filter and search.filtered_rows(MODEL_ID, implant_filter) <= search.EXACT_MAX_ROWS:
        return "exact (filter)"  # the search's own rule, before any planner
    qs = search._queryset(query.tolist(), MODEL_ID, implant_filter, [])
    sql, params = qs[: search.candidate_limit(K, search.images_per_implant(MODEL_ID))].query.sql_with_params()
    with connection.cursor() as cur:
        cur.execute(
            f"SET LOCAL hnsw.iterative_scan = relaxed_order; SET LOCAL hnsw.ef_search = {ef}; EXPLAIN {sql}", params
        )
        while cur.description is None:
            cur.nextset()
        text = "\n".join(row[0] for row in cur.fetchall())
    return "HNSW" if "refimage_embedding_hnsw" in text else "exact"


def server_rss_mb() -> float:
    """Resident memory of the database server's processes (postmaster + backends), MB."""
    import psutil
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute("SELECT pg_backend_pid()")
        backend = psutil.Process(cur.fetchone()[0])
    postmaster = backend.parent()
    return sum(p.memory_info().rss for p in [postmaster, *postmaster.children()]) / 1e6


def main(sizes=(1_000, 10_000, 100_000), grid=None, ef_values=None, filters=True) -> str:
    setup_django()
    from django.core.management import call_command
    from django.db import connection

    from matching.search import EF_SEARCH, candidate_limit, forget_images_per_implant, images_per_implant

    grid = grid or [(M, EF_CONSTRUCTION)]
    ef_values = ef_values or [EF_SEARCH]
    original = connection.settings_dict["NAME"]
    scratch_database(DB)
    connection.close()
    connection.settings_dict["NAME"] = DB
    rows_out = []

    def measure(label, n, truth_by_filter, queries, ef, exact, build_cell, size_cell, names):
        for name in names:
            truth = truth_by_filter[name]
            asked = queries if not exact else queries[:50]  # the exact scan is slow at 10^5+
            run_queries(asked[:5], ef_search=ef, exact=exact, implant_filter=FILTERS[name])  # warm
            times, results = run_queries(asked, ef_search=ef, exact=exact, implant_filter=FILTERS[name])
            truth = truth[: len(asked)]
            # A filter may keep fewer than K implants (1 % of 50): recall over what exists.
            recall = np.mean([len(set(r) & set(t_)) / len(t_) for r, t_ in zip(results, truth, strict=True)])
            chosen = "-" if exact else chosen_plan(queries[0], FILTERS[name], ef)
            cells = [f"{percentile(times, 50):.2f}", f"{percentile(times, 95):.2f}", f"{recall:.3f}"]
            limit = candidate_limit(K, images_per_implant(MODEL_ID))
            ef_cell = "-" if exact else str(max(ef, limit))  # the search never goes below its LIMIT
            rows_out.append([f"{n:,}", label, name, ef_cell, chosen, *cells, build_cell, size_cell])
            print(rows_out[-1], flush=True)

    try:
        call_command("migrate", verbosity=0)
        for n in sizes:
            rng = np.random.default_rng(n)
            vectors, implant_of, queries = dataset(n, rng)
            ids, loaded = load(vectors, implant_of)
            forget_images_per_implant()
            implants = int(implant_of.max()) + 1
            names = list(FILTERS) if filters else ["none"]
            truth_by_filter = {}
            for name in names:
                keep = filter_mask(implants, name)[implant_of]
                sub_vectors, sub_of = vectors[keep], implant_of[keep]
                truth_by_filter[name] = [[ids[i] for i in exact(sub_vectors, sub_of, q)] for q in queries]
            crowded = int(np.bincount(implant_of).max())
            print(
                f"n={n:,}: {implants:,} implants, most images {crowded}, load {loaded:.1f} s,"
                f" LIMIT {candidate_limit(K, images_per_implant(MODEL_ID))}",
                flush=True,
            )
            for m, ef_construction in grid:
                built, size = build_index(m, ef_construction)
                for ef in ef_values:
                    measure(
                        f"HNSW m={m} efc={ef_construction}",
                        n,
                        truth_by_filter,
                        queries,
                        ef,
                        False,
                        f"{built:.1f} s (load {loaded:.1f} s)",
                        f"{size / 1e6:.1f} MB",
                        names,
                    )
            measure("exact", n, truth_by_filter, queries, None, True, "-", "-", names)
            print(f"n={n:,}: database server RSS {server_rss_mb():.0f} MB", flush=True)
    finally:
        connection.close()
        connection.settings_dict["NAME"] = original
        drop_database(DB)
    return table(
        f"Search: nearest_implants, top-{K} implants, {QUERIES} queries (50 for exact) "
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
            "index build",
            "index size",
        ],
        rows_out,
    )


def _parse(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sizes", nargs="*", type=int, default=[1_000, 10_000, 100_000])
    parser.add_argument("--grid", default="", help="m:ef_construction pairs, e.g. 16:64,16:128")
    parser.add_argument("--ef", default="", help="hnsw.ef_search values, e.g. 40,100")
    parser.add_argument("--no-filters", action="store_true")
    args = parser.parse_args(argv)
    grid = [tuple(int(x) for x in pair.split(":")) for pair in args.grid.split(",") if pair]
    ef_values = [int(x) for x in args.ef.split(",") if x]
    return tuple(args.sizes), grid or None, ef_values or None, not args.no_filters


if __name__ == "__main__":
    sizes, grid, ef_values, filters = _parse()
    main(sizes, grid, ef_values, filters)
