"""Repeats learn nothing (issue 13, finding 2): a repeated delivery — same source and external id —
is answered ``{"duplicate": true}`` without the first sender's token or result link, unless the
request carries the configured webhook token. The repeat's body is never needed: a junk body
changes nothing and stores nothing."""

from __future__ import annotations

import base64
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from submissions.models import Submission
from testkit.images import xray_file
from testkit.payloads import jotform_payload
from tests.builders.storage import storage_keys

pytestmark = pytest.mark.django_db


def _first_delivery(client) -> Submission:
    payload = {
        "nome": "Dra. Ana",
        "email": "ana@example.com",
        "paciente": "Maria da Silva",
        "dente": "36",
        "id": "clinic-42",
        "file": base64.b64encode(xray_file()).decode(),
    }
    response = client.post("/webhook", json.dumps(payload), content_type="application/json")
    assert response.status_code == 201, response.content
    return Submission.objects.get(external_id="clinic-42")


def _assert_learns_nothing(response, first: Submission) -> None:
    assert response.status_code == 200, response.content
    assert response.json() == {"duplicate": True}
    text = response.content.decode()
    assert str(first.token) not in text and "/r/" not in text


def test_webhook_repeat_with_a_junk_body_gets_no_token_and_stores_nothing(client, settings):
    settings.RAIOX_WEBHOOK_TOKEN = ""  # the default: nobody proves who they are
    first = _first_delivery(client)
    keys = storage_keys()

    junk = {"nome": "x", "email": "outsider@example.com", "id": "clinic-42", "file": "AAAA"}
    response = client.post("/webhook", json.dumps(junk), content_type="application/json")

    _assert_learns_nothing(response, first)
    assert Submission.objects.count() == 1 and storage_keys() == keys
    first.refresh_from_db()
    assert first.dentist_email == "ana@example.com"


def test_webhook_repeat_with_the_right_token_is_told_its_token(client, settings):
    """The sender that holds the token (and so sent the first delivery) still learns its result link."""
    settings.RAIOX_WEBHOOK_TOKEN = "s3cret"
    auth = {"HTTP_AUTHORIZATION": "Bearer s3cret"}
    image = base64.b64encode(xray_file()).decode()
    payload = {"nome": "Ana", "email": "ana@example.com", "id": "clinic-7", "file": image}
    first = client.post("/webhook", json.dumps(payload), content_type="application/json", **auth)
    again = client.post("/webhook", json.dumps(payload), content_type="application/json", **auth)
    assert first.status_code == 201 and again.status_code == 200
    assert again.json()["token"] == first.json()["token"] and again.json()["duplicate"] is True
    assert again.json()["result_url"].endswith(f"/r/{first.json()['token']}/")


def test_jotform_plain_form_repeat_with_a_known_submission_id_gets_no_token(client, settings):
    settings.JOTFORM_WEBHOOK_TOKEN = ""
    first = client.post(
        "/jotform",
        {
            "submissionID": "777",
            "nome": "Dra. Ana",
            "email": "ana@example.com",
            "paciente": "Maria da Silva",
            "file": SimpleUploadedFile("rx.png", xray_file()),
        },
    )
    assert first.status_code == 201, first.content
    submission = Submission.objects.get(external_id="777")
    keys = storage_keys()

    junk = {
        "submissionID": "777",
        "nome": "x",
        "email": "outsider@example.com",
        "file": SimpleUploadedFile("x.png", b"not an image at all"),
    }
    response = client.post("/jotform", junk)

    _assert_learns_nothing(response, submission)
    assert Submission.objects.count() == 1 and storage_keys() == keys


def test_jotform_webhook_repeat_gets_no_token_without_the_jotform_token(client, settings):
    settings.JOTFORM_WEBHOOK_TOKEN = ""
    body, content_type = jotform_payload()
    first = client.generic("POST", "/jotform", body, content_type=content_type)
    assert first.status_code == 201, first.content
    submission = Submission.objects.get()

    # Another sender, the same submissionID, other answers.
    other = body.replace(b"Ana", b"Eva")
    response = client.generic("POST", "/jotform", other, content_type=content_type)

    _assert_learns_nothing(response, submission)
    assert Submission.objects.count() == 1


def test_jotform_webhook_repeat_with_the_jotform_token_is_told_its_token(client, settings):
    settings.JOTFORM_WEBHOOK_TOKEN = "t0ken"
    body, content_type = jotform_payload()
    first = client.generic("POST", "/jotform?token=t0ken", body, content_type=content_type)
    again = client.generic("POST", "/jotform?token=t0ken", body, content_type=content_type)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["token"] == first.json()["token"]
    # A wrong token is refused outright (and tells nothing either).
    wrong = client.generic("POST", "/jotform?token=guess", body, content_type=content_type)
    assert wrong.status_code == 403 and first.json()["token"] not in wrong.content.decode()
