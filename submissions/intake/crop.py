"""Crop & re-match: the region of a stored X-ray that the dentist marked on the result page, sent
again as a new Submission linked to the original — one more region of the film
(``submissions.regions``): the same checks, the same child submission, the same rules
(``RAIOX_MAX_REGIONS``, no overlap with the film's other regions, numbered after them), applied
under a lock on the film (``submissions.services.regions``). The box is checked against the size
the stored film's header declares; the worker cuts the pixels. The dentist, patient and tooth are
the original's (the tooth the dentist gave for the region, when given), through the same field
specification as on every other route.
"""

from __future__ import annotations

from collections.abc import Mapping

from submissions.models import Submission
from submissions.regions import parse_region, stored_size
from submissions.services.regions import submission_add_region


def crop_create(parent: Submission, box: Mapping[str, object]) -> Submission:
    """The region ``box`` (image pixels, clamped to the image; optional ``tooth``) of ``parent``'s
    X-ray as a new region of it; raises ``ApplicationError`` (field ``box``) when refused."""
    width, height = stored_size(parent)
    region = parse_region(
        {**box, "tooth": box.get("tooth") or ""},
        "Recorte",
        width=width,
        height=height,
        field="box",
        clamp=True,
        tooth_required=False,
        small="pequeno",
    )
    return submission_add_region(film_id=parent.pk, region=region, width=width, height=height)
