"""Telling the dentist: the result e-mail, sent once (queued by ``submissions.tasks.notify_dentist``)."""

from __future__ import annotations

import logging

from django.db import transaction
from django.utils import timezone

from submissions.models import Status, Submission
from submissions.notifications import send_result_email

logger = logging.getLogger(__name__)


def submission_notify_dentist(*, submission_id: int) -> str:
    """E-mail the dentist the result link, once; returns what happened (the task's result).

    Queued on commit when a result (or a failure) is recorded. The row stays locked while the
    message is sent, so two copies of the task cannot both send; ``notified_at`` is set only when
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
        submission_mark_notified(submission_id=submission_id)
    logger.info("notify_dentist: submission %s e-mail sent", submission_id)
    return "sent"


@transaction.atomic
def submission_mark_notified(*, submission_id: int) -> bool:
    """Set ``notified_at`` once; False when it was already set (the e-mail went out before)."""
    submission = Submission.objects.select_for_update().get(pk=submission_id)
    if submission.notified_at is not None:
        return False
    submission.notified_at = timezone.now()
    submission.save(update_fields=["notified_at"])
    return True
