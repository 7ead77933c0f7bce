"""The old form's shape: ``nome``, ``email``, ``paciente``, ``dente`` and the X-ray in ``file``
(multipart). The upload page, ``POST /upload``, ``POST /api/match/`` and the old plain form on
``POST /jotform`` all send it; errors name those fields (``FORM_NAMES``).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from django.conf import settings
from django.utils.datastructures import MultiValueDict

from kernel.errors import ApplicationError
from submissions.intake.fields import (
    FORM_NAMES,
    answers_from,
    client_names,
    intake_record,
    missing,
    read_file,
)
from submissions.intake.regions import create_with_regions
from submissions.models import Submission
from submissions.results import wait_for_result
from submissions.services import IntakeRecord

# What the dentist must fill in on each route that sends this shape.
PAGE_REQUIRED = ("dentist_name", "dentist_email", "patient", "tooth")
PLAIN_FORM_REQUIRED = ("dentist_name", "dentist_email")


def intake_from_form(
    data: Mapping[str, Any],
    files: MultiValueDict,
    *,
    source: str,
    required: Collection[str] = (),
    external_id_value: object = "",
) -> IntakeRecord:
    """The form's answers and file as an ``IntakeRecord``; every refusal at once (``IntakeInvalid``)."""
    errors: list[ApplicationError] = []
    try:
        image, name = read_file(files)
    except ApplicationError as exc:
        errors.append(exc)
        image, name = None, ""
    if image is None and not errors:
        errors.append(missing("file"))
    return intake_record(
        source=source,
        answers=answers_from(data),
        required=required,
        image_bytes=image,
        original_filename=name,
        external_id_value=external_id_value,
        errors=errors,
    )


def submit_and_wait(
    data: Mapping[str, Any], files: MultiValueDict, *, source: str, regions: object = None
) -> Submission:
    """``POST /upload`` and ``POST /api/match/``: store the X-ray (only the file is required), and
    one submission per marked implant (``regions``, checked first), then wait up to
    RAIOX_UPLOAD_WAIT_SECONDS for a worker. The web process only polls the database."""
    with client_names(FORM_NAMES):
        submission, _created, _regions = create_with_regions(intake_from_form(data, files, source=source), regions)
    wait_for_result(submission.pk, settings.RAIOX_UPLOAD_WAIT_SECONDS)
    submission.refresh_from_db()
    return submission
