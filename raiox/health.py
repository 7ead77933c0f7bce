"""``GET /healthcheck`` (the old system's path): is every component this process needs reachable?

Each entry of ``CHECKS`` returns a dict with ``ok`` (False: the component is down, the answer is
503) and optionally ``warning`` (a reason a person should look, e.g. a stuck queue or untrained
weights on the workers; still 200, so a load balancer keeps sending dentists' uploads to a web node
whose workers are slow). The queue and the workers' model come from the one system-state reader,
``matching.state`` (torch-free), the same figures the dashboard and /metrics show.

Who sees what: the public (a load balancer, anyone) gets ``{"status": ...}`` only, with the same
200 / 503; the details (model, device, versions, queue, workers) go to the callers ``/metrics``
lets in (``raiox.metrics.metrics_allowed``: bearer token or allow-listed address) and to logged-in
staff. A public answer reuses a storage probe younger than ``STORAGE_PROBE_SECONDS`` instead of
sending the bucket a request per hit; a detailed answer always probes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from django.core.files.storage import default_storage, storages
from django.db import connection
from django.db.models import Max
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from matching.state import model_state, queue_state
from raiox.checks import pgvector_supported
from raiox.metrics import metrics_allowed

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


def check_queue() -> dict:
    queue = queue_state()
    result = {
        "ok": True,
        "broker": queue.broker,
        "waiting": queue.waiting,
        "running": queue.running,
        "oldest_task_age_seconds": queue.oldest_age_seconds,
    }
    if queue.stuck:
        result["warning"] = "fila parada: a tarefa mais antiga espera há mais que o limite"
    return result


def check_model() -> dict:
    from django_q.models import Success

    model = model_state()
    last_task = Success.objects.aggregate(m=Max("stopped"))["m"]
    result = {
        "ok": True,
        "model": model.model_id,
        "untrained": model.untrained,
        "device": model.device,
        "workers_alive": model.workers_alive,
        "worker_last_seen": model.last_seen.isoformat() if model.last_seen else None,
        "reference_images": model.reference_images,
        "reference_images_embedded_with_model": model.reference_images_embedded,
        "last_task_finished_at": last_task.isoformat() if last_task else None,
    }
    if model.model_id is None:
        result["warning"] = "nenhum worker informou o seu modelo ainda: os workers já rodaram?"
    elif model.untrained:
        result["warning"] = "os workers usam pesos NÃO treinados: os resultados não têm valor"
    elif not model.alive:
        result["warning"] = "nenhum worker deu sinal de vida recentemente"
    elif model.reference_images_embedded < model.reference_images:
        result["warning"] = "há imagens de referência ainda sem embedding deste modelo"
    return result


CHECKS: dict[str, Callable[[], dict]] = {
    "database": check_database,
    "pgvector": check_pgvector,
    "storage": check_storage,
    "queue": check_queue,
    "model": check_model,
}


# A public answer may reuse the last storage probe of this process for this long (seconds).
STORAGE_PROBE_SECONDS = 30.0
_last_storage_probe: tuple[float, dict] | None = None  # (time.monotonic() of the probe, its result)


def _run(name: str, check: Callable[[], dict]) -> dict:
    try:
        return check()
    except Exception as exc:  # any failure of a dependency is reported, never raised
        logger.warning("healthcheck: %s failed: %s", name, type(exc).__name__)
        return {"ok": False, "error": type(exc).__name__}


def run_checks(*, fresh_storage: bool = True) -> dict[str, dict]:
    """Every check's result. ``fresh_storage=False``: the storage result of a probe made less than
    ``STORAGE_PROBE_SECONDS`` ago by this process is reused (a down bucket included)."""
    global _last_storage_probe
    results: dict[str, dict] = {}
    for name, check in CHECKS.items():
        if name == "storage":
            now = time.monotonic()
            recent = _last_storage_probe
            if not fresh_storage and recent is not None and now - recent[0] < STORAGE_PROBE_SECONDS:
                results[name] = recent[1]
                continue
            results[name] = _run(name, check)
            _last_storage_probe = (now, results[name])
        else:
            results[name] = _run(name, check)
    return results


def wants_details(request: HttpRequest) -> bool:
    """The monitoring (the same rule as /metrics) and logged-in staff."""
    user = getattr(request, "user", None)
    return bool(user is not None and user.is_active and user.is_staff) or metrics_allowed(request)


@never_cache
@require_GET
def healthcheck(request: HttpRequest) -> JsonResponse:
    detailed = wants_details(request)
    checks = run_checks(fresh_storage=detailed)
    failing = [name for name, result in checks.items() if not result["ok"]]
    status = {"status": "ok" if not failing else "unavailable"}
    code = 200 if not failing else 503
    if not detailed:
        return JsonResponse(status, status=code)
    warnings = [name for name, result in checks.items() if result["ok"] and result.get("warning")]
    return JsonResponse({**status, "failing": failing, "warnings": warnings, "checks": checks}, status=code)
