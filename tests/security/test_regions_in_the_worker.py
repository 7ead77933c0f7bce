"""Regions and crops decode nothing in the web process (issue 22): they are checked against the
size the film's header declares and cut by the worker from the stored film. A crop on the result
page goes through the region rules (``RAIOX_MAX_REGIONS``, no overlap, numbering) under a lock on
the film, so ten crops at once make at most the cap of regions, each with its own number."""

from __future__ import annotations

import base64
import json

import pytest
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from PIL import Image, ImageFile

from submissions import services
from submissions.models import Submission
from testkit.images import plain_image
from tests.builders.submissions import submission_received
from tests.builders.threads import at_once

BIG = (7000, 7000)  # 49 Mpx, under the pixel cap: ~150 MB once decoded, ~50 kB as a PNG


@pytest.fixture(scope="module")
def big_png() -> bytes:
    return plain_image(BIG, 90)


@pytest.fixture
def decodes(monkeypatch) -> list[tuple[int, int]]:
    """The size of every image whose pixels Pillow decodes in this process while the test runs."""
    seen: list[tuple[int, int]] = []
    load = ImageFile.ImageFile.load

    def counting(self):
        if self.tile:  # pixels still to decode
            seen.append(self.size)
        return load(self)

    monkeypatch.setattr(ImageFile.ImageFile, "load", counting)
    return seen


OUTSIDE = [{"x": 6900, "y": 10, "width": 200, "height": 200, "tooth": "36"}]


def _api() -> Client:
    api = Client()
    api.force_login(User.objects.create_user("clinica", password="x-pass-123"))
    return api


@pytest.mark.django_db
@pytest.mark.parametrize("route", ["/webhook", "/api/match/"])
def test_a_region_outside_a_huge_film_is_refused_from_its_header(client, route, big_png, decodes):
    if route == "/webhook":
        body = {
            "nome": "Ana",
            "email": "ana@example.com",
            "file": base64.b64encode(big_png).decode(),
            "regions": OUTSIDE,
        }
        response = client.post(route, json.dumps(body), content_type="application/json")
    else:
        form = {"file": SimpleUploadedFile("rx.png", big_png, "image/png"), "regions": json.dumps(OUTSIDE)}
        response = _api().post(route, form)
    assert response.status_code == 400, response.content
    assert response.json()["code"] == "region_outside_image"
    assert "7000 × 7000" in response.json()["error"]
    assert BIG not in decodes  # the film's pixels were never decoded here
    assert Submission.objects.count() == 0


@pytest.mark.django_db
def test_regions_at_intake_are_cut_by_the_worker(client, big_png, decodes, settings):
    settings.RAIOX_UPLOAD_WAIT_SECONDS = 0
    regions = [{"x": 100, "y": 100, "width": 300, "height": 200, "tooth": "36"}]
    body = {"nome": "Ana", "email": "ana@example.com", "file": base64.b64encode(big_png).decode(), "regions": regions}
    response = client.post("/webhook", json.dumps(body), content_type="application/json")
    assert response.status_code == 201, response.content
    assert decodes == []  # nothing decoded by the web process
    [child] = Submission.objects.get(token=response.json()["token"]).crops.all()
    assert not child.image  # no pixels until the worker cuts them
    child = services.submission_prepare_image(submission_id=child.pk)  # the worker's step
    with child.image.open("rb") as fh:
        assert Image.open(fh).size == (300, 200)


@pytest.mark.django_db
def test_a_tiny_crop_of_a_huge_film_decodes_nothing(client, big_png, decodes):
    film = submission_received(
        patient="Maria Souza", dentist_email="dra.ana@example.com", filename="rx.png", image=big_png
    )
    decodes.clear()
    page = client.post(
        reverse("submissions:crop", args=[film.token]), {"x": 0, "y": 0, "width": 10, "height": 10}, follow=True
    )
    assert "Recorte pequeno demais" in page.content.decode()
    assert BIG not in decodes
    assert film.crops.count() == 0


def _crop(client: Client, film: Submission, n: int) -> int:
    box = {"x": 10 + 70 * n, "y": 10, "width": 64, "height": 64}  # side by side, none overlapping
    return client.post(reverse("submissions:crop", args=[film.token]), box).status_code


@pytest.mark.django_db
def test_crops_follow_the_region_rules(client, settings):
    settings.RAIOX_MAX_REGIONS = 3
    film = submission_received(
        patient="Maria Souza",
        dentist_email="dra.ana@example.com",
        filename="rx.png",
        image=plain_image((800, 300), 128),
    )
    for n in range(10):
        _crop(client, film, n)
    numbers = sorted(c.crop_box["region"] for c in film.crops.all())
    assert numbers == [1, 2, 3]  # ten crops, the cap of regions
    page = client.post(
        reverse("submissions:crop", args=[film.token]), {"x": 10, "y": 10, "width": 64, "height": 64}, follow=True
    )
    assert "No máximo 3 implantes marcados" in page.content.decode()

    settings.RAIOX_MAX_REGIONS = 8
    overlapping = client.post(
        reverse("submissions:crop", args=[film.token]), {"x": 40, "y": 20, "width": 64, "height": 64}, follow=True
    )
    assert "se sobrepõe à região 1" in overlapping.content.decode()
    assert film.crops.count() == 3


@pytest.mark.django_db(transaction=True)
def test_ten_crops_at_once_make_at_most_the_cap(settings):
    settings.RAIOX_MAX_REGIONS = 4
    film = submission_received(
        patient="Maria Souza",
        dentist_email="dra.ana@example.com",
        filename="rx.png",
        image=plain_image((800, 300), 128),
    )
    codes = at_once([lambda n=n: _crop(Client(), film, n) for n in range(10)])
    assert codes == [302] * 10
    numbers = sorted(c.crop_box["region"] for c in film.crops.all())
    assert numbers == [1, 2, 3, 4]  # the cap, each its own number
