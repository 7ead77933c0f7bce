"""A worker that finds several submissions waiting processes them in one batch: one forward pass,
each submission still ending alone (poison, transient errors), each one's own task finding it
finished, and no submission taken by two workers at once."""

from __future__ import annotations

import threading
from datetime import timedelta

import numpy as np
import pytest
from django.db import connection, transaction
from django.utils import timezone

from matching import tasks
from matching.canonical import canonical_views
from matching.embedder import get_embedder
from matching.fixtures import find_fixtures
from submissions.models import Status, Submission
from submissions.services import (
    IntakeRecord,
    SubmissionBusy,
    submission_claim_waiting,
    submission_create,
    submission_record_result,
)
from testkit.images import xray_png


def new_submission(data: bytes) -> Submission:
    submission, created = submission_create(intake=IntakeRecord(source="upload", image_bytes=data, filename="x.png"))
    assert created
    return submission


def remote_submission(url: str, external_id: str) -> Submission:
    submission, created = submission_create(
        intake=IntakeRecord(source="jotform", remote_image_url=url, external_id=external_id, filename="x.png")
    )
    assert created
    return submission


@pytest.fixture
def model_calls(monkeypatch) -> list[int]:
    """The size of every batch the model is run on."""
    embedder = get_embedder()
    calls: list[int] = []
    original = embedder.embed_images

    def counting(images):
        calls.append(len(images))
        return original(images)

    monkeypatch.setattr(embedder, "embed_images", counting)
    return calls


@pytest.mark.django_db
def test_one_task_processes_every_waiting_submission_in_one_forward_pass(embedded_catalog, model_calls):
    waiting = [new_submission(xray_png(40 + i)) for i in range(5)]
    same_picture = new_submission(xray_png(40))  # identical pixels to the first: embedded once

    assert tasks.process_submission(waiting[2].pk) == "done"

    assert model_calls == [5]
    everyone = [*waiting, same_picture]
    for submission in everyone:
        submission.refresh_from_db()
        assert submission.status == Status.DONE and submission.attempts == 1
        assert list(submission.matches.order_by("rank").values_list("rank", flat=True)) == [1, 2, 3]
    np.testing.assert_allclose(same_picture.embedding, waiting[0].embedding)
    # Every other task finds its submission finished; the model does not run again.
    assert [tasks.process_submission(s.pk) for s in everyone if s != waiting[2]] == ["already done"] * 5
    assert model_calls == [5]
    # Batching does not change an answer: the batched vector is the one the canonical view of the
    # fixture the finder finds in the picture gets alone (one of the two orientations when its apex
    # end is uncertain).
    embedder = get_embedder()
    picture = embedder.load_image(xray_png(43))
    (fixture,) = find_fixtures(picture).fixtures
    alone = embedder.embed_images(canonical_views(picture, fixture))
    assert any(np.allclose(waiting[3].embedding, vector, atol=1e-5) for vector in alone)


@pytest.mark.django_db
def test_a_batch_takes_the_oldest_waiting_up_to_its_size(embedded_catalog, settings):
    settings.RAIOX_PROCESS_BATCH = 3
    waiting = [new_submission(xray_png(50 + i)) for i in range(5)]

    assert tasks.process_submission(waiting[4].pk) == "done"

    statuses = {s.pk: s.status for s in Submission.objects.all()}
    # Its own, then the two oldest others; the rest wait for their own tasks.
    assert [statuses[s.pk] for s in waiting] == [
        Status.DONE,
        Status.DONE,
        Status.RECEIVED,
        Status.RECEIVED,
        Status.DONE,
    ]
    assert tasks.process_submission(waiting[2].pk) == "done"
    assert tasks.process_submission(waiting[3].pk) == "already done"


@pytest.mark.django_db
def test_a_claimed_submission_with_an_unreachable_host_goes_back_to_its_own_task(embedded_catalog, upload_host):
    own = new_submission(xray_png(60))
    flaky = remote_submission(upload_host.serve("/u/raio.png", b"busy", status=503), "5900000000000000001")
    broken = remote_submission(upload_host.serve("/u/texto.png", b"not an image"), "5900000000000000002")

    assert tasks.process_submission(own.pk) == "done"

    flaky.refresh_from_db()
    broken.refresh_from_db()
    # Permanent (not an image): failed with a reason in the batch. Transient (503): released, not
    # counted as an attempt, for its own task to retry as django-q does.
    assert broken.status == Status.FAILED and broken.failure_reason
    assert flaky.status == Status.PROCESSING and flaky.started_at is None and flaky.attempts == 0
    assert tasks.process_submission(broken.pk) == "already done"
    with pytest.raises(Exception):  # noqa: B017 - still 503: the task raises, django-q delivers it again
        tasks.process_submission(flaky.pk)
    upload_host.serve("/u/raio.png", xray_png(61), headers={"Content-Type": "image/png"})
    assert tasks.process_submission(flaky.pk) == "done"
    flaky.refresh_from_db()
    assert flaky.status == Status.DONE and flaky.attempts == 2


@pytest.mark.django_db(transaction=True)
def test_a_task_whose_submission_is_in_another_workers_batch_waits_for_that_result():
    submission = new_submission(xray_png(70))
    # Another worker process claimed it for its batch, which is still running.
    assert [s.pk for s in submission_claim_waiting(limit=5)] == [submission.pk]
    answers: list[str] = []

    def own_task() -> None:
        try:
            answers.append(tasks.process_submission(submission.pk))
        finally:
            connection.close()

    thread = threading.Thread(target=own_task)
    thread.start()
    # The other worker's batch records the result: the waiting task is woken and has nothing to do.
    submission_record_result(submission_id=submission.pk, embedding=[0.01] * 512, model_id="m", candidates=[])
    thread.join()

    assert answers == ["already done"]
    submission.refresh_from_db()
    assert submission.status == Status.DONE and submission.attempts == 1


@pytest.mark.django_db
def test_a_submission_whose_batch_worker_died_goes_to_its_own_task_when_the_lease_ends(embedded_catalog, settings):
    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "timeout": 2}  # a task waits at most half of it
    submission = new_submission(xray_png(71))
    assert [s.pk for s in submission_claim_waiting(limit=5)] == [submission.pk]
    # The claiming worker was killed; its lease (Q_CLUSTER timeout from the claim) is not over yet.
    Submission.objects.filter(pk=submission.pk).update(started_at=timezone.now() + timedelta(hours=1))

    with pytest.raises(SubmissionBusy):  # django-q delivers the task again after `retry`
        tasks.process_submission(submission.pk)
    submission.refresh_from_db()
    assert submission.status == Status.PROCESSING and submission.attempts == 1

    expired = timezone.now() - timedelta(seconds=settings.Q_CLUSTER["timeout"] + 1)
    Submission.objects.filter(pk=submission.pk).update(started_at=expired)
    assert tasks.process_submission(submission.pk) == "done"
    submission.refresh_from_db()
    assert submission.status == Status.DONE and submission.attempts == 2


@pytest.mark.django_db(transaction=True)
def test_two_workers_never_claim_the_same_submission():
    first, second, third = (new_submission(xray_png(80 + i)) for i in range(3))
    locked, release = threading.Event(), threading.Event()

    def other_worker_claiming() -> None:
        # Another worker is in the middle of its claim: the first row is locked by its transaction.
        try:
            with transaction.atomic():
                Submission.objects.select_for_update().get(pk=first.pk)
                locked.set()
                release.wait(timeout=60)
        finally:
            connection.close()

    other = threading.Thread(target=other_worker_claiming)
    other.start()
    try:
        assert locked.wait(timeout=60)
        claimed = submission_claim_waiting(limit=10)
    finally:
        release.set()
        other.join()

    assert sorted(s.pk for s in claimed) == [second.pk, third.pk]
    assert Submission.objects.get(pk=first.pk).status == Status.RECEIVED
