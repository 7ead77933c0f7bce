"""The hand-off between web and worker (kernel/queue.py): a task queued in a transaction wakes the
worker when it commits (never when it rolls back), a recorded result wakes the waiting request, and
a real worker whose poll is far longer than the wait still answers `POST /upload` at once."""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Iterator

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection, transaction
from django_q.models import OrmQ
from django_q.tasks import async_task

from kernel.queue import RESULT_CHANNEL, NotifyingORMBroker, notifications
from submissions.models import Submission
from submissions.services import IntakeRecord, submission_create, submission_record_result
from testkit.images import xray_png
from tests.builders.worker import embed_catalog, running_qcluster

# Far longer than any wait below: only a notification can end a wait before it.
LONG_POLL = 600


class Rollback(Exception):
    pass


@pytest.mark.django_db(transaction=True)
def test_a_task_wakes_the_listening_worker_when_its_transaction_commits_only():
    broker = NotifyingORMBroker()
    listener = broker._listener()  # what the worker's pusher waits on between reads
    assert listener is not None

    with pytest.raises(Rollback), transaction.atomic():
        async_task("math.floor", 1.5)
        raise Rollback  # e.g. the submission's insert failed: its task goes with it
    with transaction.atomic():
        async_task("math.floor", 2.5)
        queued = OrmQ.objects.get().pk
        # Not before the commit: the worker would not see the row yet.
        assert list(listener.notifies(timeout=0)) == []

    first = next(listener.notifies(timeout=LONG_POLL, stop_after=1))
    assert first.payload == str(queued)  # the rolled-back task never woke anyone
    assert broker.dequeue() == [(queued, OrmQ.objects.get().payload)]
    listener.close()


@pytest.mark.django_db(transaction=True)
def test_a_recorded_result_wakes_the_request_waiting_for_it():
    submission, _ = submission_create(intake=IntakeRecord(source="upload", image_bytes=xray_png(90), filename="x.png"))
    other, _ = submission_create(intake=IntakeRecord(source="upload", image_bytes=xray_png(91), filename="y.png"))

    def worker() -> None:
        try:
            for pk in (other.pk, submission.pk):  # another submission's result first: not ours
                submission_record_result(submission_id=pk, embedding=[0.01] * 512, model_id="m", candidates=[])
        finally:
            connection.close()

    with notifications(RESULT_CHANNEL) as wait:
        thread = threading.Thread(target=worker)
        thread.start()
        woken = wait(LONG_POLL, str(submission.pk))
        thread.join()

    assert woken is True
    assert Submission.objects.get(pk=submission.pk).status == "done"


@pytest.fixture
def long_poll_worker(transactional_db, tmp_path) -> Iterator[subprocess.Popen]:
    """A real `manage.py qcluster` that would read an idle queue only every LONG_POLL seconds."""
    with running_qcluster(tmp_path / "qcluster.log", RAIOX_Q_POLL=str(LONG_POLL)) as proc:
        yield proc


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_an_idle_worker_is_woken_by_the_upload_not_by_its_poll(client, catalog, long_poll_worker, settings):
    embed_catalog()
    # The catalogue's own embedding tasks, just done above, would otherwise keep the queue "busy"
    # and /upload would answer 202 at once instead of waiting (tests/security/test_upload_wait.py).
    OrmQ.objects.all().delete()
    settings.RAIOX_UPLOAD_WAIT_SECONDS = 300  # the first task also builds the model
    first = client.post("/upload", {"file": SimpleUploadedFile("a.png", xray_png(92), "image/png")})
    assert first.status_code == 200 and first.json()["status"] == "done"

    # The worker is idle now, waiting up to LONG_POLL seconds; the request waits far less.
    settings.RAIOX_UPLOAD_WAIT_SECONDS = LONG_POLL / 10
    second = client.post("/upload", {"file": SimpleUploadedFile("b.png", xray_png(93), "image/png")})
    assert second.status_code == 200, second.content
    assert second.json()["status"] == "done" and len(second.json()["implants"]) == 3
