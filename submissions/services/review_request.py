"""A specialist's review, asked for by the dentist from the result page or the API.

The dentist asks once per X-ray (``review_request_create``; the one-to-one column makes a repeated
or concurrent ask return the same request). A reviewer answers once (``review_request_answer``):
with the implant — which is the staff confirmation (``submission_confirm``), so the X-ray also
becomes a reference image and teaches the matcher — or "not identifiable" with a note. The first
answer wins: the row is locked and an answered request refuses a second answer (409). The answer
is e-mailed once (``services/email.py`` ``review_request_email_answer``, queued on commit by dotted
path).
"""

from __future__ import annotations

import logging

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from implants.models import Implant
from kernel.errors import ApplicationError, application_error_from_validation
from kernel.queue import enqueue_on_commit
from submissions import fields
from submissions.locks import review_requests_select_for_update
from submissions.messages import NO_STORED_IMAGE
from submissions.models import ReviewOutcome, ReviewRequest, Status, Submission
from submissions.services.review import submission_confirm

logger = logging.getLogger(__name__)

NOTIFY_REVIEW_TASK = "submissions.tasks.notify_review"
NOTE_LIMIT = ReviewRequest._meta.get_field("note").max_length


def _note(value: object, field: str) -> str:
    return fields.text(value, field=field, limit=NOTE_LIMIT)


def review_request_create(*, submission: Submission, note: object = "") -> tuple[ReviewRequest, bool]:
    """Ask for a specialist's review of ``submission``; returns ``(request, created)``.

    Asking again (a second click, a retried API call, two tabs at once) returns the existing
    request unchanged: the unique ``submission`` column decides, not a read-then-write.
    """
    clean_note = _note(note, "note")
    if submission.status not in (Status.DONE, Status.FAILED):
        raise ApplicationError(
            "Aguarde o resultado automático antes de pedir a revisão de um especialista.", code="not_ready", status=409
        )
    if not submission.image:
        raise ApplicationError(NO_STORED_IMAGE, field="image", code="no_image")
    existing = ReviewRequest.objects.filter(submission=submission).first()
    if existing is not None:
        return existing, False
    review = ReviewRequest(submission=submission, note=clean_note)
    try:
        review.full_clean(validate_unique=False)
    except ValidationError as exc:
        raise application_error_from_validation(exc) from exc
    try:
        with transaction.atomic():
            review.save()
    except IntegrityError:
        # Another request for the same X-ray won the race: that one is the request.
        return ReviewRequest.objects.get(submission=submission), False
    logger.info("review_request: submission %s asked for a specialist", submission.pk)
    return review, True


def review_request_answer(
    *,
    review_request: ReviewRequest,
    user: AbstractBaseUser | None,
    implant: Implant | None = None,
    note: object = "",
) -> ReviewRequest:
    """Answer a review: ``implant`` (identified; also confirms the submission) or none (not
    identifiable; ``note`` then says why). Raises 409 when someone answered first."""
    clean_note = _note(note, "answer_note")
    if implant is None and not clean_note:
        raise ApplicationError(
            "Explique ao dentista por que o implante não é identificável.", field="answer_note", code="required"
        )
    with transaction.atomic():
        # The lock makes a second reviewer wait here, then see the first one's answer. Lock order
        # (``submissions.locks``): this request, then its submission (``submission_confirm``).
        locked = review_requests_select_for_update().get(pk=review_request.pk)
        if locked.answered_at is not None:
            raise ApplicationError(
                "Este pedido já foi respondido por outro revisor.", field="review", code="already_answered", status=409
            )
        if implant is not None:
            submission_confirm(submission=locked.submission, implant=implant, user=user)
        locked.outcome = ReviewOutcome.IDENTIFIED if implant is not None else ReviewOutcome.NOT_IDENTIFIABLE
        locked.implant = implant
        locked.answer_note = clean_note
        locked.answered_by = user if user is not None and user.is_authenticated else None
        locked.answered_at = timezone.now()
        try:
            locked.full_clean(exclude=["submission"], validate_unique=False)
        except ValidationError as exc:
            raise application_error_from_validation(exc) from exc
        locked.save(update_fields=["outcome", "implant", "answer_note", "answered_by", "answered_at"])
        review_id = locked.pk
        enqueue_on_commit(NOTIFY_REVIEW_TASK, review_id, group="notifications", ack_failure=False)
    logger.info("review_request: %s answered (%s)", locked.pk, locked.outcome)
    return locked
