"""Submissions' figures for the staff dashboard (the workers' model and the queue are system state:
``matching.state``). Each selector is one or two queries, whatever the volume.

Everything is computed in PostgreSQL (conditional counts, ``percentile_cont``, ``EXISTS``), so the
dashboard stays fast as submissions grow; the web process never loads the model.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from django.db import connection
from django.db.models import Aggregate, Count, Exists, FloatField, OuterRef, Q, QuerySet
from django.db.models.functions import Extract, TruncDate, TruncWeek
from django.utils import timezone

from kernel.histograms import duration_histogram
from submissions.models import ANSWER_TIME, WORKER_TIME, Match, Source, Status, Submission


def _since(days: int) -> dt.datetime:
    today = timezone.localdate()
    start = today - dt.timedelta(days=days - 1)
    return timezone.make_aware(dt.datetime.combine(start, dt.time.min))


@dataclass
class DailySeries:
    days: list[dt.date]
    by_source: dict[str, list[int]]
    by_status: dict[str, list[int]]

    @property
    def total(self) -> int:
        return sum(sum(values) for values in self.by_source.values())


def submissions_per_day(*, days: int = 30) -> DailySeries:
    """Submissions received per local day, by source and by status (one query)."""
    since = _since(days)
    aggregates = {f"src_{s}": Count("id", filter=Q(source=s)) for s in Source.values}
    aggregates |= {f"st_{s}": Count("id", filter=Q(status=s)) for s in Status.values}
    rows = (
        Submission.objects.filter(received_at__gte=since)
        .annotate(day=TruncDate("received_at", tzinfo=timezone.get_current_timezone()))
        .values("day")
        .annotate(**aggregates)
        .order_by("day")
    )
    by_day = {row["day"]: row for row in rows}
    first = since.astimezone(timezone.get_current_timezone()).date()
    day_list = [first + dt.timedelta(days=i) for i in range(days)]
    by_source = {s: [by_day.get(d, {}).get(f"src_{s}", 0) for d in day_list] for s in Source.values}
    by_status = {s: [by_day.get(d, {}).get(f"st_{s}", 0) for d in day_list] for s in Status.values}
    return DailySeries(days=day_list, by_source=by_source, by_status=by_status)


class _PercentileCont(Aggregate):
    """PostgreSQL's ``percentile_cont(f) WITHIN GROUP (ORDER BY expression)``."""

    function = "percentile_cont"
    template = "%(function)s(%(fraction)s) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = FloatField()

    def __init__(self, expression, *, fraction: float, **extra):
        super().__init__(expression, fraction=float(fraction), **extra)


def _answered() -> QuerySet[Submission]:
    """The submissions whose answer time is counted: finished with a result."""
    return Submission.objects.filter(status=Status.DONE, finished_at__isnull=False)


@dataclass
class AnswerTimes:
    count: int
    p50: float | None  # seconds of ``ANSWER_TIME``: received -> finished
    p95: float | None


def answer_times(*, days: int = 30) -> AnswerTimes:
    """Median and 95th percentile of the answer time (``submissions.models.ANSWER_TIME``) of the
    submissions answered in the last ``days`` (one query)."""
    seconds = Extract(ANSWER_TIME, "epoch")
    row = (
        _answered()
        .filter(received_at__gte=_since(days))
        .aggregate(
            count=Count("pk"),
            p50=_PercentileCont(seconds, fraction=0.5),
            p95=_PercentileCont(seconds, fraction=0.95),
        )
    )
    return AnswerTimes(count=row["count"], p50=row["p50"], p95=row["p95"])


def answer_time_histogram(buckets: Iterable[float]) -> tuple[list[tuple[str, int]], float]:
    """``ANSWER_TIME`` of every answered submission, as a histogram (for ``/metrics``)."""
    return duration_histogram(_answered(), ANSWER_TIME, buckets)


def worker_time_histogram(buckets: Iterable[float]) -> tuple[list[tuple[str, int]], float]:
    """``WORKER_TIME`` (started -> finished) of every answered submission, as a histogram."""
    return duration_histogram(_answered(), WORKER_TIME, buckets)


def submission_counts() -> dict[tuple[str, str], int]:
    """How many submissions there are, by (source, status), all time (one query)."""
    rows = Submission.objects.values("source", "status").annotate(n=Count("pk")).order_by()
    return {(row["source"], row["status"]): row["n"] for row in rows}


def failure_reasons(*, days: int = 30, limit: int = 10) -> list[dict]:
    """Failed submissions grouped by reason, most frequent first (one query)."""
    return list(
        Submission.objects.filter(status=Status.FAILED, received_at__gte=_since(days))
        .values("failure_reason")
        .annotate(count=Count("id"))
        .order_by("-count", "failure_reason")[:limit]
    )


def top_matched(*, days: int = 30, limit: int = 8) -> tuple[list[dict], list[dict]]:
    """Implants and manufacturers most often ranked first (two queries)."""
    first = Match.objects.filter(rank=1, submission__received_at__gte=_since(days))
    implants = list(
        first.values("implant_id", "implant__name", "implant__manufacturer__name")
        .annotate(count=Count("id"))
        .order_by("-count", "implant__name")[:limit]
    )
    manufacturers = list(
        first.values("implant__manufacturer__name").annotate(count=Count("id")).order_by("-count")[:limit]
    )
    return implants, manufacturers


@dataclass
class AccuracyWeek:
    week: dt.date
    confirmed: int
    top1: int
    top3: int

    @property
    def top1_rate(self) -> float | None:
        return self.top1 / self.confirmed if self.confirmed else None

    @property
    def top3_rate(self) -> float | None:
        return self.top3 / self.confirmed if self.confirmed else None


@dataclass
class Accuracy:
    weeks: list[AccuracyWeek]

    @property
    def confirmed(self) -> int:
        return sum(w.confirmed for w in self.weeks)

    @property
    def top1_rate(self) -> float | None:
        return sum(w.top1 for w in self.weeks) / self.confirmed if self.confirmed else None

    @property
    def top3_rate(self) -> float | None:
        return sum(w.top3 for w in self.weeks) / self.confirmed if self.confirmed else None


def confirmed_accuracy(*, weeks: int = 12) -> Accuracy:
    """Among submissions whose implant staff confirmed: the share where the matcher had ranked it
    first, and in the top 3, per week of receipt (one query). The matches are those recorded
    when the X-ray was processed, so a confirmation never flatters its own case."""
    top_k = Match.objects.filter(submission=OuterRef("pk"), implant=OuterRef("confirmed_implant"))
    since = _since(weeks * 7)
    rows = (
        Submission.objects.filter(confirmed_implant__isnull=False, received_at__gte=since)
        .annotate(week=TruncWeek("received_at", tzinfo=timezone.get_current_timezone()))
        .values("week")
        .annotate(
            confirmed=Count("id"),
            top1=Count("id", filter=Exists(top_k.filter(rank=1))),
            top3=Count("id", filter=Exists(top_k.filter(rank__lte=3))),
        )
        .order_by("week")
    )
    return Accuracy(
        weeks=[
            AccuracyWeek(week=_as_date(r["week"]), confirmed=r["confirmed"], top1=r["top1"], top3=r["top3"])
            for r in rows
        ]
    )


def _as_date(value: dt.date | dt.datetime) -> dt.date:
    return value.date() if isinstance(value, dt.datetime) else value


@dataclass
class ReviewFigures:
    open: int  # requests waiting for a specialist now
    oldest_open_seconds: float | None  # how long the longest-waiting one has waited
    answered: int  # answered in the period
    p50: float | None  # seconds from asked to answered
    p95: float | None


def review_figures(*, days: int = 30) -> ReviewFigures:
    """Specialist reviews: open requests (and the oldest one's wait), and the time to answer
    (median, 95th percentile) of those answered in the period — one query."""
    from submissions.models import ReviewRequest

    table = ReviewRequest._meta.db_table
    answer_seconds = "EXTRACT(EPOCH FROM answered_at - requested_at)"
    answered_in_period = "answered_at IS NOT NULL AND answered_at >= %s"
    sql = f"""
        SELECT count(*) FILTER (WHERE answered_at IS NULL),
               EXTRACT(EPOCH FROM now() - min(requested_at) FILTER (WHERE answered_at IS NULL)),
               count(*) FILTER (WHERE {answered_in_period}),
               percentile_cont(0.5) WITHIN GROUP (ORDER BY {answer_seconds}) FILTER (WHERE {answered_in_period}),
               percentile_cont(0.95) WITHIN GROUP (ORDER BY {answer_seconds}) FILTER (WHERE {answered_in_period})
        FROM {table}
    """  # noqa: S608 - the table name is ours, values are parameters
    since = _since(days)
    with connection.cursor() as cursor:
        cursor.execute(sql, [since, since, since])
        open_count, oldest, answered, p50, p95 = cursor.fetchone()

    def _f(value: object) -> float | None:
        return float(value) if value is not None else None

    return ReviewFigures(open=open_count, oldest_open_seconds=_f(oldest), answered=answered, p50=_f(p50), p95=_f(p95))
