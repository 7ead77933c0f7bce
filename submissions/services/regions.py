"""One more region of a stored film: crop & re-match on the result page."""

from __future__ import annotations

import logging

from django.db import transaction

from submissions.locks import submissions_select_for_update
from submissions.models import Submission
from submissions.regions import check_added_region, intake_from_region
from submissions.services.intake import submission_create

logger = logging.getLogger(__name__)


@transaction.atomic
def submission_add_region(*, film_id: int, region, width: int, height: int) -> Submission:
    """Add ``region`` (a ``submissions.regions.Region`` of the film's ``width`` × ``height``
    picture, checked against its header) to the film ``film_id`` as a child submission, through
    the region rules: at most ``RAIOX_MAX_REGIONS`` regions, none overlapping another, numbered
    after the film's last. The worker cuts its pixels from the stored film.

    Lock order: the film's row first (``select_for_update``), then its regions are read and the
    new one inserted. The worker's found regions (``submission_create_found_regions``) take the
    same order — the film, then its children — so two crops sent at once, or a crop and the
    finder, queue on the film's row one after the other (each sees the other's region) and never
    deadlock. Nothing else locks a child before its film."""
    film = submissions_select_for_update().get(pk=film_id)
    existing = list(film.crops.order_by("pk"))
    number = check_added_region(region, existing)
    child, _created = submission_create(intake=intake_from_region(film, region, number, width=width, height=height))
    logger.info("crop: submission %s -> region %s (%s)", film.pk, number, child.pk)
    return child
