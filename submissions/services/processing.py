"""The worker's writes to a submission: taking it (``submission_start_processing``, or a batch of
waiting ones with ``submission_claim_waiting``), letting it go (``submission_release``), storing its
decoded image (``submission_attach_image``), its result (``submission_record_result``) or its
failure (``submission_fail``), and queueing it again (``submission_reprocess``).
"""

from __future__ import annotations

from collections.abc import Sequence

from django.db import transaction
from django.utils import timezone

from kernel.files import delete_files_on_commit, stored_file
from kernel.imaging import ValidatedImage
from kernel.queue import RESULT_CHANNEL, enqueue_on_commit, notify, task_timeout
from kernel.storage_keys import submission_image_key
from submissions.fields import MatchCandidate
from submissions.locks import submissions_select_for_update
from submissions.models import Match, Status, Submission

# Queued by dotted path: submissions never imports matching (dependencies run one way).
PROCESS_TASK = "matching.tasks.process_submission"
NOTIFY_TASK = "submissions.tasks.notify_dentist"


def _queue_processing(submission_id: int) -> None:
    # ack_failure=False: a task that raised (download or storage trouble) stays queued and is
    # delivered again after Q_CLUSTER["retry"] seconds, up to max_attempts. Queued in the caller's
    # transaction (kernel.queue): the submission and its task commit together or not at all.
    enqueue_on_commit(PROCESS_TASK, submission_id, group="submissions", ack_failure=False)


def _queue_result_email(submission_id: int) -> None:
    # The dentist's e-mail is its own task: a failed send is retried there and never blocks or
    # undoes the result.
    enqueue_on_commit(NOTIFY_TASK, submission_id, group="notifications", ack_failure=False)


@transaction.atomic
def submission_attach_image(*, submission_id: int, image: ValidatedImage, original_hash: str = "") -> Submission:
    """Store the worker's decoded image: fetched from the sender's host (Jotform keeps uploads on
    its own), or decoded from the original kept at intake, which it replaces (deleted on commit).
    ``original_hash``: of the bytes as sent, so a later identical sending copies this PNG instead of
    decoding (``remote.submission_prepared_twin``). A submission whose image is already decoded
    (``content_hash`` set) is left as it is."""
    submission = submissions_select_for_update().get(pk=submission_id)
    if submission.content_hash and submission.image:
        return submission
    original = submission.image.name if submission.image else ""
    key = submission_image_key(submission, image.filename)
    with stored_file(key, image.content) as name:
        submission.image.name = name
        submission.content_hash = image.content_hash
        submission.original_hash = original_hash
        submission.remote_image_url = ""
        submission.save(update_fields=["image", "content_hash", "original_hash", "remote_image_url"])
    if original and original != submission.image.name:
        delete_files_on_commit([original])
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
    return (timezone.now() - submission.started_at).total_seconds() < task_timeout()


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
    submission = submissions_select_for_update(of=("self",)).select_related("parent").get(pk=submission_id)
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
        submissions_select_for_update(skip_locked=True, of=("self",))
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
    submission = submissions_select_for_update().get(pk=submission_id)
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
    submission = submissions_select_for_update().get(pk=submission_id)
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
    _queue_result_email(submission.pk)
    notify(RESULT_CHANNEL, str(submission.pk))  # delivered at commit, when the result is readable


@transaction.atomic
def submission_fail(*, submission_id: int, reason: str) -> Submission:
    """Mark a submission failed with a reason a person can act on (shown on the result page)."""
    submission = submissions_select_for_update().get(pk=submission_id)
    submission.status = Status.FAILED
    submission.failure_reason = reason[:2000]
    submission.finished_at = timezone.now()
    submission.save(update_fields=["status", "failure_reason", "finished_at"])
    _queue_result_email(submission.pk)
    notify(RESULT_CHANNEL, str(submission.pk))
    return submission


@transaction.atomic
def submission_reprocess(*, submission_id: int) -> Submission:
    """Queue a submission again (admin action, stuck-task sweeper)."""
    submission = submissions_select_for_update().get(pk=submission_id)
    submission.status = Status.RECEIVED
    submission.failure_reason = ""
    submission.save(update_fields=["status", "failure_reason"])
    _queue_processing(submission.pk)
    return submission
