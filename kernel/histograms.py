"""A duration over a queryset as a Prometheus histogram, in one SQL aggregate (``/metrics`` reads
submissions' answer and worker times through ``submissions.stats`` and the workers' task times
directly; both build their buckets here)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta

from django.db.models import Count, Expression, Q, QuerySet, Sum


def duration_histogram(
    qs: QuerySet, duration: Expression, buckets: Iterable[float]
) -> tuple[list[tuple[str, int]], float]:
    """Cumulative bucket counts (Prometheus' ``le`` labels, then ``+Inf``) and the sum of seconds of
    ``duration`` over ``qs``."""
    buckets = list(buckets)
    qs = qs.annotate(duration=duration)
    aggregates = {
        f"le_{i}": Count("pk", filter=Q(duration__lte=timedelta(seconds=bound))) for i, bound in enumerate(buckets)
    }
    row = qs.aggregate(total=Count("pk"), seconds=Sum("duration"), **aggregates)
    out = [(str(float(bound)), row[f"le_{i}"]) for i, bound in enumerate(buckets)]
    out.append(("+Inf", row["total"]))
    return out, row["seconds"].total_seconds() if row["seconds"] else 0.0
