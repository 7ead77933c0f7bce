"""Nearest reference implants for an embedding: pgvector HNSW, cosine distance.

Every query against the vector index lives here. pgvector 0.6 uses the HNSW index only for
``ORDER BY distance LIMIT n`` and applies WHERE filters *after* the index scan, so a filtered query
can silently return too few rows. We therefore ask the index for a generous candidate list
(``hnsw.ef_search`` raised with ``SET LOCAL`` in the same transaction), filter, fold to one row per
implant, and fall back to an exact scan if the folded list is still short.

The candidate list is sized from the catalogue: when no implant has more than ``m`` reference
images, any ``(k - 1) * m + 1`` rows hold at least ``k`` distinct implants, so one index scan of
that size answers (no second, wider round). ``m`` is read with one GROUP BY and cached per process
for a few minutes; a stale value costs at most the widening round, never a wrong answer.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count
from pgvector.django import CosineDistance

from implants.models import ReferenceImage

# Reference images fetched per implant wanted: enough that filtered-out rows and several images
# of one implant still leave k distinct implants.
CANDIDATES_PER_RESULT = 20
MIN_CANDIDATES = 100
MAX_EF_SEARCH = 1000  # pgvector's upper bound for hnsw.ef_search


# How long a process trusts its count of reference images per implant (see images_per_implant).
PER_IMPLANT_TTL_SECONDS = 300.0

_per_implant: dict[str, tuple[float, int]] = {}
_per_implant_lock = threading.Lock()


def candidate_limits(k: int, per_implant: int = 0, excluded: int = 0) -> tuple[int, ...]:
    """Candidate list sizes to try in turn. With at most ``per_implant`` images per implant,
    ``(k - 1 + excluded) * per_implant + 1`` rows always hold ``k`` implants besides the
    ``excluded`` ones (pigeonhole)."""
    first = max(MIN_CANDIDATES, k * CANDIDATES_PER_RESULT, (k - 1 + excluded) * per_implant + 1)
    first = min(first, MAX_EF_SEARCH)
    return (first,) if first >= MAX_EF_SEARCH else (first, MAX_EF_SEARCH)


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


def _queryset(embedding: Sequence[float], model_id: str, implant_filter: dict | None, exclude_implants):
    qs = ReferenceImage.objects.filter(embedding_model=model_id, implant__is_active=True, embedding__isnull=False)
    if implant_filter:
        qs = qs.filter(**{f"implant__{key}": value for key, value in implant_filter.items()})
    if exclude_implants:
        qs = qs.exclude(implant_id__in=list(exclude_implants))
    return qs.annotate(distance=CosineDistance("embedding", list(embedding))).order_by("distance")


def nearest_implants(
    embedding: Sequence[float],
    *,
    model_id: str,
    k: int | None = None,
    implant_filter: dict | None = None,
    exclude_implants: Iterable[int] = (),
) -> list[ImplantHit]:
    """The top-k implants (one row each, best similarity) for ``embedding`` among active implants
    whose reference images were embedded by ``model_id``."""
    k = k or settings.RAIOX_TOP_K
    exclude_implants = list(exclude_implants)
    qs = _queryset(embedding, model_id, implant_filter, exclude_implants)
    hits: list[ImplantHit] = []
    # Many reference images of one implant can fill the whole candidate list: the first size
    # allows for the most crowded implant; filters (applied after the index scan) or a stale count
    # can still leave it short, so widen (the HNSW index still answers) before an exact scan.
    for limit in candidate_limits(k, images_per_implant(model_id), len(exclude_implants)):
        with transaction.atomic(), connection.cursor() as cursor:
            # SET LOCAL lasts until the end of this transaction, on this connection only.
            cursor.execute("SET LOCAL hnsw.ef_search = %s", [min(MAX_EF_SEARCH, limit)])
            rows = list(qs.values_list("id", "implant_id", "distance")[:limit])
        hits = _fold(rows, k)
        if len(hits) == k:
            return hits
    if len(hits) < k:
        # Too few distinct implants after the post-index filters (model id, active, features,
        # exclusions): only an exact scan knows whether more exist. Rare at scale; when the
        # catalogue really has fewer than k eligible implants it is small and the scan is cheap.
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET LOCAL enable_indexscan = off")
            rows = list(qs.values_list("id", "implant_id", "distance"))
        hits = _fold(rows, k)
    return hits


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
    qs = _queryset(embedding, model_id, None, ()).exclude(pk__in=list(exclude_references))
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_indexscan = off")
        rows = list(qs.values_list("id", "implant_id", "distance"))
    return _fold(rows, k)
