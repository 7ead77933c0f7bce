"""One way to make a submission and one way to finish it, for every folder's tests.

- ``submission_received``: through ``submission_create``, as an intake adapter would (the image
  stored, the processing task queued in the same transaction).
- ``submission_finished``: what the worker does after embedding, through the same services: the
  worker's own state (which model, untrained or not), the task taken from the queue, processing
  started, the result recorded. Which of these a test needs is a parameter.
- ``submission_row``: a row as the worker would have left it, with chosen timestamps (the
  back-office figures), by ``SubmissionFactory``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence

from django.core.files.storage import default_storage
from django_q.models import OrmQ

from implants.models import Implant, ReferenceImage
from matching.workers import worker_state_record
from submissions.models import Status, Submission
from submissions.services import (
    PROCESS_TASK,
    IntakeRecord,
    MatchCandidate,
    submission_create,
    submission_record_result,
    submission_start_processing,
)
from testkit.images import plain_image, xray_file
from tests.builders.factories import SubmissionFactory

UNTRAINED_MODEL = "ViT-B-32/untrained-seed0"


def submission_received(
    *,
    source: str = "upload",
    dentist_name: str = "Dra. Ana",
    dentist_email: str = "ana@example.com",
    patient: str = "Maria Paciente",
    tooth: str = "36",
    image: bytes | None = None,
    filename: str = "",
    external_id: str = "",
) -> Submission:
    """A submission as received (``image``: the tests' small X-ray unless given)."""
    submission, _ = submission_create(
        intake=IntakeRecord(
            source=source,
            dentist_name=dentist_name,
            dentist_email=dentist_email,
            patient=patient,
            tooth=tooth,
            image_bytes=image if image is not None else xray_file(),
            filename=filename,
            external_id=external_id,
        )
    )
    return submission


def jotform_submission(sid: str, *, received_at: dt.datetime | None = None) -> Submission:
    """What the Jotform webhook made of submission ``sid`` (received now, or at ``received_at``)."""
    submission = submission_received(
        source="jotform",
        external_id=sid,
        dentist_name="Dr. Jota",
        dentist_email="jota@example.com",
        patient="Paciente Jotform",
        tooth="46",
        image=plain_image((200, 300), 128),
        filename="rx.png",
    )
    if received_at is not None:
        Submission.objects.filter(pk=submission.pk).update(received_at=received_at)
    return submission


def implant_candidates(similarities: Sequence[float], *, by_id: bool = True) -> list[MatchCandidate]:
    """The first catalogue implants (by id, or in the catalogue's own order), one per similarity,
    with no reference image; fewer when the catalogue holds fewer."""
    implants = Implant.objects.order_by("id") if by_id else Implant.objects.all()
    return [MatchCandidate(i.pk, None, s) for i, s in zip(implants[: len(similarities)], similarities)]


def reference_candidates(
    similarities: Sequence[float], calibrated: Sequence[tuple[float, str]] | None = None
) -> list[MatchCandidate]:
    """The first reference images (by id), one per similarity. ``calibrated``: (probability, band)
    per candidate, as the worker stores them under an active calibration; None: not calibrated."""
    scores = calibrated or [(None, "")] * len(similarities)
    references = list(ReferenceImage.objects.select_related("implant").order_by("id")[: len(similarities)])
    return [
        MatchCandidate(r.implant_id, r.pk, s, p, band)
        for r, s, (p, band) in zip(references, similarities, scores, strict=True)
    ]


def submission_finished(
    submission: Submission,
    *,
    candidates: Iterable[MatchCandidate] = (),
    model_id: str = "m",
    embedding: float = 0.0,
    worker_untrained: bool | None = None,
    task_taken: bool = False,
    started: bool = False,
) -> Submission:
    """Record ``candidates`` as the worker's result (an embedding of ``embedding`` everywhere).
    ``worker_untrained``: record the worker's state first (its model, untrained or not); None:
    leave it. ``task_taken``: the worker took the submission's task from the queue first.
    ``started``: processing started first (``submission_start_processing``)."""
    if task_taken:
        for row in OrmQ.objects.all():
            if row.task.get("func") == PROCESS_TASK and row.task["args"] == (submission.pk,):
                row.delete()
    if worker_untrained is not None:
        worker_state_record(model_id=model_id, untrained=worker_untrained, device="cpu")
    if started:
        submission_start_processing(submission_id=submission.pk)
    return submission_record_result(
        submission_id=submission.pk, embedding=[embedding] * 512, model_id=model_id, candidates=list(candidates)
    )


def submission_processed(submission: Submission) -> Submission:
    """The worker's whole path on an untrained model: its state recorded, processing started, the
    first implant in the catalogue's order answered (0.9), if there is one."""
    return submission_finished(
        submission,
        candidates=implant_candidates((0.9,), by_id=False),
        model_id=UNTRAINED_MODEL,
        embedding=0.1,
        worker_untrained=True,
        started=True,
    )


def submission_row(
    *,
    received_at: dt.datetime | None = None,
    seconds: float | None = 2.0,
    status: str = Status.DONE,
    source: str = "upload",
    matches: Sequence[Implant] = (),
    confirmed: Implant | None = None,
    patient: str = "Maria Paciente",
    failure_reason: str = "",
    dentist: str = "Dra. Ana",
    model_id: str = "",
) -> Submission:
    """A submission row as the worker would leave it (``seconds`` None: never started), with one
    match per implant of ``matches``, best first (fixtures only; the app writes via services)."""
    extra = {"received_at": received_at} if received_at is not None else {}
    return SubmissionFactory(
        **extra,
        finished=seconds is not None,
        seconds=seconds if seconds is not None else 0.0,
        status=status,
        source=source,
        matches=list(matches),
        confirmed_implant=confirmed,
        patient=patient,
        failure_reason=failure_reason,
        dentist_name=dentist,
        embedding_model=model_id,
    )


def reference_png(index: int = 0) -> bytes:
    """The stored file of the ``index``-th reference image (by id)."""
    reference = ReferenceImage.objects.order_by("id")[index]
    with default_storage.open(reference.image.name, "rb") as fh:
        return fh.read()


def queued(func: str) -> list[tuple]:
    """Tasks waiting in django-q's ORM broker for ``func``: their args."""
    return [q.task["args"] for q in OrmQ.objects.all() if q.task.get("func") == func]
