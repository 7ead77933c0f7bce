"""Builders for the page tests: real services, real catalogue images, no worker."""

from __future__ import annotations

import io
from collections.abc import Sequence

from django.core.files.storage import default_storage
from django_q.models import OrmQ
from PIL import Image

from implants.models import ReferenceImage
from matching.workers import worker_state_record
from submissions.services import (
    PROCESS_TASK,
    IntakeRecord,
    MatchCandidate,
    submission_create,
    submission_record_result,
)

UNTRAINED_MODEL = "ViT-B-32/untrained-seed0"


def reference_png(index: int = 0) -> bytes:
    reference = ReferenceImage.objects.order_by("id")[index]
    with default_storage.open(reference.image.name, "rb") as fh:
        return fh.read()


def png_bytes(size: tuple[int, int] = (200, 300), color: int = 128) -> bytes:
    out = io.BytesIO()
    Image.new("L", size, color).save(out, format="PNG")
    return out.getvalue()


def make_submission(*, patient: str = "Maria Souza", email: str = "dra.ana@example.com", image: bytes | None = None):
    submission, _ = submission_create(
        intake=IntakeRecord(
            source="upload",
            dentist_name="Dra. Ana",
            dentist_email=email,
            patient=patient,
            tooth="36",
            image_bytes=image if image is not None else png_bytes(),
            filename="rx.png",
        )
    )
    return submission


def finish(
    submission,
    similarities=(0.95, 0.90, 0.88, 0.80),
    model_id: str = UNTRAINED_MODEL,
    calibrated: Sequence[tuple[float, str]] | None = None,
):
    """Record a result as the worker would (first catalogue implants, given similarities), and
    the worker's own state: which model it runs, untrained or not. The worker took the
    submission's task from the queue first (queued with the submission, in its transaction).
    ``calibrated``: (probability, band) per candidate, as the worker stores them under an active
    calibration; None: the model is not calibrated yet."""
    scores = calibrated or [(None, "")] * len(similarities)
    for row in OrmQ.objects.all():
        if row.task.get("func") == PROCESS_TASK and row.task["args"] == (submission.pk,):
            row.delete()
    worker_state_record(model_id=model_id, untrained=model_id == UNTRAINED_MODEL, device="cpu")
    references = list(ReferenceImage.objects.select_related("implant").order_by("id")[: len(similarities)])
    return submission_record_result(
        submission_id=submission.pk,
        embedding=[0.01] * 512,
        model_id=model_id,
        candidates=[
            MatchCandidate(r.implant_id, r.pk, s, p, band)
            for r, s, (p, band) in zip(references, similarities, scores, strict=True)
        ],
    )


def queued(func: str) -> list[tuple]:
    """Tasks waiting in django-q's ORM broker for ``func``: their args."""
    return [q.task["args"] for q in OrmQ.objects.all() if q.task.get("func") == func]
