"""The staff dashboard (``/admin/dashboard/``): submissions' figures from ``submissions.stats`` and
the workers' model and queue from the system-state reader ``matching.state`` (the same figures as
/healthcheck and /metrics), drawn as SVG. In the project package because it joins two apps."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils import formats
from django.utils.translation import gettext as _

from kernel.charts import AMBER, GREEN, PURPLE, RED, SLATE
from matching.state import model_state, queue_state
from submissions import stats
from submissions.charts import Series, horizontal_bars, line_chart, stacked_bars
from submissions.models import Source, Status

STATUS_COLORS = {
    Status.RECEIVED: SLATE,
    Status.PROCESSING: AMBER,
    Status.DONE: GREEN,
    Status.FAILED: RED,
}


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.0f} %"


def _seconds(value: float | None) -> str:
    if value is None:
        return "—"
    if value < 60:
        return f"{value:.1f} s"
    if value < 3600:
        return f"{value / 60:.1f} min"
    return f"{value / 3600:.1f} h"


def dashboard_view(request: HttpRequest) -> HttpResponse:
    daily = stats.submissions_per_day(days=30)
    times = stats.answer_times(days=30)
    queue = queue_state()
    failures = stats.failure_reasons(days=30)
    top_implants, top_manufacturers = stats.top_matched(days=30)
    model = model_state()
    accuracy = stats.confirmed_accuracy(weeks=12)
    reviews = stats.review_figures(days=30)

    day_labels = [formats.date_format(d, "d/m") for d in daily.days]
    week_labels = [formats.date_format(w.week, "d/m") for w in accuracy.weeks]
    context = {
        **admin.site.each_context(request),
        "title": _("Painel"),
        "daily": daily,
        "times": times,
        "p50": _seconds(times.p50),
        "p95": _seconds(times.p95),
        "queue": queue,
        "queue_oldest_age": _seconds(queue.oldest_age_seconds),
        "failures": failures,
        "failed_total": sum(daily.by_status[Status.FAILED]),
        "model": model,
        "accuracy": accuracy,
        "reviews": reviews,
        "reviews_oldest": _seconds(reviews.oldest_open_seconds),
        "reviews_p50": _seconds(reviews.p50),
        "reviews_p95": _seconds(reviews.p95),
        "accuracy_top1": _percent(accuracy.top1_rate),
        "accuracy_top3": _percent(accuracy.top3_rate),
        "chart_by_source": stacked_bars(
            day_labels,
            [Series(str(label), daily.by_source[value]) for value, label in Source.choices],
            title=_("Envios por dia, por origem"),
        ),
        "chart_by_status": stacked_bars(
            day_labels,
            [Series(str(label), daily.by_status[value], STATUS_COLORS[value]) for value, label in Status.choices],
            title=_("Envios por dia, por situação"),
        ),
        "chart_accuracy": line_chart(
            week_labels,
            [
                Series(_("top-1"), [None if w.top1_rate is None else w.top1_rate * 100 for w in accuracy.weeks]),
                Series(_("top-3"), [None if w.top3_rate is None else w.top3_rate * 100 for w in accuracy.weeks]),
            ],
            title=_("Acerto nos casos confirmados, por semana"),
        ),
        "chart_implants": horizontal_bars(
            [(f"{r['implant__manufacturer__name']} {r['implant__name']}", r["count"]) for r in top_implants]
        ),
        "chart_manufacturers": horizontal_bars(
            [(r["implant__manufacturer__name"], r["count"]) for r in top_manufacturers], color=PURPLE
        ),
        "top_implants": top_implants,
        "top_manufacturers": top_manufacturers,
    }
    return TemplateResponse(request, "admin/raiox_dashboard.html", context)
