"""Crafted files: a clear 4xx on every intake route with nothing kept, and poison (failed at once,
never retried) when one reaches the worker.

Found by trying the site as an outsider (issue 13): a PNG whose ``eXIf`` chunk is malformed and a
two-frame RGB DICOM answered 500 on ``/upload`` and ``/webhook``; in the worker the same errors
counted as transient (retried five times, then reported as "could not download").
"""

from __future__ import annotations

import base64
import io
import json

import pytest
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image
from rest_framework.authtoken.models import Token

from matching.tasks import process_submission
from submissions import services
from submissions.models import Status, Submission
from testkit.crafted import PNG_EXIF_JUNK, PNG_EXIF_TRUNCATED
from testkit.dicom import dicom
from testkit.payloads import jotform_payload, plain_form
from tests.builders.storage import storage_keys

CRAFTED = {
    "png-exif-junk": (PNG_EXIF_JUNK, "corrompida"),
    "png-exif-truncated": (PNG_EXIF_TRUNCATED, "corrompida"),
    # Two RGB frames declared, pixel data for less than one.
    "dicom-rgb-two-frames-cut-short": (dicom(pixel_bytes=20_000), "DICOM"),
    # Four samples per pixel (CMYK-like) and 12-bit allocation: layouts no X-ray system writes.
    "dicom-four-samples": (dicom(samples=4, frames=1), "DICOM"),
    "dicom-12-bits-allocated": (dicom(samples=1, frames=1, bits=12, pixel_bytes=0), "DICOM"),
    # A first frame within the pixel budget only if samples are ignored: 3 × 5000 × 4000 > 50 MP.
    "dicom-samples-count-as-pixels": (dicom(rows=4000, columns=5000, samples=3, frames=1, pixel_bytes=64), "grandes"),
}


def _post_upload(client, data: bytes):
    return client.post("/upload", {"file": SimpleUploadedFile("raio-x.png", data, "image/png")})


def _post_webhook(client, data: bytes):
    payload = {"nome": "Ana", "email": "ana@example.com", "dente": "36", "file": base64.b64encode(data).decode()}
    return client.post("/webhook", json.dumps(payload), content_type="application/json")


def _post_api_match(client, data: bytes):
    user = User.objects.create_user("integrador", "integrador@example.com", "x-pass-123")
    token = Token.objects.create(user=user)
    return client.post(
        "/api/match/",
        {"file": SimpleUploadedFile("raio-x.png", data, "image/png")},
        HTTP_AUTHORIZATION=f"Token {token.key}",
    )


def _post_upload_page(client, data: bytes):
    return client.post(
        "/enviar/",
        {
            "nome": "Dra. Ana",
            "email": "ana@example.com",
            "paciente": "J. S.",
            "dente": "36",
            "file": SimpleUploadedFile("raio-x.png", data, "image/png"),
        },
    )


def _post_jotform_plain_form(client, data: bytes):
    body, content_type = plain_form(data)
    return client.generic("POST", "/jotform", body, content_type=content_type)


ROUTES = {
    "upload": _post_upload,
    "webhook-json": _post_webhook,
    "api-match": _post_api_match,
    "upload-page": _post_upload_page,
    "jotform-plain-form": _post_jotform_plain_form,
}


@pytest.mark.django_db
@pytest.mark.parametrize("route", list(ROUTES))
@pytest.mark.parametrize("crafted", list(CRAFTED))
def test_a_crafted_file_is_a_clear_4xx_and_leaves_nothing(client, route, crafted):
    data, expected_words = CRAFTED[crafted]

    response = ROUTES[route](client, data)

    assert 400 <= response.status_code < 500, (response.status_code, response.content[:300])
    if response["Content-Type"].startswith("application/json"):
        error = response.json()
        message = error.get("error") or json.dumps(error, ensure_ascii=False)
        if "code" in error:
            assert error["field"] == "file"
    else:  # the upload page shows the message next to the file field
        message = response.content.decode()
    assert expected_words in message
    assert not Submission.objects.exists()
    assert storage_keys() == []


@pytest.mark.django_db
@pytest.mark.parametrize("route", ["upload", "webhook-json", "jotform-plain-form"])
def test_a_two_frame_rgb_dicom_is_accepted_and_its_first_frame_decoded_by_the_worker(
    client, route, django_capture_on_commit_callbacks
):
    """The well-formed file of the finding: no 500; intake keeps it as received (headers read
    only) and the worker decodes the first frame only, into a PNG of the pixels."""
    data = dicom()
    response = ROUTES[route](client, data)
    assert response.status_code in (200, 201, 202), response.content[:300]
    submission = Submission.objects.get()
    with submission.image.open("rb") as fh:
        assert fh.read() == data  # the web process did not decode it
    with django_capture_on_commit_callbacks(execute=True):
        services.submission_prepare_image(submission_id=submission.pk)

    submission.refresh_from_db()
    with submission.image.open("rb") as fh:
        stored = Image.open(io.BytesIO(fh.read()))
        stored.load()
    assert (stored.format, stored.mode, stored.size) == ("PNG", "RGB", (100, 100))
    assert storage_keys() == [submission.image.name]  # the original is gone


UPLOAD_DIR = "/uploads/drsouza/231234567890123/5812345678901234567/"


@pytest.mark.django_db
@pytest.mark.parametrize("crafted", list(CRAFTED))
def test_a_crafted_file_reaching_the_worker_is_poison_failed_at_once(client, upload_host, crafted):
    """Jotform keeps uploads on its own host: intake sees a URL, the worker downloads the file.
    A crafted file fails its submission on the first attempt with a reason, and the task returns
    normally (a task that raised would be delivered again by django-q)."""
    data, expected_words = CRAFTED[crafted]
    upload_host.serve(UPLOAD_DIR + "radiografia%20panor%C3%A2mica.png", data)
    body, content_type = jotform_payload(upload_base=upload_host.url(UPLOAD_DIR))
    assert client.generic("POST", "/jotform", body, content_type=content_type).status_code == 201
    submission = Submission.objects.get()

    assert process_submission(submission.pk) == "failed"  # returned: not retried

    submission.refresh_from_db()
    assert submission.status == Status.FAILED
    assert submission.attempts == 1
    assert expected_words in submission.failure_reason
    assert len(upload_host.requests) == 1
    assert storage_keys() == []
