"""Nearest reference implants for an embedding: pgvector HNSW, cosine distance.

Every query against the vector index lives here. It needs pgvector 0.8 (``raiox.checks`` refuses
older): the search is the ORM's ``CosineDistance`` ordering over ``ReferenceImage`` (pgvector-python's
documented way), every filter in the same WHERE clause (embedding model, active implant,
refine-by-features, rejected implants), and the HNSW index scanned *iteratively*
(``hnsw.iterative_scan``): when the filters throw rows away the index keeps walking until the LIMIT
is met, instead of returning a short list as pgvector 0.6 did. There is no hand-made widening.

How the LIMIT is chosen. We want ``k`` distinct implants, but the index orders reference images and
one implant can own many of them (confirmed cases pile up on popular systems). When no implant has
more than ``m`` eligible images, any ``(k - 1) * m + 1`` rows hold at least ``k`` implants
(pigeonhole), so one scan of that many rows always answers; ``m`` is read with one GROUP BY and
cached per process for a few minutes. That bound is for the worst case (a crowded implant filling
the first rows); most queries find their ``k`` implants in far fewer rows and fetching rows is what
the index scan costs, so the search first asks for ``FIRST_CANDIDATES`` rows and widens to the
pigeonhole LIMIT only when those hold fewer than ``RESCORE_FACTOR * k`` implants (a second round
trip). Any prefix of rows in exact distance order gives the right top ``k`` implants as soon as it
holds ``k`` of them (an implant not in the prefix has every image farther away), so a short first
scan, a stale ``m`` or a scan cut short can only make the list short, never wrong -- up to what
HNSW, an approximate index, misses (recall, measured in bench/search.py). The index's order is only
nearly exact (``relaxed_order``, below), so a short scan is trusted only when it holds twice the
implants asked for: the ``k``-th is then well inside it, not at its edge, where rows may have been
swapped across the cut (a test run once lost the 5th implant of a crowded family that way).

Exact order for what the index finds. HNSW may miss an implant's *best* image and hand back its
second best: the implant is found, but with a lower similarity than it has, and a near-tie with the
next implant comes out swapped (seen in CI: the 2nd and 3rd implants of a look-alike family in the
reverse of the exact scan's order; the graph's levels are drawn at random, so one build in many).
The dentist would see the wrong order, the wrong reference image and a confidence that depends on
the graph.
So the index only shortlists implants: the first ``RESCORE_FACTOR * k`` implants its rows hold are
rescored exactly over all their eligible images (through the implant btree, a few hundred rows),
folded by the database, in the same statement. Order, reference image and similarity of every
implant shown are then the exact ones; only which implants make the shortlist is approximate.
The ``relaxed_order`` scan (better recall and speed than ``strict_order``) may return rows slightly
out of order; ``MATERIALIZED`` keeps PostgreSQL from folding the shortlist's ``LIMIT`` into the
index scan, as pgvector's README shows.

One round trip on the hot path: the ``SET LOCAL`` lines and the statement go to the server as one
simple-query message (Django's psycopg cursor binds parameters on the client), which PostgreSQL runs
as one implicit transaction, so the settings last for this query only. (Called inside an outer
``transaction.atomic`` they last until that transaction ends; they only touch HNSW scans.) The
statement is compiled by the ORM once per search shape (model, filter, rejections, LIMIT, k) and
kept, with the query vector as its one changing parameter: compiling it was a fifth of the search.

``hnsw.ef_search`` is at least the pigeonhole LIMIT (and EF_SEARCH) even for the short first scan:
below it recall drops for the 2nd and 3rd implants, whose best images come after the crowded first
implant's in the index order, and more so as the catalogue grows (measured: see EF_SEARCH).

Exact scan, where and why:

- **The planner's choice.** For a small catalogue, or a filter it estimates as selective, PostgreSQL
  itself picks a scan + sort instead of the HNSW index (bench: at 10^3 rows always; at 10^4 and
  10^5 for a filter keeping 1 %). That is exact and the right plan there.
- **A selective refine-by-features filter** (``EXACT_MAX_ROWS``): the iterative scan must walk
  past every excluded neighbour, and when the kept rows lie far from the query (the dentist's
  features contradict the X-ray) it visits up to ``hnsw.max_scan_tuples`` tuples and its deep,
  relaxed walk loses recall; the planner's cost model (uniform selectivity) does not foresee this.
  So a filter keeping at most ``EXACT_MAX_ROWS`` rows (counted once per feature combination and
  cached) is answered exactly, folded in the database (``DISTINCT ON``), through the implant btree.
  Larger filters keep enough rows near any query for the index. Refinement is a dentist's second
  request, not the hot path; rejected implants are few and stay on the index path.
- **A short list.** When the index hands back fewer than ``k`` implants (fewer exist, or the scan
  stopped at ``hnsw.max_scan_tuples``), the exact query answers; only an exact scan knows whether
  more exist.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from django.conf import settings
from django.db import connection
from django.db.models import Count, Value
from django.db.models.expressions import RawSQL
from pgvector import Vector
from pgvector.django import CosineDistance

from implants.models import ReferenceImage

# hnsw.ef_search: the index's candidate list (recall vs time), at least the pigeonhole LIMIT (which
# grows with the most crowded implant, so with the catalogue) and at least EF_SEARCH. Chosen by
# measurement (bench/search.py, bench/RESULTS.md "issue 15"), m=16, ef_construction=128, fetching
# 64 rows: at 10^5 vectors ef 100-200 gave recall@3 0.990, the LIMIT (271) 1.000; at 10^6 ef 100
# gave 0.900, 400 0.990, the LIMIT (527) 1.000.
EF_SEARCH = 100
MAX_EF_SEARCH = 1000  # pgvector's upper bound (past it the iterative scan continues anyway)
# hnsw.max_scan_tuples: how many index tuples an iterative scan may visit before it gives up
# (pgvector's default is 20,000). Past it the list is short and the exact scan answers.
MAX_SCAN_TUPLES = 20_000
MIN_CANDIDATES = 10
# The first scan's LIMIT: enough rows to hold RESCORE_FACTOR * k implants for most queries (bench:
# at 10^5, 5,000 implants, up to 135 images each, every query found its 3 implants in 64 rows);
# fetching and re-sorting the pigeonhole LIMIT's rows was most of the search's time (10^5, same
# ef_search: p95 10.5 -> 6.7 ms).
FIRST_CANDIDATES = 64
# A refine-by-features filter keeping at most this many reference images is answered by an exact
# scan of those rows (through the implant btree): ~35 ms for 10^4 rows on the loaded 2-core
# machine, exact; the iterative HNSW scan for a filter that keeps 10 % of 10^5 rows far from the
# query took 150 ms there for recall 0.92 (bench/RESULTS.md, issue 15).
EXACT_MAX_ROWS = 20_000
# How many of the implants the index scan finds are rescored exactly, per implant asked for: the
# first RESCORE_FACTOR * k by the index's own (approximate) order. Costs ~0.3 ms of SQL per search
# at 10^5 (bench/search.py measures it beside the index's own order: 0 turns the rescoring off,
# the benchmark's baseline).
RESCORE_FACTOR = 2

# How long a process trusts its count of reference images per implant (see images_per_implant).
PER_IMPLANT_TTL_SECONDS = 300.0

_per_implant: dict[str, tuple[float, int]] = {}
_per_implant_lock = threading.Lock()


def candidate_limit(k: int, per_implant: int = 0) -> int:
    """Rows to ask the index for: with at most ``per_implant`` images per implant,
    ``(k - 1) * per_implant + 1`` rows always hold ``k`` implants (pigeonhole)."""
    return max(MIN_CANDIDATES, k, (k - 1) * per_implant + 1)


def images_per_implant(model_id: str) -> int:
    """The most searchable reference images any active implant has for ``model_id`` (cached)."""
    now = time.monotonic()
    cached = _per_implant.get(model_id)
    if cached is not None and now - cached[0] < PER_IMPLANT_TTL_SECONDS:
        return cached[1]
    most = (
        ReferenceImage.objects.filter(embedding_model=model_id, implant__is_active=True, embedding__isnull=False)
        .values("implant_id")
        .annotate(n=Count("id"))
        .order_by("-n")
        .values_list("n", flat=True)
        .first()
    ) or 0
    with _per_implant_lock:
        _per_implant[model_id] = (now, most)
    return most


def filtered_rows(model_id: str, implant_filter: dict) -> int:
    """How many searchable reference images ``implant_filter`` keeps (cached like
    images_per_implant: a handful of feature combinations exist)."""
    key = f"{model_id}|{sorted(implant_filter.items())}"
    now = time.monotonic()
    cached = _per_implant.get(key)
    if cached is not None and now - cached[0] < PER_IMPLANT_TTL_SECONDS:
        return cached[1]
    count = ReferenceImage.objects.filter(
        embedding_model=model_id,
        implant__is_active=True,
        embedding__isnull=False,
        **{f"implant__{field}": value for field, value in implant_filter.items()},
    ).count()
    with _per_implant_lock:
        _per_implant[key] = (now, count)
    return count


def forget_images_per_implant() -> None:
    """Drop the cached counts (after a bulk load, e.g. in the benchmark)."""
    with _per_implant_lock:
        _per_implant.clear()


@dataclass(frozen=True)
class ImplantHit:
    implant_id: int
    reference_image_id: int
    similarity: float  # 0-1: 1 - cosine distance / 2


def similarity_from_distance(distance: float) -> float:
    """Cosine distance (0..2) to a 0-1 similarity."""
    return max(0.0, min(1.0, 1.0 - float(distance) / 2.0))


def _fold(rows: Iterable[tuple[int, int, float]], k: int) -> list[ImplantHit]:
    """Rows sorted by distance -> the best row of each implant, first k implants."""
    hits: list[ImplantHit] = []
    seen: set[int] = set()
    for reference_id, implant_id, distance in rows:
        if implant_id in seen:
            continue
        seen.add(implant_id)
        hits.append(ImplantHit(implant_id, reference_id, similarity_from_distance(distance)))
        if len(hits) == k:
            break
    return hits


def distance_to(embedding: Sequence[float]) -> CosineDistance:
    """The cosine distance to ``embedding`` as an expression."""
    return CosineDistance("embedding", list(embedding))


def _scored(qs, distance: CosineDistance):
    """(id, implant_id, distance) rows of ``qs``, nearest first."""
    return qs.annotate(distance=distance).order_by("distance").values_list("id", "implant_id", "distance")


def _searchable_rows(model_id: str):
    """The rule for a row that can be searched at all: embedded by this model (the implant-level
    rules -- active, refine filter, rejections -- are _queryset's)."""
    return ReferenceImage.objects.filter(embedding_model=model_id, embedding__isnull=False)


def _queryset(distance: CosineDistance, model_id: str, implant_filter: dict | None, exclude_implants: list[int]):
    qs = _searchable_rows(model_id).filter(implant__is_active=True)
    if implant_filter:
        qs = qs.filter(**{f"implant__{key}": value for key, value in implant_filter.items()})
    if exclude_implants:
        qs = qs.exclude(implant_id__in=exclude_implants)
    return _scored(qs, distance)


def _one_round_trip(settings_sql: str, sql: str, params) -> list[tuple[int, int, float]]:
    """``SET LOCAL`` lines and a query sent as one message: one implicit transaction, so the
    settings hold for this query only (see the module docstring)."""
    with connection.cursor() as cursor:
        cursor.execute(f"{settings_sql} {sql}", params)
        while cursor.description is None:  # skip the SETs' empty results
            cursor.nextset()
        return cursor.fetchall()


def _best_per_implant(qs, k: int) -> tuple[str, tuple]:
    """SQL for the best row of each implant ``qs`` keeps, nearest first, at most ``k``: the
    database folds (``DISTINCT ON``), so only ``k`` rows come back however many it scores. The
    inner query has no ``ORDER BY distance``, the only order an HNSW index can give, so the planner
    cannot pick the approximate index; it uses the implant btree for a short list of implants."""
    sql, params = qs.order_by().query.sql_with_params()
    # sql is the ORM's own compiled query; every value in it is a bound parameter.
    return (
        f"SELECT * FROM (SELECT DISTINCT ON (implant_id) * FROM ({sql}) AS scored"  # noqa: S608
        f" ORDER BY implant_id, distance, id) AS best ORDER BY distance, id LIMIT {int(k)}",
        params,
    )


# Stands for the query vector in a compiled index statement (see _index_statement).
_PLACEHOLDER = Vector([0.125]).to_text()


@functools.lru_cache(maxsize=256)
def _index_statement(
    model_id: str, implant_filter: tuple, exclude_implants: tuple, limit: int, k: int, rescore: int
) -> tuple[str, tuple]:
    """The index statement, compiled by the ORM once per search shape and kept: compiling it
    (two querysets) was ~1 ms of a ~5 ms search at 10^5. The query vector is a placeholder
    parameter that ``_index_rows`` swaps for the real one; everything else is the ORM's.

    It returns the first ``rescore * k`` implants the HNSW index finds in its first ``limit``
    rows, each with its exact best row, nearest first (see "Exact order for what the index finds"
    in the module docstring); with ``rescore`` 0, the index's own rows (the benchmark's baseline)."""
    distance = CosineDistance("embedding", Value(_PLACEHOLDER))
    qs = _queryset(distance, model_id, dict(implant_filter), list(exclude_implants))
    scan, scan_params = qs[:limit].query.sql_with_params()
    if rescore <= 0:
        # scan is the ORM's own compiled query; every value in it is a bound parameter.
        return f"WITH candidates AS MATERIALIZED ({scan}) SELECT * FROM candidates ORDER BY distance, id", scan_params  # noqa: S608
    # The shortlisted implants passed the implant-level rules in the scan, so the rescoring needs
    # only the row-level ones; without the join to implants the planner drives it from the
    # shortlist through the implant btree (with it, it scanned and sorted the implant table).
    shortlisted = _searchable_rows(model_id).filter(implant_id__in=RawSQL("SELECT implant_id FROM shortlist", ()))
    rescored, rescored_params = _best_per_implant(_scored(shortlisted, distance), rescore * k)
    return (
        # Both are the ORM's own compiled queries; every value in them is a bound parameter.
        f"WITH candidates AS MATERIALIZED ({scan}),"  # noqa: S608
        " shortlist AS MATERIALIZED (SELECT implant_id FROM candidates GROUP BY implant_id"
        f" ORDER BY min(distance), implant_id LIMIT {int(rescore * k)}) {rescored}",
        (*scan_params, *rescored_params),
    )


def _index_rows(
    vector: str,
    model_id: str,
    implant_filter: dict | None,
    exclude_implants: list[int],
    *,
    limit: int,
    ef_search: int,
    k: int,
) -> list[tuple[int, int, float]]:
    """``_index_statement`` for ``vector`` (pgvector's text form), run with its HNSW settings."""
    sql, params = _index_statement(
        model_id,
        tuple(sorted((implant_filter or {}).items())),
        tuple(sorted(set(exclude_implants))),
        limit,
        k,
        RESCORE_FACTOR,
    )
    return _one_round_trip(
        "SET LOCAL hnsw.iterative_scan = relaxed_order;"
        f" SET LOCAL hnsw.ef_search = {int(ef_search)};"
        f" SET LOCAL hnsw.max_scan_tuples = {int(MAX_SCAN_TUPLES)};",
        sql,
        tuple(vector if param == _PLACEHOLDER else param for param in params),
    )


def _exact_rows(qs, k: int) -> list[tuple[int, int, float]]:
    """The best row of each of the ``k`` nearest implants by exact distance (no index)."""
    sql, params = _best_per_implant(qs, k)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def nearest_implants(
    embedding: Sequence[float],
    *,
    model_id: str,
    k: int | None = None,
    implant_filter: dict | None = None,
    exclude_implants: Iterable[int] = (),
    ef_search: int | None = None,
    exact: bool = False,
) -> list[ImplantHit]:
    """The top-k implants (one row each, best similarity) for ``embedding`` among active implants
    whose reference images were embedded by ``model_id``, matching ``implant_filter`` (Implant field
    lookups), never one of ``exclude_implants``. ``exact=True`` skips the index (a reference for
    tests and the benchmark); ``ef_search`` overrides EF_SEARCH (the benchmark's sweep)."""
    k = k or settings.RAIOX_TOP_K
    exclude_implants = list(exclude_implants)
    if implant_filter and filtered_rows(model_id, implant_filter) <= EXACT_MAX_ROWS:
        exact = True  # a selective refine filter: exact over its rows is quicker and exact
    if not exact:
        full = candidate_limit(k, images_per_implant(model_id))
        # The common case first (see "How the LIMIT is chosen"): a short scan, widened only when
        # its rows hold fewer than RESCORE_FACTOR * k implants.
        # ef_search stays at least the pigeonhole LIMIT for both scans: it is what recall needs as
        # the catalogue grows (see EF_SEARCH); fetching fewer rows is what saves the time.
        ef = min(MAX_EF_SEARCH, max(full, ef_search or EF_SEARCH))
        vector = Vector(list(embedding)).to_text()
        for limit in sorted({min(full, FIRST_CANDIDATES), full}):
            rows = _index_rows(vector, model_id, implant_filter, exclude_implants, limit=limit, ef_search=ef, k=k)
            hits = _fold(rows, k)
            # A short scan is trusted only when it holds RESCORE_FACTOR * k implants: the k-th is
            # then well inside it, not at its edge, where the relaxed order may have swapped rows
            # across the cut (a test run once lost the 5th implant that way).
            if len(hits) == k and (limit == full or len({row[1] for row in rows}) >= RESCORE_FACTOR * k):
                return hits
    return _fold(_exact_rows(_queryset(distance_to(embedding), model_id, implant_filter, exclude_implants), k), k)


def nearest_implants_exact(
    embedding: Sequence[float],
    *,
    model_id: str,
    k: int,
    exclude_references: Iterable[int] = (),
) -> list[ImplantHit]:
    """The top-k implants by an exact scan, leaving out some reference images (evaluation: a
    reference image queried against the others, a confirmed case against the catalogue without the
    reference image it became). Same filters and fold as ``nearest_implants``."""
    qs = _queryset(distance_to(embedding), model_id, None, []).exclude(pk__in=list(exclude_references))
    return _fold(_exact_rows(qs, k), k)
