"""Least privilege (issue 13): a submission's result token opens the patient's result page and its
original file name often is the patient's name, so staff see them only with
``submissions.view_patient_data`` — in the admin (list, detail, CSV export) and the staff API; so
is a candidate's picture that is a confirmed case (another patient's X-ray).

A permission matrix over HTTP: staff who may read submissions but not patient data, and staff who
also hold ``view_patient_data``.
"""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission, User
from rest_framework.authtoken.models import Token

from implants.models import ReferenceSource
from submissions.services import IntakeRecord, submission_create
from testkit.images import xray_png
from tests.builders.factories import MatchFactory, ReferenceImageFactory, SubmissionFactory

pytestmark = pytest.mark.django_db

FILENAME = "Joana_Patricia_Lemos_panoramica.png"


def _staff(username: str, *codenames: str) -> User:
    user = User.objects.create_user(username, f"{username}@example.com", "x-pass-123", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(content_type__app_label="submissions", codename__in=codenames))
    return User.objects.get(pk=user.pk)  # fresh: no cached permissions


@pytest.fixture
def submission(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False):  # no worker: its row is enough
        made, _ = submission_create(
            intake=IntakeRecord(
                source="upload",
                dentist_name="Dra. Ana",
                dentist_email="ana@example.com",
                patient="Joana Patrícia Lemos",
                image_bytes=xray_png(3),
                filename=FILENAME,
            )
        )
    return made


@pytest.fixture
def staff() -> dict[str, User]:
    reading = ("view_submission", "change_submission")
    return {
        "without": _staff("leitora", *reading),
        "with": _staff("revisora", *reading, "view_patient_data"),
    }


def _pages(client, user: User, submission) -> dict[str, str]:
    """What this staff member reads of the submission in the admin and the staff API."""
    client.force_login(user)
    headers = {"HTTP_AUTHORIZATION": f"Token {Token.objects.create(user=user).key}"}
    csv = client.post("/admin/submissions/submission/", {"action": "export_csv", "_selected_action": [submission.pk]})
    assert csv.status_code == 200 and csv["Content-Type"].startswith("text/csv")
    pages = {
        "admin list": client.get("/admin/submissions/submission/"),
        "admin detail": client.get(f"/admin/submissions/submission/{submission.pk}/change/"),
        "admin confirm page": client.get(f"/admin/submissions/submission/{submission.pk}/confirmar/"),
        "API list": client.get("/api/submissions/", **headers),
        "API detail": client.get(f"/api/submissions/{submission.pk}/", **headers),
    }
    for where, response in pages.items():
        assert response.status_code == 200, where
    client.logout()
    return {"CSV export": csv.content.decode("utf-8-sig")} | {k: r.content.decode() for k, r in pages.items()}


def test_staff_without_view_patient_data_see_no_token_and_no_file_name(client, staff, submission):
    pages = _pages(client, staff["without"], submission)
    shown = {where for where, text in pages.items() if str(submission.token) in text or FILENAME in text}
    assert shown == set()
    assert "Dra. Ana" in pages["admin detail"] and "Dra. Ana" in pages["API detail"]  # the page itself is there


def test_staff_with_view_patient_data_see_the_token_and_the_file_name(client, staff, submission):
    pages = _pages(client, staff["with"], submission)
    for where in ("admin detail", "API detail", "API list"):
        assert str(submission.token) in pages[where], where
        assert FILENAME in pages[where], where
    detail = client.get(
        f"/api/submissions/{submission.pk}/",
        HTTP_AUTHORIZATION=f"Token {Token.objects.get(user=staff['with']).key}",
    ).json()
    assert detail["token"] == str(submission.token) and detail["original_filename"] == FILENAME


@pytest.mark.parametrize("holder", ["without", "with"])
def test_a_confirmed_case_among_the_candidates_is_shown_only_with_view_patient_data(client, staff, holder):
    """A candidate matched through a confirmed case carries another patient's X-ray: the admin's
    detail and "identificar" pages show it only to holders of ``view_patient_data``; a catalogue
    picture is shown to both."""
    case = ReferenceImageFactory(source=ReferenceSource.CONFIRMED_CASE)
    catalogue = ReferenceImageFactory(source=ReferenceSource.CATALOG)
    submission = SubmissionFactory(finished=True)
    MatchFactory(submission=submission, implant=case.implant, reference_image=case, rank=1)
    MatchFactory(submission=submission, implant=catalogue.implant, reference_image=catalogue, rank=2)
    client.force_login(staff[holder])
    pages = {
        "admin detail": client.get(f"/admin/submissions/submission/{submission.pk}/change/"),
        "admin confirm page": client.get(f"/admin/submissions/submission/{submission.pk}/confirmar/"),
    }
    for where, response in pages.items():
        text = response.content.decode()
        assert response.status_code == 200, where
        assert case.implant.name in text and catalogue.implant.name in text, where  # both candidates listed
        assert catalogue.image.name in text, where
        assert (case.image.name in text) is (holder == "with"), where
    restricted = "caso confirmado: imagem restrita" in pages["admin detail"].content.decode()
    assert restricted is (holder == "without")
