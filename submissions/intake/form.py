"""The old form's shape: ``nome``, ``email``, ``paciente``, ``dente`` and the X-ray in ``file``
(multipart). The upload page, ``POST /upload``, ``POST /api/match/`` and the old plain form on
``POST /jotform`` all send it; errors name those fields (``FORM_NAMES``).
"""

from __future__ import annotations

import time
from collections.abc import Collection, Mapping
from typing import Any

from django.conf import settings
from django.db.models import Count, Min
from django.utils import timezone
from django.utils.datastructures import MultiValueDict
from django_q.brokers import get_broker

from kernel.errors import ApplicationError
from kernel.queue import RESULT_CHANNEL, notifications, waiting_tasks
from submissions.fields import IntakeRecord, intake_record, missing
from submissions.intake.fields import FORM_NAMES, answers_from, client_names, read_file
from submissions.models import Status, Submission
from submissions.services import submission_create_with_regions

# What the dentist must fill in on each route that sends this shape.
PAGE_REQUIRED = ("dentist_name", "dentist_email", "patient", "tooth")
PLAIN_FORM_REQUIRED = ("dentist_name", "dentist_email")
API_REQUIRED: tuple[str, ...] = ()  # POST /upload and /api/match/: only the file


def intake_from_form(
    data: Mapping[str, Any],
    files: MultiValueDict,
    *,
    source: str,
    required: Collection[str] = (),
    external_id_value: object = "",
    owner_id: int | None = None,
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
        owner_id=owner_id,
        errors=errors,
    )


def queue_is_busy() -> bool:
    """True when a new task would not be done within RAIOX_UPLOAD_WAIT_SECONDS anyway: at least
    RAIOX_UPLOAD_BUSY_QUEUE_DEPTH tasks wait for a worker, or the oldest waiting task has waited
    longer than that (no worker alive, or all stuck). One query on the ORM broker's queue."""
    queued = waiting_tasks()
    if queued is None:  # Redis: its length is all it cheaply tells
        return get_broker().queue_size() >= settings.RAIOX_UPLOAD_BUSY_QUEUE_DEPTH
    now = timezone.now()
    waiting = queued.aggregate(depth=Count("id"), oldest=Min("lock"))
    if waiting["depth"] >= settings.RAIOX_UPLOAD_BUSY_QUEUE_DEPTH:
        return True
    oldest = waiting["oldest"]
    return oldest is not None and (now - oldest).total_seconds() > settings.RAIOX_UPLOAD_WAIT_SECONDS


# The longest wait between two reads of the submission: the worker's NOTIFY at commit
# (``RESULT_CHANNEL``) wakes the request at once; this only bounds the wait where notifications do
# not arrive (PgBouncer in transaction mode, inside a test's transaction).
POLL_SECONDS = 0.25


def wait_for_result(submission_id: int, seconds: float) -> None:
    """Wait up to ``seconds`` for the worker to finish a submission. The web process LISTENs for
    the worker's notification (``kernel.queue.notifications``) and reads the status when woken (a
    cheap indexed read); the worker does the matching."""
    deadline = time.monotonic() + seconds
    with notifications(RESULT_CHANNEL) as wait:
        while True:
            # Read after LISTEN: a result recorded between the two still wakes the next wait.
            state = Submission.objects.filter(pk=submission_id).values_list("status", flat=True).first()
            remaining = deadline - time.monotonic()
            if state in (Status.DONE, Status.FAILED) or remaining <= 0:
                return
            wait(min(POLL_SECONDS, remaining), str(submission_id))


def submit_and_wait(
    data: Mapping[str, Any], files: MultiValueDict, *, source: str, regions: object = None, owner=None
) -> Submission:
    """``POST /upload`` and ``POST /api/match/``: store the X-ray (only the file is required), and
    one submission per marked implant (``regions``, checked first), then wait up to
    RAIOX_UPLOAD_WAIT_SECONDS for a worker (``owner``: the API user sending it, recorded on the
    film and its regions) — unless the queue is busy (``queue_is_busy``), when
    waiting would only hold a web worker that other dentists need: the caller answers 202 with the
    status URL at once. The web process waits on the database only (``wait_for_result``: woken by the
    result's NOTIFY, or polling where LISTEN is off), never on the model."""
    busy = queue_is_busy()  # read before our own task joins the queue
    with client_names(FORM_NAMES):
        submission, _created, _regions = submission_create_with_regions(
            intake=intake_from_form(
                data, files, source=source, required=API_REQUIRED, owner_id=getattr(owner, "pk", None)
            ),
            raw_regions=regions,
        )
    if not busy:
        wait_for_result(submission.pk, settings.RAIOX_UPLOAD_WAIT_SECONDS)
        submission.refresh_from_db()
    return submission
