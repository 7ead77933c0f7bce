"""Exactly once under Jotform's retries: a repeated delivery that arrives while its original is
being created is answered 2xx with the original's token (found by ``bench/intake`` under load, where
some repeats were answered 400 and Jotform would have given up on them)."""

from __future__ import annotations

import threading

import pytest
from django.db import connection
from django.test import Client

from submissions.models import Submission
from testkit.payloads import jotform_payload


@pytest.mark.django_db(transaction=True)
def test_repeat_that_passed_the_lookup_before_its_original_committed_gets_the_same_token(
    upload_host, monkeypatch, settings
):
    """The repeat looks the submissionID up (not there yet), then the original is created and
    answered in full, then the repeat goes on: it must answer 200 with the original's token
    (Jotform holds the webhook token, so its repeat is told the token)."""
    settings.JOTFORM_WEBHOOK_TOKEN = "t0ken"
    body, content_type = jotform_payload(upload_base=upload_host.url("/u/"))
    repeat_checked, original_answered = threading.Event(), threading.Event()
    original_full_clean = Submission.full_clean

    def full_clean(self, *args, **kwargs):
        if threading.current_thread().name == "repeat":
            repeat_checked.set()
            assert original_answered.wait(timeout=30)
        return original_full_clean(self, *args, **kwargs)

    monkeypatch.setattr(Submission, "full_clean", full_clean)
    responses: dict[str, object] = {}

    def deliver(name: str) -> None:
        try:
            responses[name] = Client().generic("POST", "/jotform?token=t0ken", body, content_type=content_type)
        finally:
            connection.close()
            if name == "original":
                original_answered.set()

    repeat = threading.Thread(target=deliver, args=("repeat",), name="repeat")
    repeat.start()
    assert repeat_checked.wait(timeout=30)
    original = threading.Thread(target=deliver, args=("original",), name="original")
    original.start()
    original.join()
    repeat.join()

    assert responses["original"].status_code == 201
    assert responses["repeat"].status_code == 200, responses["repeat"].content
    assert responses["repeat"].json()["token"] == responses["original"].json()["token"]
    assert responses["repeat"].json()["duplicate"] is True
    assert Submission.objects.count() == 1


@pytest.mark.django_db
def test_the_intake_bench_posts_what_jotform_posts(client, upload_host, settings):
    """bench/intake's generated deliveries are parsed like the captured Jotform webhook: same
    parts, the answers from rawRequest, the upload left as a URL on the file host for the worker."""
    from testkit.payloads import FIXTURES, JotformBodies
    from testkit.radiographs import radiograph

    settings.JOTFORM_WEBHOOK_TOKEN = "t0ken"
    bodies = JotformBodies(file_host=upload_host.netloc, token="t0ken")
    body = bodies.body("5912345678901234567", "radiografia-001.png", 7)
    captured = (FIXTURES / "jotform_webhook.multipart").read_bytes()
    assert [line for line in body.split(b"\r\n") if line.startswith(b"Content-Disposition")] == [
        line for line in captured.split(b"\r\n") if line.startswith(b"Content-Disposition")
    ]

    response = client.generic("POST", "/jotform?token=t0ken", body, content_type=bodies.content_type)

    assert response.status_code == 201, response.content
    submission = Submission.objects.get()
    assert (submission.external_id, submission.dentist_name, submission.tooth) == (
        "5912345678901234567",
        "Ana Souza 7",
        "36",
    )
    assert submission.remote_image_url == upload_host.url(
        "/uploads/drsouza/231234567890123/5912345678901234567/radiografia-001.png"
    )
    assert not submission.image  # the worker downloads it
    assert 500_000 < len(radiograph(1, 1200, 800, "PNG")) < 2_000_000
