"""What a dentist does on the result page: answer "é este"/"não é este", refine by the features
they see on the X-ray, crop the implant and ask again.

Re-ranking itself happens in the worker (``matching.tasks.process_submission``), which reads
``refine_filters`` and the dentist's rejections; these services record the request and queue it.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Mapping

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.storage import default_storage
from django.db import transaction
from PIL import Image

from implants.models import BodyShape, Connection, Level, ThreadShape
from kernel.errors import ApplicationError, application_error_from_validation
from submissions.models import DentistFeedback, Status, Submission, Verdict
from submissions.services.core import IntakeRecord, _queue_processing, submission_create

logger = logging.getLogger(__name__)

# The features a dentist can read on an X-ray, and the values each may take.
REFINE_FIELDS: dict[str, type] = {
    "connection": Connection,
    "body_shape": BodyShape,
    "level": Level,
    "thread_shape": ThreadShape,
}


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
        locked = Submission.objects.select_for_update().get(pk=submission.pk)
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
        locked = Submission.objects.select_for_update().get(pk=submission.pk)
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


def _parse_box(box: Mapping[str, object], width: int, height: int) -> dict[str, int]:
    try:
        x, y, w, h = (round(float(box[k])) for k in ("x", "y", "width", "height"))  # type: ignore[arg-type]
    except (KeyError, TypeError, ValueError) as exc:
        raise ApplicationError("Desenhe um retângulo em volta do implante.", field="box", code="invalid_box") from exc
    # Clamp to the image: a rectangle dragged past the edge means "up to the edge".
    x0, y0 = max(0, min(x, width)), max(0, min(y, height))
    x1, y1 = max(0, min(x + w, width)), max(0, min(y + h, height))
    min_side = settings.RAIOX_MIN_IMAGE_SIDE
    if x1 - x0 < min_side or y1 - y0 < min_side:
        raise ApplicationError(
            f"Recorte pequeno demais: marque uma área de pelo menos {min_side} × {min_side} pixels da imagem.",
            field="box",
            code="box_too_small",
        )
    return {"x": x0, "y": y0, "width": x1 - x0, "height": y1 - y0}


def submission_crop(*, submission: Submission, box: Mapping[str, object]) -> Submission:
    """Crop the stored X-ray to ``box`` (image pixels) and send the region as a new Submission,
    linked to the original (same dentist, patient and tooth), which is matched on its own."""
    if not submission.image:
        raise ApplicationError("A imagem ainda não foi recebida; tente de novo em instantes.", code="no_image")
    try:
        with default_storage.open(submission.image.name, "rb") as fh:
            original = Image.open(io.BytesIO(fh.read()), formats=("PNG", "JPEG"))
            original.load()
    except (OSError, SyntaxError, ValueError) as exc:
        # Until the worker has decoded it into its PNG, the stored file is the sender's original
        # (DICOM, HEIC...), which the web process does not decode.
        raise ApplicationError(
            "A imagem ainda está sendo processada; tente de novo em instantes.", code="not_ready", status=409
        ) from exc
    clean_box = _parse_box(box, original.width, original.height)
    region = original.crop(
        (clean_box["x"], clean_box["y"], clean_box["x"] + clean_box["width"], clean_box["y"] + clean_box["height"])
    )
    out = io.BytesIO()
    region.save(out, format="PNG")
    child, _ = submission_create(
        intake=IntakeRecord(
            source=submission.source,
            dentist_name=submission.dentist_name,
            dentist_email=submission.dentist_email,
            patient=submission.patient,
            tooth=submission.tooth,
            image_bytes=out.getvalue(),
            filename="recorte.png",
            parent_id=submission.pk,
            crop_box=clean_box,
        )
    )
    logger.info("crop: submission %s -> %s", submission.pk, child.pk)
    return child
