"""Crop & re-match: the region of a stored X-ray that the dentist marked on the result page, sent
again as a new Submission linked to the original — the one-region case of
``submissions.intake.regions`` (same checks, same child submission, numbered after the film's
earlier regions). The dentist, patient and tooth are the original's (the tooth the dentist gave
for the region, when given), through the same field specification as on every other route.
"""

from __future__ import annotations

from collections.abc import Mapping

from submissions.intake.regions import intake_from_region, load_image, parse_region
from submissions.models import Submission
from submissions.services import IntakeRecord


def intake_from_crop(parent: Submission, box: Mapping[str, object]) -> IntakeRecord:
    """The region ``box`` (image pixels, clamped to the image; optional ``tooth``) of ``parent``'s
    X-ray as an intake."""
    original = load_image(parent)
    region = parse_region(
        {**box, "tooth": box.get("tooth") or ""},
        "Recorte",
        width=original.width,
        height=original.height,
        field="box",
        clamp=True,
        tooth_required=False,
        small="pequeno",
    )
    return intake_from_region(parent, original, region, parent.crops.count() + 1)
