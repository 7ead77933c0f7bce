"""``GET /healthcheck`` (the old system's path): is every component this process needs reachable?

Each entry of ``CHECKS`` returns a dict with ``ok`` (False: the component is down, the answer is
503) and optionally ``warning`` (a reason a person should look, e.g. a stuck queue or untrained
weights on the workers; still 200, so a load balancer keeps sending dentists' uploads to a web node
whose workers are slow). Web processes never import torch: the workers' model state is read from
the database (the model id recorded next to the latest embeddings).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.conf import settings
from django.core.files.storage import default_storage, storages
from django.db import connection
from django.db.models import Max, Min
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from raiox.checks import pgvector_supported

logger = logging.getLogger(__name__)


def check_database() -> dict:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return {"ok": True}


def check_pgvector() -> dict:
    with connection.cursor() as cursor:
        cursor.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
        row = cursor.fetchone()
    if row is None:
        return {"ok": False, "error": "extensão vector não instalada"}
    if not pgvector_supported(row[0]):
        # matching.search relies on 0.8's iterative index scans for filtered searches.
        return {"ok": False, "version": row[0], "error": f"pgvector {row[0]}: é preciso 0.8 ou mais recente"}
    return {"ok": True, "version": row[0]}


def check_storage() -> dict:
    # A HEAD on S3 (a stat locally): proves the endpoint answers and the credentials are accepted,
    # without writing anything on every probe.
    default_storage.exists("healthcheck/ping")
    return {"ok": True, "backend": type(storages["default"]).__name__}


def queue_stats() -> dict:
    """Tasks waiting, tasks being worked on, and how long the oldest waiting one has waited."""
    from django_q.brokers import get_broker
    from django_q.models import OrmQ

    broker = get_broker()
    stats: dict = {"broker": type(broker).__name__, "waiting": broker.queue_size(), "oldest_task_age_seconds": None}
    lock_size = broker.lock_size()
    stats["running"] = lock_size if lock_size is not None else None
    if "orm" in settings.Q_CLUSTER:
        # The ORM broker stamps `lock` with the enqueue time; a task taken by a worker gets a lock in
        # the future (its retry deadline), so the oldest lock in the past is the oldest waiting task.
        oldest = OrmQ.objects.filter(key=broker.list_key, lock__lte=timezone.now()).aggregate(m=Min("lock"))["m"]
        if oldest is not None:
            stats["oldest_task_age_seconds"] = round((timezone.now() - oldest).total_seconds(), 1)
    return stats


def check_queue() -> dict:
    stats = queue_stats()
    result = {"ok": True, **stats}
    age = stats["oldest_task_age_seconds"]
    if age is not None and age > settings.RAIOX_QUEUE_MAX_AGE_SECONDS:
        result["warning"] = "fila parada: a tarefa mais antiga espera há mais que o limite"
    return result


def model_state() -> dict:
    """What the workers embed with. A worker records its model when it builds it (and then as a
    heartbeat: ``matching.selectors.model_state``); before any worker has done so, the latest
    embeddings in the database say which model made them."""
    from django_q.models import Success

    from implants.models import ReferenceImage
    from matching.selectors import model_state as worker_model_state
    from submissions.models import Submission

    worker = worker_model_state()
    if worker is not None:
        model: str | None = worker.model_id
        untrained = worker.untrained
    else:
        latest_sub = (
            Submission.objects.exclude(embedding_model="")
            .order_by("-finished_at", "-pk")
            .values("embedding_model", "finished_at")
            .first()
        )
        latest_ref = (
            ReferenceImage.objects.exclude(embedding_model="")
            .order_by("-embedded_at", "-pk")
            .values("embedding_model", "embedded_at")
            .first()
        )
        candidates = []
        if latest_sub:
            candidates.append((latest_sub["finished_at"], latest_sub["embedding_model"]))
        if latest_ref:
            candidates.append((latest_ref["embedded_at"], latest_ref["embedding_model"]))
        candidates = [c for c in candidates if c[0] is not None] or candidates
        model = max(candidates, key=lambda c: c[0])[1] if candidates else None
        untrained = bool(model and "untrained" in model)
    references = ReferenceImage.objects.count()
    embedded = ReferenceImage.objects.filter(embedding_model=model).count() if model else 0
    last_task = Success.objects.aggregate(m=Max("stopped"))["m"]
    return {
        "model": model,
        "untrained": untrained,
        "device": worker.device if worker else None,
        "workers_alive": worker.workers_alive if worker else 0,
        "worker_last_seen": worker.last_seen.isoformat() if worker else None,
        "reference_images": references,
        "reference_images_embedded_with_model": embedded,
        "last_task_finished_at": last_task.isoformat() if last_task else None,
    }


def check_model() -> dict:
    state = model_state()
    result = {"ok": True, **state}
    if state["model"] is None:
        result["warning"] = "nenhum embedding calculado ainda: os workers já rodaram?"
    elif state["untrained"]:
        result["warning"] = "os workers usam pesos NÃO treinados: os resultados não têm valor"
    elif state["reference_images_embedded_with_model"] < state["reference_images"]:
        result["warning"] = "há imagens de referência ainda sem embedding deste modelo"
    return result


CHECKS: dict[str, Callable[[], dict]] = {
    "database": check_database,
    "pgvector": check_pgvector,
    "storage": check_storage,
    "queue": check_queue,
    "model": check_model,
}


def run_checks() -> dict[str, dict]:
    results: dict[str, dict] = {}
    for name, check in CHECKS.items():
        try:
            results[name] = check()
        except Exception as exc:  # any failure of a dependency is reported, never raised
            logger.warning("healthcheck: %s failed: %s", name, type(exc).__name__)
            results[name] = {"ok": False, "error": type(exc).__name__}
    return results


@never_cache
@require_GET
def healthcheck(request: HttpRequest) -> JsonResponse:
    checks = run_checks()
    failing = [name for name, result in checks.items() if not result["ok"]]
    warnings = [name for name, result in checks.items() if result["ok"] and result.get("warning")]
    body = {
        "status": "ok" if not failing else "unavailable",
        "failing": failing,
        "warnings": warnings,
        "checks": checks,
    }
    return JsonResponse(body, status=200 if not failing else 503)
