"""Telling the dentist: the result e-mail, sent once (queued by ``submissions.tasks.notify_dentist``),
and at most ``RAIOX_RESULT_EMAILS_PER_DAY`` e-mails (results and specialist reviews together) to
one address in any 24 hours.

Anyone may type any address into the upload form, so the e-mail carries nothing the sender wrote
(``submissions/templates/submissions/email/result.txt``) and the per-address cap keeps the site
from being used to flood a stranger's inbox.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from submissions.locks import submissions_select_for_update
from submissions.models import ReviewRequest, Status, Submission
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
        submission = submissions_select_for_update().filter(pk=submission_id).first()
        if submission is None:
            return "missing"
        if submission.notified_at is not None:
            return "already notified"
        if not submission.dentist_email:
            return "no e-mail"
        if submission.parent_id is not None:
            # One implant of a film (found by the worker, marked by the dentist, or cropped on the
            # page): the film's own e-mail links the page that shows every one of them, so a
            # panoramic of four implants is one message, not five.
            return "region"
        if submission.status not in {Status.DONE, Status.FAILED}:
            return "not finished"
        if submission.email_skipped_reason:
            return "skipped"
        if not email_within_daily_limit(submission.dentist_email):
            submission.email_skipped_reason = _("limite diário de e-mails para este endereço atingido")
            submission.full_clean(exclude=["image", "token"])
            submission.save(update_fields=["email_skipped_reason"])
            logger.warning("notify_dentist: submission %s e-mail not sent: address over its daily limit", submission_id)
            return "daily limit"
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


def email_within_daily_limit(address: str) -> bool:
    """Whether one more e-mail may go to ``address`` (24 rolling hours): the result e-mails and the
    specialist-review e-mails share the one cap, ``RAIOX_RESULT_EMAILS_PER_DAY`` — both are sent
    to whatever address the sender typed. Addresses are stored in their canonical form
    (``submissions.fields.email``), so every spelling of one mailbox counts together.

    Called inside the sending transaction: the advisory lock makes two workers sending to the
    same address take turns (either e-mail), so they cannot both count one below the cap and
    both send."""
    address = address.lower()  # the intake stores addresses canonical (lower-case); the lock key must agree
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [f"raiox-result-email:{address}"])
    since = timezone.now() - timedelta(days=1)
    results = Submission.objects.filter(dentist_email=address, notified_at__gte=since).count()
    reviews = ReviewRequest.objects.filter(submission__dentist_email=address, notified_at__gte=since).count()
    return results + reviews < settings.RAIOX_RESULT_EMAILS_PER_DAY


@transaction.atomic
def submission_mark_notified(*, submission_id: int) -> bool:
    """Set ``notified_at`` once; False when it was already set (the e-mail went out before)."""
    submission = submissions_select_for_update().get(pk=submission_id)
    if submission.notified_at is not None:
        return False
    submission.notified_at = timezone.now()
    submission.save(update_fields=["notified_at"])
    return True
