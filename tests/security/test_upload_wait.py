"""Anonymous ``POST /upload`` never holds a web worker when the queue is busy (issue 13): with many
tasks waiting, or the oldest waiting longer than the upload would wait (no worker taking them), it
answers 202 with the status URL at once instead of polling for RAIOX_UPLOAD_WAIT_SECONDS.

Whether the request waited is observed on the wait itself (the web process's only wait is
``wait_for_result``), never on the clock."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from django_q.models import OrmQ
from django_q.tasks import async_task

from submissions.intake import form
from testkit.images import xray_file

pytestmark = pytest.mark.django_db


@pytest.fixture
def waits(monkeypatch) -> list[float]:
    """The waits /upload made (the real wait still runs: no worker here, it returns at its deadline)."""
    seen: list[float] = []
    real = form.wait_for_result

    def recording(submission_id: int, seconds: float) -> None:
        seen.append(seconds)
        real(submission_id, 0)  # the test does not sit out the configured wait

    monkeypatch.setattr(form, "wait_for_result", recording)
    return seen


def post_upload(client):
    return client.post("/upload", {"file": SimpleUploadedFile("rx.png", xray_file())})


def test_upload_waits_when_the_queue_is_idle(client, settings, waits):
    settings.RAIOX_UPLOAD_WAIT_SECONDS = 3
    response = post_upload(client)
    assert response.status_code == 202
    assert waits == [3]


def test_upload_answers_at_once_when_many_tasks_wait(client, settings, waits):
    settings.RAIOX_UPLOAD_WAIT_SECONDS = 3
    settings.RAIOX_UPLOAD_BUSY_QUEUE_DEPTH = 3
    for i in range(3):  # work nobody has picked up yet
        async_task("math.floor", i)

    response = post_upload(client)

    assert response.status_code == 202
    assert response["Location"].endswith("/status.json") and response.json()["status"] == "received"
    assert waits == []


def test_upload_answers_at_once_when_no_worker_takes_tasks(client, settings, waits):
    settings.RAIOX_UPLOAD_WAIT_SECONDS = 3
    settings.RAIOX_UPLOAD_BUSY_QUEUE_DEPTH = 100
    async_task("math.floor", 1)
    # One task, queued a minute ago and still not taken: no worker is alive (or all are stuck).
    OrmQ.objects.update(lock=timezone.now() - timedelta(minutes=1))

    response = post_upload(client)

    assert response.status_code == 202 and waits == []


def test_a_task_a_worker_holds_is_not_waiting(client, settings, waits):
    """A task taken by a worker (lock in the future, its retry deadline) does not make the queue busy."""
    settings.RAIOX_UPLOAD_WAIT_SECONDS = 3
    settings.RAIOX_UPLOAD_BUSY_QUEUE_DEPTH = 1
    async_task("math.floor", 1)
    OrmQ.objects.update(lock=timezone.now() + timedelta(minutes=3))

    assert post_upload(client).status_code == 202 and waits == [3]


def test_api_match_follows_the_same_rule(client, settings, waits, django_user_model):
    settings.RAIOX_UPLOAD_WAIT_SECONDS = 3
    settings.RAIOX_UPLOAD_BUSY_QUEUE_DEPTH = 1
    async_task("math.floor", 1)
    client.force_login(django_user_model.objects.create_user("staff", password="x"))
    response = client.post("/api/match/", {"file": SimpleUploadedFile("rx.png", xray_file())})
    assert response.status_code == 202, response.content
    assert waits == []
