from __future__ import annotations

import io

import pytest
from PIL import Image, ImageDraw

from submissions.fields import IntakeRecord, MatchCandidate
from submissions.services.intake import submission_create

PATIENT = "Zebulom Quintanilha-Brandão"


def xray_png() -> bytes:
    img = Image.new("L", (320, 320), 20)
    draw = ImageDraw.Draw(img)
    draw.rectangle((140, 40, 180, 280), fill=220)  # an implant-like bright post
    for y in range(60, 270, 18):
        draw.line((130, y, 190, y + 6), fill=250, width=3)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture
def make_submission(db):
    def make(*, source: str = "upload", patient: str = PATIENT, external_id: str = ""):
        submission, _ = submission_create(
            intake=IntakeRecord(
                source=source,
                dentist_name="Dra. Teste",
                dentist_email="dra.teste@example.com",
                patient=patient,
                tooth="36",
                image_bytes=xray_png(),
                filename="rx.png",
                external_id=external_id,
            )
        )
        return submission

    return make


def finish(submission, *, model_id: str = "ViT-B-32/untrained-seed0", untrained: bool = True) -> None:
    """What the worker does after embedding (the services it calls)."""
    from implants.models import Implant
    from matching.workers import worker_state_record
    from submissions.services.processing import submission_record_result, submission_start_processing

    worker_state_record(model_id=model_id, untrained=untrained, device="cpu")
    submission_start_processing(submission_id=submission.pk)
    implant = Implant.objects.first()
    candidates = [MatchCandidate(implant.pk, None, 0.9)] if implant else []
    submission_record_result(
        submission_id=submission.pk, embedding=[0.1] * 512, model_id=model_id, candidates=candidates
    )
