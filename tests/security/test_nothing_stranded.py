"""Nothing stranded (issue 13): a submission committed but not queued (broker hiccup right after
the COMMIT) kept its row but lost its file — ``stored_file`` deleted it on any exception, even
after the commit — and nothing ever queued it again."""

from __future__ import annotations

import base64
import datetime as dt
import json

import pytest
from django.utils import timezone
from django_q.models import OrmQ

from submissions import services
from submissions.models import Status, Submission
from testkit.images import plain_image
from tests.builders.storage import storage_keys


def _queued_ids() -> list[int]:
    return [row.task["args"][0] for row in OrmQ.objects.all() if row.task.get("func") == services.PROCESS_TASK]


@pytest.mark.django_db(transaction=True)
def test_a_broker_failure_after_commit_keeps_the_file_and_the_sweeper_queues_it(client, monkeypatch, settings):
    def broker_down(*args, **kwargs):
        raise ConnectionError("broker unreachable")

    # A broker outside the database (Redis): the task is sent after the commit, and the broker is
    # down right then. (With the ORM broker the task row is part of the submission's transaction:
    # tests/submissions/test_intake_queries.py shows that a failure there leaves neither.)
    monkeypatch.setattr("kernel.queue.queue_in_database", lambda: False)
    monkeypatch.setattr("kernel.queue.async_task", broker_down)
    payload = {"nome": "Ana", "email": "ana@example.com", "file": base64.b64encode(plain_image()).decode()}

    response = client.post("/webhook", json.dumps(payload), content_type="application/json")

    # The row is committed: the sender gets its answer, and the file the row points at is there.
    assert response.status_code == 201, response.content
    submission = Submission.objects.get()
    assert submission.status == Status.RECEIVED
    assert storage_keys() == [submission.image.name]
    assert _queued_ids() == []

    monkeypatch.undo()
    settings.RAIOX_STUCK_SUBMISSION_SECONDS = 600
    assert services.submission_requeue_stuck()["requeued"] == 0  # not stuck yet
    later = timezone.now() + dt.timedelta(seconds=601)
    assert services.submission_requeue_stuck(now=later)["requeued"] == 1
    assert _queued_ids() == [submission.pk]
    # Run again before the worker took it: already queued, not queued twice.
    assert services.submission_requeue_stuck(now=later) == {"requeued": 0, "failed": 0, "already_queued": 1}
    assert _queued_ids() == [submission.pk]


@pytest.mark.django_db(transaction=True)
def test_a_failed_commit_still_leaves_no_file(client, monkeypatch):
    """The other half of stored_file's promise: when the row is not committed, its file goes."""

    def insert_fails(self, *args, **kwargs):
        from django.db import DatabaseError

        raise DatabaseError("connection lost")

    monkeypatch.setattr(Submission, "save", insert_fails)
    payload = {"nome": "Ana", "email": "ana@example.com", "file": base64.b64encode(plain_image()).decode()}
    response = client.post("/webhook", json.dumps(payload), content_type="application/json")
    assert response.status_code == 503
    assert storage_keys() == []


@pytest.mark.django_db
def test_a_submission_processing_for_ever_is_failed_once_out_of_attempts(settings):
    settings.RAIOX_STUCK_SUBMISSION_SECONDS = 600
    submission, _ = services.submission_create(
        intake=services.IntakeRecord(source="upload", image_bytes=plain_image(), filename="x.png")
    )
    OrmQ.objects.all().delete()  # django-q dropped its task after the last attempt
    long_ago = timezone.now() - dt.timedelta(hours=2)
    Submission.objects.filter(pk=submission.pk).update(
        status=Status.PROCESSING, started_at=long_ago, attempts=settings.Q_CLUSTER["max_attempts"]
    )

    assert services.submission_requeue_stuck()["failed"] == 1

    submission.refresh_from_db()
    assert submission.status == Status.FAILED and "Envie-a novamente" in submission.failure_reason


@pytest.mark.django_db
def test_ensure_schedules_creates_the_sweeper_and_retention_once():
    from django.core.management import call_command
    from django_q.models import Schedule

    call_command("ensure_schedules", verbosity=0)
    call_command("ensure_schedules", verbosity=0)
    schedules = {s.name: s for s in Schedule.objects.all()}
    assert schedules["raiox-requeue-stuck"].func == "submissions.tasks.requeue_stuck_submissions"
    assert schedules["raiox-requeue-stuck"].minutes == 5
    assert schedules["raiox-retention"].func == "submissions.tasks.apply_retention"
    assert Schedule.objects.count() == len(schedules) == 3
