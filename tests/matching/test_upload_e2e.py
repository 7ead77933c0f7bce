"""`POST /upload` end to end with a real `manage.py qcluster` worker, `GET /implants`, and the
promise that web processes never import torch."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from implants.models import Implant, ReferenceImage
from submissions.models import Submission
from testkit.images import xray_png
from tests.builders.worker import ROOT, embed_catalog, process_env


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_upload_answers_the_top_implants_through_a_real_worker(client, catalog, qcluster, settings):
    embed_catalog()
    # Generous: the first task also builds the model in the worker. A warm worker answers in ~1 s.
    settings.RAIOX_UPLOAD_WAIT_SECONDS = 300
    # Seeding queued an embedding task per reference image, which the worker has not all taken
    # yet: a queue that deep makes /upload answer 202 at once (tests/security/test_upload_wait.py).
    # This test is about the answer after the wait.
    settings.RAIOX_UPLOAD_BUSY_QUEUE_DEPTH = 10_000
    reference = ReferenceImage.objects.select_related("implant__manufacturer").order_by("pk")[3]
    with reference.image.open("rb") as fh:
        data = fh.read()
    response = client.post(
        "/upload",
        {
            "file": SimpleUploadedFile("raiox.png", data, "image/png"),
            "nome": "Dra. Ana",
            "email": "ana@example.com",
            "paciente": "Fulano de Tal",
            "dente": "36",
        },
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "done"
    submission = Submission.objects.get(token=body["submission"])
    assert body["result_url"].endswith(f"/r/{submission.token}/")
    assert body["status_url"].endswith(f"/r/{submission.token}/status.json")
    assert len(body["implants"]) == 3
    first = body["implants"][0]
    # A reference image sent as the query finds its own implant first.
    assert first["id"] == reference.implant_id
    assert first["name"] == reference.implant.name
    assert first["manufacturer"] == reference.implant.manufacturer.name
    assert first["rank"] == 1 and "similarity" not in first  # the raw similarity: staff only
    assert submission.matches.get(rank=1).similarity == pytest.approx(1.0, abs=1e-4)
    assert first["image_url"].endswith(reference.image.name)
    assert body["no_convincing_match"] is False
    assert [i["rank"] for i in body["implants"]] == [1, 2, 3]
    assert "Fulano" not in json.dumps(body)  # the patient never appears in the API's answer

    # A second X-ray to the now warm worker.
    response = client.post("/upload", {"file": SimpleUploadedFile("b.png", xray_png(21), "image/png")})
    assert response.status_code == 200 and response.json()["status"] == "done"


@pytest.mark.django_db(transaction=True)
def test_upload_answers_202_with_the_status_url_when_the_worker_is_not_done(client, settings):
    settings.RAIOX_UPLOAD_WAIT_SECONDS = 0
    response = client.post("/upload", {"file": SimpleUploadedFile("a.png", xray_png(22), "image/png")})
    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "received"
    assert body["status_url"].endswith(f"/r/{body['submission']}/status.json")
    assert response["Location"] == body["status_url"]
    assert Submission.objects.get(token=body["submission"]).source == "upload"


@pytest.mark.django_db
def test_upload_errors_are_json_4xx_and_leave_nothing(client):
    response = client.post("/upload", {})
    assert response.status_code == 400
    assert response.json() == {"error": response.json()["error"], "field": "file", "code": "missing_file"}
    response = client.post("/upload", {"file": SimpleUploadedFile("a.png", b"not an image at all", "image/png")})
    assert response.status_code == 400 and response.json()["code"] == "not_an_image"
    response = client.post("/upload", {"file": SimpleUploadedFile("a.png", xray_png(23), "image/png"), "dente": "99"})
    assert response.status_code == 400 and response.json()["field"] == "dente"
    assert client.get("/upload").status_code == 405
    assert not Submission.objects.exists()


@pytest.mark.django_db
def test_implants_lists_the_active_catalogue(client, catalog):
    hidden = Implant.objects.first()
    Implant.objects.filter(pk=hidden.pk).update(is_active=False)
    response = client.get("/implants")
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == Implant.objects.filter(is_active=True).count() == len(body["implants"])
    assert hidden.pk not in [i["id"] for i in body["implants"]]
    item = body["implants"][0]
    assert {"id", "name", "manufacturer", "connection", "body_shape", "level", "image_url"} <= set(item)
    assert item["image_url"].startswith("http://testserver/media/referencia/")


WEB_PROCESS = """
import sys, django
django.setup()
from django.test import Client
from django.test.utils import setup_test_environment
setup_test_environment()
import raiox.urls  # every view the web process serves
client = Client()
assert client.get('/implants').status_code == 200
assert client.get('/healthcheck').status_code in (200, 503)
from django.core.files.uploadedfile import SimpleUploadedFile
status = client.post('/upload', {'file': SimpleUploadedFile('a.png', open(sys.argv[1], 'rb').read())}).status_code
assert status == 202, status
loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'open_clip', 'torchvision'))
print('LOADED', loaded)
assert not loaded, loaded
"""


@pytest.mark.django_db(transaction=True)
def test_the_web_process_never_imports_torch(catalog, tmp_path):
    image = tmp_path / "a.png"
    image.write_bytes(xray_png(24))
    result = subprocess.run(
        [sys.executable, "-c", WEB_PROCESS, str(image)],
        cwd=ROOT,
        env=process_env(DJANGO_SETTINGS_MODULE="raiox.settings", RAIOX_UPLOAD_WAIT_SECONDS="0"),
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "LOADED []" in result.stdout
