"""What a dentist does on the result page: answer "é este"/"não é este", refine by the features
they see on the X-ray. (Crop & re-match is an intake: ``submissions.intake.crop``.)

Re-ranking itself happens in the worker (``matching.tasks.process_submission``), which reads
``refine_filters`` and the dentist's rejections; these services record the request and queue it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from django.core.exceptions import ValidationError
from django.db import transaction

from implants.models import REFINE_FIELDS
from kernel.errors import ApplicationError, application_error_from_validation
from submissions.locks import submissions_select_for_update
from submissions.models import DentistFeedback, Status, Submission, Verdict
from submissions.services.processing import _queue_processing

logger = logging.getLogger(__name__)


def _requeue(submission: Submission) -> None:
    """Back to ``received`` and into the queue: the worker re-ranks with the stored embedding."""
    submission.status = Status.RECEIVED
    submission.failure_reason = ""
    submission.save(update_fields=["status", "failure_reason", "refine_filters"])
    _queue_processing(submission.pk)


def _clean_filters(filters: Mapping[str, object]) -> dict[str, str]:
    clean: dict[str, str] = {}
    for key, value in filters.items():
        if value in (None, ""):
            continue  # "qualquer": no constraint on this feature
        if key not in REFINE_FIELDS:
            raise ApplicationError("Filtro desconhecido.", field=key, code="unknown_filter")
        if value not in REFINE_FIELDS[key].values:
            raise ApplicationError("Valor de filtro inválido.", field=key, code="invalid_filter")
        clean[key] = str(value)
    return clean


def submission_refine(*, submission: Submission, filters: Mapping[str, object]) -> Submission:
    """Store the dentist's feature filters and queue a re-rank among implants having them."""
    clean = _clean_filters(filters)
    with transaction.atomic():
        locked = submissions_select_for_update().get(pk=submission.pk)
        if locked.status != Status.DONE and locked.embedding is None:
            raise ApplicationError(
                "Aguarde o primeiro resultado antes de refinar a busca.", code="not_ready", status=409
            )
        locked.refine_filters = clean
        _requeue(locked)
    return locked


def submission_record_feedback(*, submission: Submission, implant_id: int, verdict: str) -> DentistFeedback:
    """Record "é este" / "não é este" on one candidate (one answer per implant, the last wins).

    "Não é este" also queues a re-rank: the worker leaves rejected implants out, so the candidate is
    not offered again for this X-ray. "É este" is exclusive: it replaces an earlier "é este" on
    another candidate, so staff see one answer to confirm.
    """
    if verdict not in Verdict.values:
        raise ApplicationError("Resposta inválida.", field="verdict", code="invalid_verdict")
    with transaction.atomic():
        locked = submissions_select_for_update().get(pk=submission.pk)
        if not locked.matches.filter(implant_id=implant_id).exists():
            raise ApplicationError(
                "Este implante não está entre os candidatos deste envio.", field="implant_id", code="not_a_candidate"
            )
        feedback = DentistFeedback.objects.filter(submission=locked, implant_id=implant_id).first()
        if feedback is None:
            feedback = DentistFeedback(submission=locked, implant_id=implant_id)
        feedback.verdict = verdict
        try:
            feedback.full_clean(validate_unique=False)
        except ValidationError as exc:
            raise application_error_from_validation(exc) from exc
        feedback.save()
        if verdict == Verdict.IS_THIS:
            DentistFeedback.objects.filter(submission=locked, verdict=Verdict.IS_THIS).exclude(
                implant_id=implant_id
            ).delete()
        else:
            _requeue(locked)
    return feedback
