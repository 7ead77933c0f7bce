"""A film where no implant is found says so on every intake route: the result page ("Não
encontramos um implante nesta radiografia", the manual marking offered, no candidates), the status
JSON and the match API (``no_fixture_found``). Crop & re-match is the exception by design: the
dentist marked the region around an implant, so the whole region is matched.

The finder is scripted to find nothing (tests/matching/test_fixture_answers.py has the rest)."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client
from rest_framework.authtoken.models import Token

from kernel.imaging import decode_image
from matching import fixtures as finder
from matching import tasks
from matching.fixtures import FixtureReport, as_grey
from submissions.models import Status, Submission
from submissions.services import submission_attach_image
from tests.calibrations import active_calibration
from tests.submissions.test_same_verdict import IMAGE, ROUTES, VALID, _intake_settings  # noqa: F401

pytestmark = pytest.mark.django_db


def _nothing(image):
    grey = as_grey(image)
    return FixtureReport(fixtures=[], width=grey.shape[1], height=grey.shape[0], quality={"problems": []})


@pytest.mark.parametrize("route", list(ROUTES))
def test_nothing_found_is_said_plainly_on_every_route(route, monkeypatch):
    monkeypatch.setattr(finder, "find_fixtures", _nothing)
    before = set(Submission.objects.values_list("pk", flat=True))
    assert ROUTES[route](Client(), dict(VALID)).accepted
    new = Submission.objects.exclude(pk__in=before)
    submission = new.exclude(parent__isnull=True).get() if route == "crop" else new.get()
    if not submission.image:  # Jotform keeps the file on its host: what the worker's download stores
        submission_attach_image(submission_id=submission.pk, image=decode_image(IMAGE))
    tasks.process_submission(submission.pk)
    submission.refresh_from_db()
    assert submission.status == Status.DONE and not submission.matches.exists()

    client = Client()
    page = client.get(f"/r/{submission.token}/").content.decode()
    status = client.get(f"/r/{submission.token}/status.json").json()
    # An API-created submission is read by its owner (anyone else: 404); the others by any API user.
    user = submission.owner or User.objects.create_user(f"leitor-{route}", f"{route}@example.com", "x-pass-123")
    token, _ = Token.objects.get_or_create(user=user)
    api = client.get(f"/api/match/{submission.token}/", HTTP_AUTHORIZATION=f"Token {token.key}").json()
    if route == "crop":
        # A region the dentist marked is never "nothing found": the whole region was matched.
        assert submission.both_orientations  # apex end unknown in a region with no fixture found
        assert "Não encontramos um implante" not in page and "Implantes mais parecidos" in page
        assert status["no_fixture_found"] is False and api["no_fixture_found"] is False
        return
    assert "Não encontramos um implante nesta radiografia." in page and 'id="crop-form"' in page
    assert 'data-testid="candidate"' not in page and "Implantes mais parecidos" not in page
    assert status["no_fixture_found"] is True and status["fixtures"] == []
    assert api["no_fixture_found"] is True and api["fixtures"] == [] and api["implants"] == []


def _too_small(image):
    """One fixture, the whole picture, too small to read (the finder's ``too_small``)."""
    from matching.fixtures import APEX_DOWN, QUALITY_TOO_SMALL, Fixture

    grey = as_grey(image)
    h, w = grey.shape
    fixture = Fixture(box=(0, 0, w, h), axis_deg=0.0, apex=APEX_DOWN, score=0.9, problems=(QUALITY_TOO_SMALL,))
    return FixtureReport(fixtures=[fixture], width=w, height=h, quality={"problems": []})


@pytest.mark.usefixtures("embedded_catalog")
@pytest.mark.parametrize("route", list(ROUTES))
def test_a_fixture_too_small_to_read_is_said_on_every_route_and_never_alta(route, monkeypatch):
    from submissions.fixtures import QUALITY_MESSAGES

    monkeypatch.setattr(finder, "find_fixtures", _too_small)
    active_calibration()  # every answer would be "alta": the quality rule is what takes it away
    before = set(Submission.objects.values_list("pk", flat=True))
    assert ROUTES[route](Client(), dict(VALID)).accepted
    new = Submission.objects.exclude(pk__in=before)
    submission = new.exclude(parent__isnull=True).get() if route == "crop" else new.get()
    if not submission.image:
        submission_attach_image(submission_id=submission.pk, image=decode_image(IMAGE))
    tasks.process_submission(submission.pk)
    submission.refresh_from_db()
    assert submission.status == Status.DONE and submission.matches.exists()
    assert submission.quality_problems == ["too_small"]

    client = Client()
    page = client.get(f"/r/{submission.token}/").content.decode()
    status = client.get(f"/r/{submission.token}/status.json").json()
    assert str(QUALITY_MESSAGES["too_small"]) in page.replace("&#x27;", "'")
    assert "Confiança alta" not in page and 'data-testid="candidate"' in page
    assert submission.matches.order_by("rank").first().band == "alta" and "Probabilidade estimada:" in page
    assert [p["code"] for p in status["quality_problems"]] == ["too_small"]
