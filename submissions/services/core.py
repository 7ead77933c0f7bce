"""Every write to submissions. Intake adapters, pages, the API, admin actions and worker tasks all
call these functions; nothing writes a Submission or a Match any other way.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.storage import default_storage
from django.db import DatabaseError, IntegrityError, transaction
from django.http import Http404
from django.utils import timezone

from kernel.errors import ApplicationError, ServiceUnavailable, application_error_from_validation
from kernel.files import stored_file
from kernel.imaging import ValidatedImage, inspect_image
from kernel.queue import enqueue_on_commit, notify
from kernel.storage_keys import submission_image_key
from submissions.messages import SEND_THE_IMAGE
from submissions.models import Match, Source, Status, Submission

logger = logging.getLogger(__name__)

# Queued by dotted path: submissions never imports matching (dependencies run one way).
PROCESS_TASK = "matching.tasks.process_submission"
NOTIFY_TASK = "submissions.tasks.notify_dentist"
# NOTIFY channel announcing a finished submission (payload: its id), waited on by POST /upload.
RESULT_CHANNEL = "submission_result"


@dataclass(frozen=True)
class IntakeRecord:
    """What every intake adapter turns its request into, through the one field specification
    (``submissions.intake.fields.intake_record``): values here are already checked and cleaned."""

    source: str
    dentist_name: str = ""
    dentist_email: str = ""
    patient: str = ""
    tooth: str = ""
    image_bytes: bytes | None = None
    filename: str = ""
    # When the sender gave only a URL (Jotform keeps uploads on its servers), the worker fetches it.
    remote_image_url: str = ""
    external_id: str = ""
    parent_id: int | None = None
    crop_box: dict | None = field(default=None)
    # The API user sending it (``POST /api/match/``) or the film's owner for its regions.
    owner_id: int | None = None


@dataclass(frozen=True)
class MatchCandidate:
    implant_id: int
    reference_image_id: int | None
    similarity: float
    # From the active calibration of the model that answered (None / "": none yet).
    probability: float | None = None
    band: str = ""


def _queue_processing(submission_id: int) -> None:
    # ack_failure=False: a task that raised (download or storage trouble) stays queued and is
    # delivered again after Q_CLUSTER["retry"] seconds, up to max_attempts. Queued in the caller's
    # transaction (kernel.queue): the submission and its task commit together or not at all.
    enqueue_on_commit(PROCESS_TASK, submission_id, group="submissions", ack_failure=False)


def _queue_notification(submission_id: int) -> None:
    # The dentist's e-mail is its own task: a failed send is retried there and never blocks or
    # undoes the result.
    enqueue_on_commit(NOTIFY_TASK, submission_id, group="notifications", ack_failure=False)


def submission_create(*, intake: IntakeRecord) -> tuple[Submission, bool]:
    """Validate an intake, store its image and create the Submission in one step.

    Returns ``(submission, created)``. A repeated delivery (same source and external id) returns
    the existing Submission and stores nothing. The fields were checked by the intake
    specification (``submissions.intake.fields``); the model's ``full_clean`` stays as the guard
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


def submission_get_by_token(token: object) -> Submission:
    """The only way a public page reaches a Submission: its unguessable token. 404 otherwise."""
    try:
        return Submission.objects.get(token=token)
    except (Submission.DoesNotExist, ValidationError, ValueError) as exc:
        raise Http404 from exc


def may_read_every_submission(user) -> bool:
    """Staff who read submissions (reviewers, the API's staff reads): logged in, staff, and holding
    the model's view permission."""
    return bool(
        user is not None and user.is_authenticated and user.is_staff and user.has_perm("submissions.view_submission")
    )


def access_submission_by_token(token: object, *, user) -> Submission:
    """The one rule for an API user reaching a submission by its token (``GET /api/match/<token>/``,
    asking or reading its specialist review). 404 otherwise, the answer of an unknown token, so a
    token seen elsewhere tells another API user nothing, not even that the submission exists.

    - Sent through the API (``source=api``: ``POST /api/match/`` and its regions): its ``owner``
      only, or staff who read every submission (``may_read_every_submission``). An API row without
      an owner (its user deleted, or sent before owners were recorded) is staff's alone.
    - Sent by an anonymous route (the upload page, ``/upload``, Jotform, the webhook): the token
      is the capability, as today. Those senders have no account to be checked against; they get
      the token (or its e-mailed link) and the result page ``/r/<token>/`` opens for whoever holds
      it, without logging in (DESIGN.md, Privacy: "reachable only through unguessable tokens"). The
      API then gives a token holder nothing the page does not.

    The result page itself stays a capability for API rows too: the API answer's ``result_url``
    and the result e-mail are the links the owner hands to the dentist, who has no API account."""
    submission = submission_get_by_token(token)
    if submission.source != Source.API:
        return submission
    if may_read_every_submission(user):
        return submission
    if user is not None and user.is_authenticated and submission.owner_id == user.pk:
        return submission
    raise Http404


@transaction.atomic
def submission_attach_image(*, submission_id: int, image: ValidatedImage) -> Submission:
    """Store the worker's decoded image: fetched from the sender's host (Jotform keeps uploads on
    its own), or decoded from the original kept at intake, which it replaces (deleted on commit).
    A submission whose image is already decoded (``content_hash`` set) is left as it is."""
    submission = Submission.objects.select_for_update().get(pk=submission_id)
    if submission.content_hash and submission.image:
        return submission
    original = submission.image.name if submission.image else ""
    key = submission_image_key(submission, image.filename)
    with stored_file(key, image.content) as name:
        submission.image.name = name
        submission.content_hash = image.content_hash
        submission.remote_image_url = ""
        submission.save(update_fields=["image", "content_hash", "remote_image_url"])
    if original and original != submission.image.name:
        transaction.on_commit(lambda: default_storage.delete(original))
    return submission


class SubmissionBusy(Exception):
    """Another worker is processing this submission right now (in its batch): the task raises so
    that django-q delivers it again after Q_CLUSTER["retry"] seconds, when that worker is done
    (then "already done") or dead (then this task processes it)."""


def _processing_lease_live(submission: Submission) -> bool:
    """A submission is being processed by a live worker while it is ``processing`` with a start
    younger than Q_CLUSTER["timeout"] (django-q kills a task that runs longer). A worker that
    stops without finishing clears ``started_at`` (``submission_release``); one that was killed
    leaves it to expire."""
    if submission.status != Status.PROCESSING or submission.started_at is None:
        return False
    return (timezone.now() - submission.started_at).total_seconds() < settings.Q_CLUSTER.get("timeout", 120)


def _start(submission: Submission, now) -> None:
    submission.status = Status.PROCESSING
    submission.started_at = now
    submission.failure_reason = ""
    submission.attempts += 1


@transaction.atomic
def submission_start_processing(*, submission_id: int) -> Submission | None:
    """Mark a submission as processing; None when it is already finished (idempotent re-delivery,
    or processed in another task's batch). Raises ``SubmissionBusy`` while another worker has it."""
    # The film of a region comes along (unlocked): the worker cuts the region from the film's
    # picture in its prepare threads, which read storage only (``submission_decode_pending_image``).
    submission = Submission.objects.select_for_update(of=("self",)).select_related("parent").get(pk=submission_id)
    if submission.status in (Status.DONE, Status.FAILED):
        return None
    if _processing_lease_live(submission):
        raise SubmissionBusy(submission_id)
    _start(submission, timezone.now())
    submission.save(update_fields=["status", "started_at", "failure_reason", "attempts"])
    return submission


@transaction.atomic
def submission_claim_waiting(*, limit: int, exclude: int | None = None) -> list[Submission]:
    """Mark up to ``limit`` submissions waiting in the queue (``received``, oldest first) as
    processing, for a worker that processes them in one batch. Rows another worker is claiming are
    skipped (SKIP LOCKED), so two workers never claim the same one. Each keeps its own task, which
    finds it finished ("already done"), or retries while the batch runs (``SubmissionBusy``)."""
    if limit <= 0:
        return []
    waiting = (
        Submission.objects.select_for_update(skip_locked=True, of=("self",))
        .select_related("parent")  # as in ``submission_start_processing``
        .filter(status=Status.RECEIVED)
    )
    if exclude is not None:
        waiting = waiting.exclude(pk=exclude)
    claimed = list(waiting.order_by("received_at", "pk")[:limit])
    now = timezone.now()
    for submission in claimed:
        _start(submission, now)
    Submission.objects.bulk_update(claimed, ["status", "started_at", "failure_reason", "attempts"])
    return claimed


@transaction.atomic
def submission_release(*, submission_id: int, count_attempt: bool = True) -> None:
    """A worker stops processing a submission without a result (a transient error): the lease
    ends at once, so its task, delivered again, processes it. ``count_attempt=False`` for a batch
    mate: the attempt is its own task's to count."""
    submission = Submission.objects.select_for_update().get(pk=submission_id)
    if submission.status != Status.PROCESSING:
        return
    submission.started_at = None
    if not count_attempt and submission.attempts:
        submission.attempts -= 1
    submission.save(update_fields=["started_at", "attempts"])


@transaction.atomic
def submission_record_result(
    *,
    submission_id: int,
    embedding: Sequence[float] | None,
    model_id: str,
    candidates: Sequence[MatchCandidate],
    fixtures: Sequence[dict] | None = None,
    quality_problems: Sequence[str] = (),
    both_orientations: bool = False,
) -> Submission:
    """Save the embedding and the ranked candidates, replacing any earlier ones, and mark done.

    ``fixtures``: what the worker's finder saw (``Submission.fixtures``; None: it did not run, the
    field is left as it is); ``quality_problems``: codes (``submissions.fixtures``);
    ``both_orientations``: the apex end was uncertain and both orientations were compared. A film
    answered without candidates (nothing found, the dentist's regions, several fixtures) has no
    embedding (``embedding=None``)."""
    submission = Submission.objects.select_for_update().get(pk=submission_id)
    _record_done(
        submission,
        embedding=embedding,
        model_id=model_id,
        candidates=candidates,
        fixtures=fixtures,
        quality_problems=quality_problems,
        both_orientations=both_orientations,
    )
    return submission


def _record_done(
    submission: Submission,
    *,
    embedding: Sequence[float] | None,
    model_id: str,
    candidates: Sequence[MatchCandidate],
    fixtures: Sequence[dict] | None,
    quality_problems: Sequence[str],
    both_orientations: bool,
) -> None:
    """The result of a submission locked by the caller's transaction: its Matches, its finding,
    done, the e-mail queued and the waiting requests woken at commit."""
    submission.matches.all().delete()
    Match.objects.bulk_create(
        [
            Match(
                submission=submission,
                implant_id=c.implant_id,
                reference_image_id=c.reference_image_id,
                rank=rank,
                similarity=c.similarity,
                probability=c.probability,
                band=c.band,
            )
            for rank, c in enumerate(candidates, start=1)
        ]
    )
    fields = ["embedding", "embedding_model", "status", "failure_reason", "finished_at"]
    if embedding is not None:
        submission.embedding = list(embedding)
        submission.embedding_model = model_id
    if fixtures is not None:
        submission.fixtures = [dict(f) for f in fixtures]
        submission.quality_problems = list(quality_problems)
        submission.both_orientations = bool(both_orientations)
        fields += ["fixtures", "quality_problems", "both_orientations"]
    submission.status = Status.DONE
    submission.failure_reason = ""
    submission.finished_at = timezone.now()
    submission.save(update_fields=fields)
    _queue_notification(submission.pk)
    notify(RESULT_CHANNEL, str(submission.pk))  # delivered at commit, when the result is readable


@transaction.atomic
def submission_fail(*, submission_id: int, reason: str) -> Submission:
    """Mark a submission failed with a reason a person can act on (shown on the result page)."""
    submission = Submission.objects.select_for_update().get(pk=submission_id)
    submission.status = Status.FAILED
    submission.failure_reason = reason[:2000]
    submission.finished_at = timezone.now()
    submission.save(update_fields=["status", "failure_reason", "finished_at"])
    _queue_notification(submission.pk)
    notify(RESULT_CHANNEL, str(submission.pk))
    return submission


@transaction.atomic
def submission_reprocess(*, submission_id: int) -> Submission:
    """Queue a submission again (admin action, stuck-task sweeper)."""
    submission = Submission.objects.select_for_update().get(pk=submission_id)
    submission.status = Status.RECEIVED
    submission.failure_reason = ""
    submission.save(update_fields=["status", "failure_reason"])
    _queue_processing(submission.pk)
    return submission
