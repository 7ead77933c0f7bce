"""The dentist's e-mails, each sent once: the result (``submission_email_result``, queued by
``submissions.tasks.notify_dentist``) and the specialist's answer (``review_request_email_answer``,
queued by ``submissions.tasks.notify_review``). Both go through ``email_send_once``, which also
keeps one address to at most ``RAIOX_RESULT_EMAILS_PER_DAY`` e-mails (of both kinds together) in
any 24 hours.

Anyone may type any address into the upload form, so the e-mails carry nothing the sender wrote
and the per-address cap keeps the site from being used to flood a stranger's inbox.

The text (``build``) is ``submissions/results/email.py``'s, handed in by the task: a rendering of
the result belongs to the read model, above the services, which never import it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta
from typing import TypeVar

from django.conf import settings
from django.core.mail import EmailMessage
from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from submissions.locks import review_requests_select_for_update, submissions_select_for_update
from submissions.models import ReviewRequest, Status, Submission

logger = logging.getLogger(__name__)

Row = TypeVar("Row", Submission, ReviewRequest)


def submission_email_result(*, submission_id: int, build: Callable[[Submission], EmailMessage]) -> str:
    """E-mail the dentist the result link, once; returns what happened (the task's result).

    Queued on commit when a result (or a failure) is recorded. Sent for a finished film only: one
    implant of a film (found by the worker, marked by the dentist, or cropped on the page) gets
    none, since the film's own e-mail links the page that shows every one of them; a panoramic of
    four implants is one message, not five.
    """
    with transaction.atomic():
        submission = submissions_select_for_update().filter(pk=submission_id).first()
        if submission is None:
            return "missing"
        if submission.parent_id is not None:
            return "region"
        if submission.status not in {Status.DONE, Status.FAILED}:
            return "not finished"
        return email_send_once(
            row=submission,
            address=submission.dentist_email,
            build=build,
            label="notify_dentist: submission",
        )


def review_request_email_answer(*, review_request_id: int, build: Callable[[ReviewRequest], EmailMessage]) -> str:
    """E-mail the dentist the specialist's answer, once; returns what happened (the task's result).

    Queued on commit when a reviewer answers (``review_request_answer``). Locks the request only
    (``of=("self",)``): the submission is read for its address and link, not written.
    """
    with transaction.atomic():
        review = (
            review_requests_select_for_update(of=("self",))
            .select_related("submission", "implant__manufacturer")
            .filter(pk=review_request_id)
            .first()
        )
        if review is None:
            return "missing"
        if review.answered_at is None:
            return "not answered"
        return email_send_once(
            row=review,
            address=review.submission.dentist_email,
            build=build,
            label="notify_review: review",
        )


def email_send_once(*, row: Row, address: str, build: Callable[[Row], EmailMessage], label: str) -> str:
    """Send ``build(row)`` to ``address`` unless ``row`` was e-mailed before; returns what happened.

    ``row`` is a Submission or a ReviewRequest, locked by the caller in its open transaction: it
    stays locked while the message is sent, so two copies of the task cannot both send, and its
    ``notified_at`` is set only when the send succeeded. A row over the address's daily limit is
    marked (``email_skipped_reason``, for staff) and never sent. A failed send raises: the task is
    delivered again later (django-q retry). ``label`` starts each log line (the task and the kind
    of row); the lines carry the row's id only, never the patient or the address.
    """
    if row.notified_at is not None:
        return "already notified"
    if not address:
        return "no e-mail"
    if row.email_skipped_reason:
        return "skipped"
    if not email_within_daily_limit(address):
        row.email_skipped_reason = _("limite diário de e-mails para este endereço atingido")
        _save(row, "email_skipped_reason")
        logger.warning("%s %s e-mail not sent: address over its daily limit", label, row.pk)
        return "daily limit"
    try:
        build(row).send(fail_silently=False)
    except Exception as exc:
        logger.warning("%s %s e-mail failed (%s); will retry", label, row.pk, type(exc).__name__)
        raise
    row.notified_at = timezone.now()
    _save(row, "notified_at")
    logger.info("%s %s e-mail sent", label, row.pk)
    return "sent"


def _save(row: Submission | ReviewRequest, field: str) -> None:
    """Validate and save the one field written (the rest of the row is not this service's)."""
    others = [f.name for f in row._meta.fields if f.name != field]
    row.full_clean(exclude=others, validate_unique=False, validate_constraints=False)
    row.save(update_fields=[field])


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
