"""``GET /healthcheck`` (the old system's path): is every component this process needs reachable?"""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.core.files.storage import default_storage, storages
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

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
    return {"ok": True, "version": row[0]}


def check_storage() -> dict:
    # A HEAD on S3 (a stat locally): proves the endpoint answers and the credentials are accepted,
    # without writing anything on every probe.
    default_storage.exists("healthcheck/ping")
    return {"ok": True, "backend": type(storages["default"]).__name__}


CHECKS: dict[str, Callable[[], dict]] = {
    "database": check_database,
    "pgvector": check_pgvector,
    "storage": check_storage,
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
    body = {"status": "ok" if not failing else "unavailable", "failing": failing, "checks": checks}
    return JsonResponse(body, status=200 if not failing else 503)
