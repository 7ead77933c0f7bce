"""``GET /metrics`` in the Prometheus text format, for Prometheus + Grafana (deploy/grafana-dashboard.json).

Two kinds of series:

* request latency by view, observed in each web process by ``MetricsMiddleware``. Gunicorn runs
  several processes: with ``PROMETHEUS_MULTIPROC_DIR`` set (the systemd unit does) they share
  their values through files there, and a scrape of any process sees them all;
* everything about the work itself — submissions by source and status, answer and worker time,
  failures, queue depth and age, embedding time, the workers' model — computed from the database at
  scrape time. The workers are other processes (other machines, when scaled out); the database is the one
  place that knows about all of them, so these series are right whichever node is scraped.

Not public: a request must carry ``Authorization: Bearer <RAIOX_METRICS_TOKEN>`` or come from an
address in ``RAIOX_METRICS_ALLOWED_IPS``; anything else gets 404 (the endpoint's existence is not
advertised).
"""

from __future__ import annotations

import ipaddress
import logging
import os
import time
from collections.abc import Callable

from django.conf import settings
from django.db.models import Count, DurationField, ExpressionWrapper, F
from django.http import Http404, HttpRequest, HttpResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

from kernel.histograms import duration_histogram
from kernel.http import client_address, secret_matches

logger = logging.getLogger(__name__)

MULTIPROCESS = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))

# In multiprocess mode values live in files and are collected by MultiProcessCollector at scrape
# time; the in-process registry is used only without it.
_process_registry = CollectorRegistry()
REQUEST_LATENCY = Histogram(
    "raiox_http_request_duration_seconds",
    "Time to answer an HTTP request, by Django view (URL name) and method.",
    ["view", "method", "status_class"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
    registry=None if MULTIPROCESS else _process_registry,
)

SUBMISSION_TIME_BUCKETS = (0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600)
EMBEDDING_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30)


class DatabaseCollector(Collector):
    """Series computed from the database when Prometheus scrapes."""

    def describe(self):
        # Without this, registering would run collect() (a database query) at import time.
        return []

    def collect(self):
        up = GaugeMetricFamily("raiox_database_up", "1 when the metrics could be read from the database.")
        try:
            families = list(self._collect())
        except Exception as exc:  # a scrape must still answer (with database_up 0) during an outage
            logger.warning("metrics: database collector failed: %s", type(exc).__name__)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from families

    def _collect(self):
        from django_q.models import Failure, Success

        from implants.models import ReferenceImage
        from implants.services import EMBED_REFERENCE_TASK
        from matching.state import model_state, queue_state
        from submissions import stats
        from submissions.models import Source, Status

        submissions = GaugeMetricFamily(
            "raiox_submissions", "Submissions in the database, by source and status.", labels=["source", "status"]
        )
        counts = stats.submission_counts()
        for source in Source.values:
            for status in Status.values:
                submissions.add_metric([source, status], counts.get((source, status), 0))
        yield submissions

        failed = GaugeMetricFamily(
            "raiox_submissions_failed",
            "Submissions that ended in failure (status failed), by source.",
            labels=["source"],
        )
        for source in Source.values:
            failed.add_metric([source], counts.get((source, Status.FAILED), 0))
        yield failed

        # The dashboard's "tempo de resposta" and these two come from the same definitions
        # (submissions.models ANSWER_TIME / WORKER_TIME): Grafana and the dashboard agree.
        buckets, total = stats.answer_time_histogram(SUBMISSION_TIME_BUCKETS)
        answer = HistogramMetricFamily(
            "raiox_submission_answer_seconds",
            "Answer time per answered submission: received to result, the queue wait included "
            "(the staff dashboard's 'tempo de resposta').",
        )
        answer.add_metric([], buckets, total)
        yield answer
        buckets, total = stats.worker_time_histogram(SUBMISSION_TIME_BUCKETS)
        worker = HistogramMetricFamily(
            "raiox_submission_worker_seconds",
            "Worker time per answered submission: start of processing to result (answer time less the queue wait).",
        )
        worker.add_metric([], buckets, total)
        yield worker

        # django-q2 records each task's start and stop; an embed_reference_image task is one
        # embedding (read the image, run CLIP, save). Successful tasks are kept up to save_limit.
        embed_tasks = Success.objects.filter(func=EMBED_REFERENCE_TASK)
        buckets, total = duration_histogram(
            embed_tasks,
            ExpressionWrapper(F("stopped") - F("started"), output_field=DurationField()),
            EMBEDDING_BUCKETS,
        )
        embedding = HistogramMetricFamily(
            "raiox_embedding_seconds", "Time to embed one reference image (recent successful worker tasks)."
        )
        embedding.add_metric([], buckets, total)
        yield embedding

        task_failures = GaugeMetricFamily(
            "raiox_task_failures", "Worker tasks that failed (kept by django-q2), by function.", labels=["func"]
        )
        for row in Failure.objects.values("func").annotate(n=Count("pk")).order_by():
            task_failures.add_metric([row["func"]], row["n"])
        yield task_failures

        queue = queue_state()
        depth = GaugeMetricFamily("raiox_queue_depth", "Tasks waiting for a worker.")
        depth.add_metric([], queue.waiting)
        yield depth
        running = GaugeMetricFamily("raiox_queue_running", "Tasks taken by a worker and not finished.")
        running.add_metric([], queue.running or 0)
        yield running
        age = GaugeMetricFamily("raiox_queue_oldest_task_age_seconds", "How long the oldest waiting task has waited.")
        age.add_metric([], queue.oldest_age_seconds or 0.0)
        yield age

        state = model_state()
        model = GaugeMetricFamily(
            "raiox_worker_model_info", "The model the workers run (1).", labels=["model", "untrained"]
        )
        if state.model_id:
            model.add_metric([state.model_id, str(state.untrained).lower()], 1)
        yield model
        alive = GaugeMetricFamily("raiox_workers_alive", "Worker processes heard of in the last 10 minutes.")
        alive.add_metric([], state.workers_alive)
        yield alive
        references = GaugeMetricFamily(
            "raiox_reference_images", "Reference images, by embedding model ('' when not embedded).", labels=["model"]
        )
        for row in ReferenceImage.objects.values("embedding_model").annotate(n=Count("pk")).order_by():
            references.add_metric([row["embedding_model"]], row["n"])
        yield references


_process_registry.register(DatabaseCollector())


def scrape_registry() -> CollectorRegistry:
    if not MULTIPROCESS:
        return _process_registry
    from prometheus_client import multiprocess

    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    registry.register(DatabaseCollector())
    return registry


def _address_allowed(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    for allowed in settings.RAIOX_METRICS_ALLOWED_IPS:
        try:
            if ip in ipaddress.ip_network(allowed, strict=False):
                return True
        except ValueError:
            continue
    return False


def metrics_allowed(request: HttpRequest) -> bool:
    token = settings.RAIOX_METRICS_TOKEN
    header = request.headers.get("Authorization", "")
    if token and header.startswith("Bearer ") and secret_matches(header[7:].strip(), token):
        return True
    return _address_allowed(client_address(request))


@never_cache
@require_GET
def metrics_view(request: HttpRequest) -> HttpResponse:
    if not metrics_allowed(request):
        raise Http404
    return HttpResponse(generate_latest(scrape_registry()), content_type=CONTENT_TYPE_LATEST)


class MetricsMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        response = self.get_response(request)
        match = getattr(request, "resolver_match", None)
        # The URL name, never the path: paths hold result tokens and would explode the label set.
        view = (match.view_name or "unnamed") if match else "unresolved"
        REQUEST_LATENCY.labels(view, request.method, f"{response.status_code // 100}xx").observe(
            time.perf_counter() - started
        )
        return response
