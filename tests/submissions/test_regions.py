"""Several implants in one X-ray: regions sent through the generic webhook and /api/match/, each
matched as its own submission; refused regions (outside, too small, too many, overlapping, bad
tooth) answer a clear 400 and store nothing; the result page shows one block per tooth and the
film with numbered regions."""

from __future__ import annotations

import base64
import json

import pytest
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from implants.models import Implant
from submissions import services
from submissions.models import Submission
from submissions.services import PROCESS_TASK, MatchCandidate
from testkit.images import xray_file
from tests.builders.storage import storage_keys
from tests.builders.submissions import queued

pytestmark = pytest.mark.django_db

THREE = [
    {"x": 10, "y": 20, "width": 150, "height": 300, "tooth": "36"},
    {"x": 200, "y": 20, "width": 150, "height": 300, "tooth": "37"},
    {"x": 400, "y": 50, "width": 200, "height": 250, "tooth": 46},
]


def _payload(regions) -> str:
    return json.dumps(
        {
            "nome": "Ana Souza",
            "email": "ana@example.com",
            "paciente": "Maria",
            "dente": "36",
            "file": base64.b64encode(xray_file(size=(640, 400))).decode(),
            "regions": regions,
        }
    )


def test_webhook_with_three_regions_makes_one_submission_per_implant(client, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/webhook", _payload(THREE), content_type="application/json")
    assert response.status_code == 201, response.content
    body = response.json()
    film = Submission.objects.get(token=body["token"])
    children = list(film.crops.order_by("pk"))
    assert [c.tooth for c in children] == ["36", "37", "46"]
    assert [r["tooth"] for r in body["regions"]] == ["36", "37", "46"]
    assert [r["region"] for r in body["regions"]] == [1, 2, 3]
    assert [r["token"] for r in body["regions"]] == [str(c.token) for c in children]
    assert all(r["result_url"].endswith(f"/r/{r['token']}/") for r in body["regions"])
    # Each region is the film's pixels there, matched on its own: cut by the worker from the
    # stored film (the web process read the film's header only).
    assert not children[2].image
    assert len(storage_keys()) == 1  # the film only, until the worker cuts its regions
    services.submission_prepare_image(submission_id=children[2].pk)
    children[2].refresh_from_db()
    with children[2].image.open("rb") as fh:
        from PIL import Image

        assert Image.open(fh).size == (200, 250)
    assert children[0].patient == "Maria" and children[0].dentist_email == "ana@example.com"
    assert sorted(queued(PROCESS_TASK)) == sorted([(film.pk,), *((c.pk,) for c in children)])
    assert len(storage_keys()) == 2  # the film and the region cut


def test_repeated_delivery_with_an_id_answers_the_same_regions(client, settings):
    # Only the sender holding the webhook token learns the first delivery's links (issue 13:
    # repeats learn nothing); that sender gets the same regions back, and nothing new is stored.
    settings.RAIOX_WEBHOOK_TOKEN = "s3cret"
    auth = {"HTTP_AUTHORIZATION": "Bearer s3cret"}
    payload = json.loads(_payload(THREE[:2]))
    payload["id"] = "lote-7"
    first = client.post("/webhook", json.dumps(payload), content_type="application/json", **auth)
    again = client.post("/webhook", json.dumps(payload), content_type="application/json", **auth)
    assert first.status_code == 201 and again.status_code == 200
    assert again.json()["regions"] == first.json()["regions"]
    assert Submission.objects.count() == 3


@pytest.mark.parametrize(
    ("regions", "code", "words"),
    [
        ([{"x": 600, "y": 10, "width": 100, "height": 100, "tooth": "36"}], "region_outside_image", "fora da imagem"),
        ([{"x": -5, "y": 10, "width": 100, "height": 100, "tooth": "36"}], "region_outside_image", "640 × 400"),
        ([{"x": 10, "y": 10, "width": 20, "height": 300, "tooth": "36"}], "region_too_small", "pequena demais"),
        (
            [{"x": 70 * i, "y": 0, "width": 64, "height": 64, "tooth": "36"} for i in range(9)],
            "too_many_regions",
            "No máximo 8",
        ),
        (
            [THREE[0], {"x": 100, "y": 100, "width": 150, "height": 150, "tooth": "37"}],
            "regions_overlap",
            "regiões 1 e 2 se sobrepõem",
        ),
        ([{"x": 10, "y": 10, "width": 100, "height": 100, "tooth": "19"}], "invalid_tooth", "Região 1"),
        ([{"x": 10, "y": 10, "width": 100, "height": 100}], "missing", "Região 1"),
        ([{"x": "dez", "y": 10, "width": 100, "height": 100, "tooth": "36"}], "invalid_region", "x deve ser"),
        ("não é json", "invalid_regions", "lista"),
    ],
)
def test_refused_regions_answer_400_and_store_nothing(client, regions, code, words):
    response = client.post("/webhook", _payload(regions), content_type="application/json")
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["field"] == "regions" and words in body["error"], body
    if code not in ("missing", "invalid_tooth"):
        assert body["code"] == code
    assert Submission.objects.count() == 0
    assert storage_keys() == []


def test_regions_with_an_image_url_are_refused(client, settings):
    payload = {"nome": "Ana", "email": "ana@example.com", "image_url": "https://x.example/a.png", "regions": THREE}
    response = client.post("/webhook", json.dumps(payload), content_type="application/json")
    assert response.status_code in (400, 422)
    assert Submission.objects.count() == 0


def test_api_match_with_regions_in_multipart(settings):
    settings.RAIOX_UPLOAD_WAIT_SECONDS = 0
    api = Client()
    api.force_login(User.objects.create_user("api", password="x-pass-123"))
    response = api.post(
        "/api/match/",
        {"file": SimpleUploadedFile("rx.png", xray_file(size=(640, 400))), "regions": json.dumps(THREE[:2])},
    )
    assert response.status_code == 202, response.content
    assert [r["tooth"] for r in response.json()["regions"]] == ["36", "37"]
    refused = api.post(
        "/api/match/",
        {"file": SimpleUploadedFile("rx.png", xray_file(size=(640, 400))), "regions": json.dumps([THREE[0]] * 2)},
    )
    assert refused.status_code == 400 and refused.json()["code"] == "regions_overlap"
    assert Submission.objects.count() == 3


def test_result_page_shows_one_block_per_tooth_and_the_numbered_film(client, catalog):
    response = client.post("/webhook", _payload(THREE), content_type="application/json")
    film = Submission.objects.get(token=response.json()["token"])
    implants = list(Implant.objects.order_by("id")[:3])
    for child in film.crops.all():
        services.submission_record_result(
            submission_id=child.pk,
            embedding=[0.0] * 512,
            model_id="m",
            candidates=[MatchCandidate(i.pk, None, 0.9 - n / 10) for n, i in enumerate(implants)],
        )
    page = client.get(f"/r/{film.token}/").content.decode()
    assert page.count('data-testid="region"') == 3
    for tooth in ("36", "37", "46"):
        assert f'data-tooth="{tooth}"' in page
    assert page.count('data-testid="region-candidate"') == 9
    # No calibration for model "m": each region says so once, not once per candidate.
    assert page.count('data-testid="region-uncalibrated"') == 3
    assert page.count("Modelo ainda não calibrado") == 3
    assert page.count('data-testid="region-mark"') == 3
    assert 'viewBox="0 0 640 400"' in page
