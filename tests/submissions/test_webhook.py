"""POST /webhook: the generic intake (JSON or multipart, file or image URL), documented schema."""

from __future__ import annotations

import base64
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from matching.tasks import process_submission
from submissions.intake.schema import components
from submissions.models import Source, Status, Submission
from testkit.images import xray_file
from tests.builders.storage import storage_keys
from tests.openapi_check import json_schema


@pytest.mark.django_db
def test_json_with_base64_file(client, settings):
    # The sender holds the webhook token: a repeat tells it the first delivery's token.
    settings.RAIOX_WEBHOOK_TOKEN = "s3cret"
    auth = {"HTTP_AUTHORIZATION": "Bearer s3cret"}
    payload = {
        "nome": "Ana Souza",
        "email": "Ana@Example.com",
        "paciente": "João",
        "dente": 46,
        "id": "ext-1",
        "filename": "rx.png",
        "file": base64.b64encode(xray_file()).decode(),
    }
    response = client.post("/webhook", json.dumps(payload), content_type="application/json", **auth)
    assert response.status_code == 201, response.content
    submission = Submission.objects.get()
    assert submission.source == Source.WEBHOOK
    assert (submission.dentist_email, submission.tooth, submission.external_id) == ("ana@example.com", "46", "ext-1")
    assert storage_keys() == [submission.image.name]
    # The same id again: the same submission, nothing new stored.
    again = client.post("/webhook", json.dumps(payload), content_type="application/json", **auth)
    assert again.status_code == 200 and again.json()["token"] == response.json()["token"]
    assert len(storage_keys()) == 1


@pytest.mark.django_db
def test_multipart_with_file(client):
    response = client.post(
        "/webhook",
        {"nome": "Ana", "email": "ana@example.com", "dente": "11", "file": SimpleUploadedFile("rx.jpg", xray_file())},
    )
    assert response.status_code == 201, response.content
    assert Submission.objects.get().tooth == "11"


@pytest.mark.django_db
def test_image_url_on_allowed_host_is_fetched_by_the_worker(client, upload_host):
    url = upload_host.serve("/imagens/rx.png", xray_file())
    payload = {"nome": "Ana", "email": "ana@example.com", "image_url": url}
    response = client.post("/webhook", json.dumps(payload), content_type="application/json")
    assert response.status_code == 201, response.content
    submission = Submission.objects.get()
    assert not submission.image and submission.remote_image_url == url
    assert process_submission(submission.pk) == "done"
    submission.refresh_from_db()
    assert submission.status == Status.DONE and submission.image
    assert "APIKEY" not in upload_host.requests[0]["headers"]  # Jotform's key never leaves for other hosts


@pytest.mark.django_db
def test_image_url_on_jotform_host_is_not_enough_for_the_webhook(client, upload_host, settings):
    settings.RAIOX_WEBHOOK_FILE_HOSTS = ["files.example.com"]
    payload = {"nome": "Ana", "email": "ana@example.com", "image_url": upload_host.url("/x.png")}
    response = client.post("/webhook", json.dumps(payload), content_type="application/json")
    assert response.status_code == 422
    assert Submission.objects.count() == 0


@pytest.mark.django_db
def test_webhook_token_when_set(client, settings):
    settings.RAIOX_WEBHOOK_TOKEN = "hook-secret"
    payload = json.dumps({"nome": "Ana", "email": "ana@example.com", "file": base64.b64encode(xray_file()).decode()})
    assert client.post("/webhook", payload, content_type="application/json").status_code == 403
    assert (
        client.post(
            "/webhook", payload, content_type="application/json", headers={"Authorization": "Bearer wrong"}
        ).status_code
        == 403
    )
    assert Submission.objects.count() == 0
    ok = client.post(
        "/webhook", payload, content_type="application/json", headers={"Authorization": "Bearer hook-secret"}
    )
    assert ok.status_code == 201


def test_schema_is_a_json_schema_that_accepts_the_documented_example():
    import jsonschema

    schemas = components()  # what /api/schema/ documents for the JSON body (WebhookJSON)
    body = json_schema(schemas["WebhookJSON"], schemas, close=False)
    example = {"nome": "Ana", "email": "ana@example.com", "dente": "36", "image_url": "https://files.example/x.png"}
    jsonschema.validate(example, body)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**example, "dente": "99"}, body)
