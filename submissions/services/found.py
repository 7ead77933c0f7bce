"""The fixtures the worker found in a film, turned into regions: one child submission per fixture
(the region machinery of ``submissions.regions``), the film itself done without candidates
— a film with several implants is never answered as a whole."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from django.conf import settings
from django.db import transaction
from PIL import Image

from submissions.fixtures import region_box, suggested_quadrant
from submissions.locks import submissions_select_for_update
from submissions.models import Status, Submission
from submissions.regions import Region, intake_from_region
from submissions.services.intake import submission_create
from submissions.services.processing import _record_done


@transaction.atomic
def submission_create_found_regions(
    *,
    submission_id: int,
    image: Image.Image,
    fixtures: Sequence[dict],
    quality_problems: Sequence[str] = (),
    model_id: str = "",
) -> list[Submission]:
    """One child submission per found fixture of the film ``submission_id`` (``image``: its stored
    picture), each queued in this transaction, and the film done with no candidates and its
    ``fixtures`` (numbered left to right, as the children). ``fixtures``: ``{"box", "axis_deg",
    "apex", "score", "problems"}`` in the film's pixels; at most ``RAIOX_MAX_REGIONS`` are kept,
    the best scored. Each child's ``crop_box`` holds its number, the film's size, ``found`` and
    the suggested FDI quadrant on a panoramic (a suggestion: the child's ``tooth`` stays empty).

    Idempotent: a film that has regions already (a re-delivered task, or the dentist's own
    regions) gets none created; its existing ones are returned."""
    film = submissions_select_for_update().get(pk=submission_id)
    existing = list(film.crops.order_by("pk"))
    if existing:
        if film.status != Status.DONE:
            _record_done(
                film,
                embedding=None,
                model_id=model_id,
                candidates=[],
                fixtures=None,
                quality_problems=(),
                both_orientations=False,
            )
        return existing
    kept = sorted(fixtures, key=lambda f: -float(f["score"]))[: settings.RAIOX_MAX_REGIONS]
    kept.sort(key=lambda f: ((f["box"][0] + f["box"][2]) / 2, (f["box"][1] + f["box"][3]) / 2))
    width, height = image.size
    children, numbered = [], []
    for number, fixture in enumerate(kept, start=1):
        shown = {k: fixture[k] for k in ("box", "axis_deg", "apex", "score")}
        x, y, w, h = region_box(fixture["box"], width, height)
        record = intake_from_region(film, Region(x, y, w, h, ""), number, width=width, height=height, image=image)
        crop_box = {
            **(record.crop_box or {}),
            "found": True,
            "suggested_quadrant": suggested_quadrant(fixture["box"], width, height),
            "problems": list(fixture.get("problems", ())),
        }
        # The film's tooth names one implant: none of the found ones in particular.
        child, _created = submission_create(intake=dataclasses.replace(record, tooth="", crop_box=crop_box))
        children.append(child)
        numbered.append({**shown, "number": number})
    _record_done(
        film,
        embedding=None,
        model_id=model_id,
        candidates=[],
        fixtures=numbered,
        quality_problems=quality_problems,
        both_orientations=False,
    )
    return children
