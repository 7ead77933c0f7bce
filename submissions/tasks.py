"""django-q2 tasks of the submissions app (ids in, services for writes)."""

from __future__ import annotations

import logging

from django.db import transaction

from submissions import services
from submissions.models import Status, Submission
from submissions.notifications import send_result_email

logger = logging.getLogger(__name__)


def notify_dentist(submission_id: int) -> str:
    """E-mail the dentist the result link, once.

    Queued on commit when a result (or a failure) is recorded. The row stays locked while the
    message is sent, so two copies of this task cannot both send; ``notified_at`` is set only when
    the send succeeded. A failed send raises: the task is delivered again later (django-q retry).
    Logs carry the submission id only, never the patient or the address.
    """
    with transaction.atomic():
        submission = Submission.objects.select_for_update().filter(pk=submission_id).first()
        if submission is None:
            return "missing"
        if submission.notified_at is not None:
            return "already notified"
        if not submission.dentist_email:
            return "no e-mail"
        if submission.status not in {Status.DONE, Status.FAILED}:
            return "not finished"
        try:
            send_result_email(submission)
        except Exception as exc:
            logger.warning(
                "notify_dentist: submission %s e-mail failed (%s); will retry", submission_id, type(exc).__name__
            )
            raise
        services.submission_mark_notified(submission_id=submission_id)
    logger.info("notify_dentist: submission %s e-mail sent", submission_id)
    return "sent"


def requeue_stuck_submissions() -> str:
    """Scheduled (ensure_schedules): queue again submissions stuck past the limit."""
    counts = services.submission_requeue_stuck()
    return ", ".join(f"{k}={v}" for k, v in counts.items())


def apply_retention() -> str:
    """Scheduled (ensure_schedules): delete what is older than RAIOX_RETENTION_DAYS."""
    report = services.retention_apply()
    return f"submissions={report.submissions} tasks={report.tasks} sessions={report.sessions}"
