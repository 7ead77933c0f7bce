"""Storing what intake received: one submission (``submission_create``), or a film and one child
submission per region the dentist marked (``submission_create_with_regions``). Each is queued for
the worker in the same transaction (``submissions.services.processing``).
"""

from __future__ import annotations

import logging

from django.core.exceptions import ValidationError
from django.db import DatabaseError, IntegrityError, transaction

from kernel.errors import ApplicationError, ServiceUnavailable, application_error_from_validation
from kernel.files import stored_file
from kernel.imaging import inspect_image
from kernel.storage_keys import submission_image_key
from submissions.fields import IntakeRecord
from submissions.messages import SEND_THE_IMAGE
from submissions.models import Source, Submission
from submissions.regions import FIELD as REGIONS_FIELD
from submissions.regions import intake_from_region, parse_regions
from submissions.services.processing import _queue_processing

logger = logging.getLogger(__name__)


def submission_create(*, intake: IntakeRecord) -> tuple[Submission, bool]:
    """Validate an intake, store its image and create the Submission in one step.

    Returns ``(submission, created)``. A repeated delivery (same source and external id) returns
    the existing Submission and stores nothing. The fields were checked by the intake
    specification (``submissions.fields``); the model's ``full_clean`` stays as the guard
    for every other caller. On any failure nothing is left behind: the file is deleted if the row
    could not be committed. Database or storage outages raise
    ``ServiceUnavailable`` (503) so the sender retries.
    """
    if intake.source not in Source.values:
        raise ApplicationError("Origem desconhecida.", field="source")
    external_id = intake.external_id
    try:
        # A repeated delivery is looked up first only when it carries bytes (not validated and
        # stored for nothing). Without bytes (Jotform's webhook) the insert itself tells: the
        # unique constraint refuses a repeat (IntegrityError below), so a new delivery costs one
        # transaction of two statements (the row, its task) and no lookup.
        if external_id and intake.image_bytes is not None:
            existing = Submission.objects.filter(source=intake.source, external_id=external_id).first()
            if existing is not None:
                return existing, False

        submission = Submission(
            source=intake.source,
            external_id=external_id,
            dentist_name=intake.dentist_name,
            dentist_email=intake.dentist_email,
            patient=intake.patient,
            tooth=intake.tooth,
            remote_image_url=intake.remote_image_url,
            original_filename=intake.filename,
            parent_id=intake.parent_id,
            crop_box=intake.crop_box,
            owner_id=intake.owner_id,
        )
        try:
            # validate_constraints=False: the one constraint is the (source, external_id) uniqueness,
            # which the database enforces and the IntegrityError branch below answers as a repeated
            # delivery. Checking it here too cost a query per webhook and, worse, turned a repeat
            # that raced its original (both past the lookup above) into a 400, so the sender
            # would give up on it (found by bench/intake under load).
            submission.full_clean(exclude=["image", "token"], validate_constraints=False)
        except ValidationError as exc:
            raise application_error_from_validation(exc) from exc

        if intake.image_bytes is None:
            # A region of a stored film (``crop_box`` on a child) needs no bytes: the worker cuts
            # it from the film (``submissions.services.remote``), the web process decodes nothing.
            is_region = intake.parent_id is not None and intake.crop_box is not None
            if not intake.remote_image_url and not is_region:
                raise ApplicationError(SEND_THE_IMAGE, field="file", code="missing_file")
            with transaction.atomic():
                submission.save()
                _queue_processing(submission.pk)
            return submission, True

        # Headers only here: the worker decodes the pixels (``decode_image``) and replaces this
        # original by its normalised PNG, so a crafted file never costs the web process memory.
        header = inspect_image(intake.image_bytes)
        key = submission_image_key(submission, header.filename)
        with stored_file(key, intake.image_bytes) as name:
            submission.image.name = name
            submission.save()
            _queue_processing(submission.pk)
        return submission, True
    except IntegrityError:
        # The same external id delivered twice at the same moment: the other request won the
        # unique constraint; our file was already deleted by stored_file. Answer with the winner.
        existing = Submission.objects.filter(source=intake.source, external_id=external_id).first()
        if existing is None:
            raise
        return existing, False
    except ApplicationError:
        raise
    except DatabaseError as exc:
        logger.error("intake: database unavailable (%s)", type(exc).__name__)
        raise ServiceUnavailable() from exc
    except OSError as exc:  # storage unreachable (boto3 errors are mapped below too)
        logger.error("intake: storage unavailable (%s)", type(exc).__name__)
        raise ServiceUnavailable() from exc
    except Exception as exc:
        if _is_storage_error(exc):
            logger.error("intake: storage unavailable (%s)", type(exc).__name__)
            raise ServiceUnavailable() from exc
        raise


def _is_storage_error(exc: Exception) -> bool:
    try:
        from botocore.exceptions import BotoCoreError, ClientError
    except ImportError:  # pragma: no cover - boto3 is a requirement
        return False
    return isinstance(exc, BotoCoreError | ClientError)


def submission_create_with_regions(
    *, intake: IntakeRecord, raw_regions: object
) -> tuple[Submission, bool, list[Submission]]:
    """Create the film's submission and one child submission per region (each queued and matched
    on its own); returns ``(film, created, regions' submissions in order)``. Every region is
    checked against the image's header before anything is stored (no decode in the web process:
    a 7000 × 7000 film with a region outside costs its header); each region is cut from the stored
    film by the worker. A repeated delivery (same external id) answers the regions created the
    first time."""
    if raw_regions in (None, "", []):
        film, created = submission_create(intake=intake)
        return film, created, []
    if intake.image_bytes is None:
        raise ApplicationError(
            "Para marcar regiões, envie o arquivo da imagem (não a URL).", field=REGIONS_FIELD, code="regions_need_file"
        )
    width, height = inspect_image(intake.image_bytes).oriented_size
    regions = parse_regions(raw_regions, width=width, height=height)
    with transaction.atomic():
        film, created = submission_create(intake=intake)
        if not created:
            return film, False, list(film.crops.order_by("pk"))
        children = [
            submission_create(intake=intake_from_region(film, region, n, width=width, height=height))[0]
            for n, region in enumerate(regions, start=1)
        ]
    return film, True, children
