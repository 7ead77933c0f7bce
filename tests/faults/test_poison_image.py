"""Fault run 4: poison images fail alone, with a reason a person can act on, and the queue moves on.

A broken body behind a valid header is refused at intake when the bytes come with the request
(400, nothing stored). Two poisons get past intake and reach the worker, queued between good X-rays:
- a Jotform delivery whose file, on Jotform's upload host, is a PNG header with a broken body
  (intake only sees the URL; the worker downloads it);
- an X-ray accepted whole and corrupted in storage afterwards (a bad copy or restore).
"""

from __future__ import annotations

import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db.models import Count

from matching.images import UNREADABLE_IMAGE
from submissions.models import Status, Submission
from testkit.images import xray_png
from testkit.payloads import jotform_payload
from tests.builders.storage import storage_keys
from tests.builders.worker import embed_catalog, report, wait_until

UPLOAD_DIR = "/uploads/drsouza/231234567890123/9000000000000000001/"
UPLOAD_PATH = UPLOAD_DIR + "radiografia%20panor%C3%A2mica.png"


def broken_png(seed: int) -> bytes:
    """The real PNG signature and header chunk, then a body that is not image data."""
    good = xray_png(seed)
    return good[:64] + b"\x00garbage-not-deflate" * 200


def post_form(client, i: int, data: bytes):
    return client.post(
        "/jotform",
        {
            "submissionID": f"poison-{i:03d}",
            "nome": "Dra. Ana",
            "email": "ana@example.com",
            "dente": "36",
            "file": SimpleUploadedFile(f"raiox-{i}.png", data, "image/png"),
        },
    )


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_poison_images_fail_alone_and_the_queue_moves_on(client, catalog, upload_host, cluster_factory):
    embed_catalog()

    # With the bytes in the request, a broken body is refused at once and nothing is kept.
    response = post_form(client, 0, broken_png(1))
    assert response.status_code == 400 and response.json()["code"] == "corrupt_image"
    assert not Submission.objects.exists()
    assert [k for k in storage_keys() if not k.startswith("referencia/")] == []

    good, poison = [], {}
    good.append(post_form(client, 1, xray_png(201)).json()["token"])
    upload_host.serve(UPLOAD_PATH, broken_png(2))
    body, content_type = jotform_payload(upload_base=upload_host.url(UPLOAD_DIR), submission_id="9000000000000000001")
    response = client.generic("POST", "/jotform", body, content_type=content_type)
    assert response.status_code == 201, response.content
    poison["remote"] = response.json()["token"]
    good.append(post_form(client, 2, xray_png(202)).json()["token"])
    response = post_form(client, 3, xray_png(203))
    poison["stored"] = response.json()["token"]
    good += [post_form(client, i, xray_png(200 + i)).json()["token"] for i in (4, 5, 6)]
    # Corrupted in storage after it was accepted.
    damaged = Submission.objects.get(token=poison["stored"])
    with default_storage.open(damaged.image.name, "wb") as fh:
        fh.write(broken_png(3))

    cluster_factory(
        JOTFORM_FILE_HOSTS=upload_host.netloc,
        RAIOX_ALLOW_HTTP_DOWNLOADS="1",
        RAIOX_WEBHOOK_FILE_HOSTS=upload_host.netloc,
    ).start()
    finished = (Status.DONE, Status.FAILED)
    assert wait_until(lambda: Submission.objects.exclude(status__in=finished).count() == 0), list(
        Submission.objects.values_list("pk", "status")
    )

    by_token = {str(s.token): s for s in Submission.objects.annotate(n=Count("matches"))}
    assert [by_token[t].status for t in good] == [Status.DONE] * len(good)
    assert all(by_token[t].n == 3 for t in good)
    stored, remote = by_token[poison["stored"]], by_token[poison["remote"]]
    assert stored.status == Status.FAILED and stored.failure_reason == UNREADABLE_IMAGE
    assert remote.status == Status.FAILED and "corrompida" in remote.failure_reason
    # Failed for good on the first attempt: a poison is not retried, so it cannot block the queue.
    assert (stored.attempts, remote.attempts) == (1, 1)
    assert stored.n == remote.n == 0
    # The dentist sees the reason on the result page.
    for submission in (stored, remote):
        status = client.get(f"/r/{submission.token}/status.json").json()
        assert status["is_failed"] and submission.failure_reason in status["html"]

    processed = sum(1 for s in by_token.values() if s.status in finished)
    report(
        "poison image",
        accepted=len(by_token),
        processed=processed,
        lost=len(by_token) - processed,
        duplicated=sum(1 for s in by_token.values() if s.attempts > 1),
        done=len(good),
        failed_with_reason=2,
        refused_at_intake=1,
    )
    assert (len(by_token), processed) == (len(good) + 2, len(good) + 2)
