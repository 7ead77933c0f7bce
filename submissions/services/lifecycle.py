"""The end of a submission's life: stuck ones queued again, deletion with every file, retention.

- ``submission_requeue_stuck`` (scheduled): a submission left ``received`` or ``processing`` past
  ``RAIOX_STUCK_SUBMISSION_SECONDS`` — committed but never queued (a broker hiccup right after the
  commit), or its worker killed — is queued again; one that has used every attempt is failed with
  a reason instead.
- ``submission_delete``: the one way a submission is deleted (admin, retention, services). Its
  stored files and its crops (new submissions made from a region of it, same patient) go with it,
  once the deletion is committed. A reference image made from it by a staff confirmation stays:
  it holds the pixels only (see ``implants.services``), no link back to the patient.
- ``retention_apply`` (scheduled, LGPD): submissions older than ``RAIOX_RETENTION_DAYS``, task
  rows of the queue older than that too, expired sessions and expired thank-you cache entries.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.sessions.models import Session
from django.core.cache import caches
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from kernel.files import delete_files_on_commit
from kernel.queue import max_attempts, queued_tasks
from submissions.locks import review_requests_select_for_update, submissions_select_for_update
from submissions.models import Status, Submission
from submissions.services.processing import PROCESS_TASK, submission_fail, submission_reprocess

logger = logging.getLogger(__name__)

STUCK_REASON = "O processamento desta radiografia não terminou após várias tentativas. Envie-a novamente."
RETENTION_BATCH = 200


def _queued_submission_ids() -> set[int]:
    """Submissions whose processing task waits in the queue (the PostgreSQL broker only; with
    Redis we cannot look, and a duplicate task is harmless: processing is idempotent)."""
    rows = queued_tasks()
    if rows is None:
        return set()
    queued: set[int] = set()
    for row in rows.iterator():
        task = row.task
        if task.get("func") == PROCESS_TASK and task.get("args"):
            queued.add(int(task["args"][0]))
    return queued


def submission_requeue_stuck(*, now: datetime | None = None) -> dict[str, int]:
    """Queue again every submission stuck past the limit; fail the ones out of attempts."""
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=settings.RAIOX_STUCK_SUBMISSION_SECONDS)
    stuck = Submission.objects.filter(
        Q(status=Status.RECEIVED, received_at__lt=cutoff) & (Q(started_at__isnull=True) | Q(started_at__lt=cutoff))
        | Q(status=Status.PROCESSING, started_at__lt=cutoff)
    ).values_list("pk", "attempts")
    queued = _queued_submission_ids()
    attempts_allowed = max_attempts()
    counts = {"requeued": 0, "failed": 0, "already_queued": 0}
    for pk, attempts in stuck:
        if pk in queued:
            counts["already_queued"] += 1
        elif attempts >= attempts_allowed:
            submission_fail(submission_id=pk, reason=STUCK_REASON)
            counts["failed"] += 1
        else:
            submission_reprocess(submission_id=pk)
            counts["requeued"] += 1
    if counts["requeued"] or counts["failed"]:
        logger.warning("sweeper: %(requeued)s submission(s) queued again, %(failed)s failed", counts)
    return counts


def _with_crops(pks: Iterable[int]) -> set[int]:
    """The submissions and, recursively, the crops made from them."""
    found = set(pks)
    frontier = set(found)
    while frontier:
        children = set(Submission.objects.filter(parent_id__in=frontier).values_list("pk", flat=True)) - found
        found |= children
        frontier = children
    return found


def submissions_delete(*, submission_ids: Iterable[int]) -> int:
    """Delete these submissions, their crops and every stored file of them (files once the
    deletion is committed: a rolled-back deletion keeps its files). Returns the rows deleted."""
    pks = _with_crops(submission_ids)
    if not pks:
        return 0
    with transaction.atomic():
        # In the order of ``submissions.locks``: the review requests the cascade deletes before
        # their submissions (as answering a review takes them), each model's rows by pk.
        list(review_requests_select_for_update().filter(submission_id__in=pks).values_list("pk", flat=True))
        rows = submissions_select_for_update().filter(pk__in=pks)
        names = [name for name in rows.values_list("image", flat=True) if name]
        deleted = len(pks)
        # Matches and feedback go by cascade; reference images made by confirmation stay.
        Submission.objects.filter(pk__in=pks).delete()
        delete_files_on_commit(names)
    return deleted


def submission_delete(*, submission: Submission) -> int:
    """Delete one submission with its crops and their files (see ``submissions_delete``)."""
    return submissions_delete(submission_ids=[submission.pk])


@dataclass(frozen=True)
class RetentionReport:
    submissions: int
    tasks: int
    sessions: int
    cache_entries: int


def retention_apply(*, now: datetime | None = None) -> RetentionReport:
    """Delete what is older than ``RAIOX_RETENTION_DAYS`` (LGPD: kept no longer than needed)."""
    now = now or timezone.now()
    cutoff = now - timedelta(days=settings.RAIOX_RETENTION_DAYS)
    old = Submission.objects.filter(received_at__lt=cutoff).order_by("pk").values_list("pk", flat=True)
    submissions = 0
    while batch := list(old[:RETENTION_BATCH]):
        submissions += submissions_delete(submission_ids=batch)

    from django_q.models import Task

    # Task rows (results and failures) name submission ids and may quote an error text.
    tasks, _ = Task.objects.filter(stopped__lt=cutoff).delete()
    sessions, _ = Session.objects.filter(expire_date__lt=now).delete()
    cache_entries = _delete_expired_cache_entries(now)
    report = RetentionReport(submissions, tasks, sessions, cache_entries)
    logger.info(
        "retention: %s submission(s), %s task row(s), %s session(s), %s cache entr(ies) deleted",
        report.submissions,
        report.tasks,
        report.sessions,
        report.cache_entries,
    )
    return report


def _delete_expired_cache_entries(now: datetime) -> int:
    """The shared cache (thank-you page lookups) lives in a database table; Django culls it only
    when it grows, so expired entries are deleted here."""
    cache = caches[settings.RAIOX_SHARED_CACHE]
    table = getattr(cache, "_table", None)
    if table is None:
        return 0  # another backend expires its own entries
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {connection.ops.quote_name(table)} WHERE expires < %s", [now])  # noqa: S608
        return cursor.rowcount
