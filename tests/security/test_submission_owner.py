"""Submissions sent through the API record their owner (issue 22): only that API user, or staff
who read submissions, reads one or asks its specialist review by its token; any other API user
gets the 404 of an unknown token. Submissions of the anonymous routes keep the token as their
capability, as the result page does."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth.models import Permission, User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from rest_framework.authtoken.models import Token

from submissions import services
from submissions.models import ReviewRequest, Source, Submission
from testkit.images import xray_png

pytestmark = pytest.mark.django_db


def _api_user(name: str, *, staff: bool = False, perms: tuple[str, ...] = ()) -> Client:
    user = User.objects.create_user(name, password="x-pass-123", is_staff=staff)
    for codename in perms:
        user.user_permissions.add(Permission.objects.get(content_type__app_label="submissions", codename=codename))
    return Client(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")


@pytest.fixture
def people(settings) -> dict[str, Client]:
    settings.RAIOX_UPLOAD_WAIT_SECONDS = 0  # no worker: the API answers 202 at once
    return {
        "owner": _api_user("clinica-a"),
        "other": _api_user("clinica-b"),
        "staff_without_permission": _api_user("estagiario", staff=True),
        "reviewer": _api_user("revisora", staff=True, perms=("view_submission",)),
        "anonymous": Client(),
    }


def _sent_by_owner(owner: Client, regions: list | None = None) -> Submission:
    form = {"file": SimpleUploadedFile("rx.png", xray_png(1, (640, 400)), "image/png"), "email": "a@example.com"}
    if regions:
        form["regions"] = json.dumps(regions)
    response = owner.post("/api/match/", form)
    assert response.status_code == 202, response.content
    return Submission.objects.get(token=response.json()["submission"])


def _done(submission: Submission) -> Submission:
    return services.submission_record_result(
        submission_id=submission.pk, embedding=[0.0] * 512, model_id="m", candidates=[]
    )


READ = {"owner": 200, "reviewer": 200, "other": 404, "staff_without_permission": 404, "anonymous": 401}


@pytest.mark.parametrize(("who", "expected"), READ.items())
def test_an_api_submission_is_read_by_its_owner_and_staff_only(people, who, expected):
    submission = _done(_sent_by_owner(people["owner"]))
    assert submission.owner.username == "clinica-a"
    response = people[who].get(f"/api/match/{submission.token}/")
    assert response.status_code == expected, response.content
    if expected == 404:
        # Exactly the answer of a token that does not exist: nothing tells the submission is there.
        unknown = people[who].get("/api/match/00000000-0000-4000-8000-000000000000/")
        assert (response.status_code, response.json()) == (unknown.status_code, unknown.json())


@pytest.mark.parametrize(("who", "expected"), {**READ, "owner": 201, "reviewer": 201}.items())
def test_only_the_owner_or_staff_asks_its_review(people, who, expected):
    submission = _done(_sent_by_owner(people["owner"]))
    asked = people[who].post(f"/api/match/{submission.token}/review/", {"note": "confere?"})
    assert asked.status_code == expected, asked.content
    assert ReviewRequest.objects.filter(submission=submission).exists() == (expected == 201)
    read = people[who].get(f"/api/match/{submission.token}/review/")
    assert read.status_code == {201: 200}.get(expected, expected)


def test_regions_of_an_api_film_belong_to_its_owner(people):
    film = _sent_by_owner(people["owner"], regions=[{"x": 10, "y": 10, "width": 200, "height": 200, "tooth": "36"}])
    [region] = film.crops.all()
    assert region.owner_id == film.owner_id is not None
    assert people["other"].get(f"/api/match/{region.token}/").status_code == 404
    assert people["owner"].get(f"/api/match/{region.token}/").status_code == 202


def test_an_anonymous_upload_keeps_its_token_as_the_capability(people, client):
    response = client.post(
        "/upload", {"file": SimpleUploadedFile("rx.png", xray_png(2), "image/png"), "email": "a@example.com"}
    )
    assert response.status_code == 202, response.content
    submission = _done(Submission.objects.get(token=response.json()["submission"]))
    assert submission.source == Source.UPLOAD and submission.owner is None
    # Whoever holds the token reads it, as on its result page.
    assert people["other"].get(f"/api/match/{submission.token}/").status_code == 200
    assert client.get(f"/r/{submission.token}/").status_code == 200
