"""What the OpenAPI schema says is what the API answers: real answers of ``/api/match/`` (200 done,
202 pending, 422 failed), ``/api/match/<token>/``, ``/upload`` and ``/api/submissions/`` validated
against ``/api/schema/`` as served, strictly (a key the schema does not document fails too)."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django_q.conf import Conf
from django_q.models import OrmQ

from implants.models import Implant, ReferenceImage
from matching import tasks
from submissions.models import Status, Submission
from submissions.services import MatchCandidate, submission_fail, submission_record_result
from testkit.images import xray_png
from tests.builders.submissions import submission_row
from tests.openapi_check import check


def _xray(seed: int = 1) -> SimpleUploadedFile:
    return SimpleUploadedFile("rx.png", xray_png(seed), "image/png")


def _record_result(submission: Submission) -> None:
    """What the worker records (its service), with the first catalogue images as candidates."""
    references = ReferenceImage.objects.order_by("id")[:4]
    submission_record_result(
        submission_id=submission.pk,
        embedding=[0.01] * 512,
        model_id="ViT-B-32/untrained-seed0",
        candidates=[MatchCandidate(r.implant_id, r.pk, s) for r, s in zip(references, (0.9, 0.8, 0.7, 0.6))],
    )


@pytest.mark.django_db
def test_match_answers_pending_done_and_failed_are_what_the_schema_says(
    client, people, catalog, openapi, settings, django_capture_on_commit_callbacks
):
    settings.RAIOX_UPLOAD_WAIT_SECONDS = 0  # no worker here: 202 at once
    headers = people["plain"].headers
    with django_capture_on_commit_callbacks(execute=False):
        pending = client.post("/api/match/", {"file": _xray(), "nome": "Dra. Ana", "dente": "36"}, **headers)
        legacy = client.post("/upload", {"file": _xray(2), "nome": "Dra. Ana"})
    assert pending.status_code == 202 and legacy.status_code == 202
    body = check(openapi, "/api/match/", "post", pending)
    assert "implants" not in body and "error" not in body
    check(openapi, "/upload", "post", legacy)
    path = "/api/match/{token}/"
    token = body["submission"]
    check(openapi, path, "get", client.get(f"/api/match/{token}/", **headers))

    _record_result(Submission.objects.get(token=token))
    done = check(openapi, path, "get", client.get(f"/api/match/{token}/", **headers))
    assert done["status"] == "done" and len(done["implants"]) == 3 and done["no_convincing_match"] is False

    failed = Submission.objects.get(token=legacy.json()["submission"])
    submission_fail(submission_id=failed.pk, reason="Não foi possível ler a imagem enviada.")
    response = client.get(f"/api/match/{failed.token}/", **headers)
    assert response.status_code == 422
    body = check(openapi, path, "get", response)
    assert body["code"] == "processing_failed" and "implants" not in body


@pytest.mark.django_db(transaction=True)
def test_match_answer_done_within_the_wait_is_what_the_schema_says(client, people, catalog, openapi, monkeypatch):
    # django-q's sync mode runs the queued task (the real worker code) when the intake commits,
    # so the request finds its result done within the wait: the 200 of POST /api/match/. The seeded
    # catalogue's own embedding tasks would sit in the queue (no worker runs here) and make the
    # endpoint answer 202 at once (tests/security/test_upload_wait.py); a drained queue is the case.
    for reference in ReferenceImage.objects.order_by("id")[:3]:
        tasks.embed_reference_image(reference.pk)
    OrmQ.objects.all().delete()
    monkeypatch.setattr(Conf, "SYNC", True)
    response = client.post("/api/match/", {"file": _xray(3)}, **people["plain"].headers)
    assert response.status_code == 200
    body = check(openapi, "/api/match/", "post", response)
    assert body["status"] == "done" and len(body["implants"]) == 3


@pytest.mark.django_db
def test_staff_submission_answers_are_what_the_schema_says(client, people, catalog, openapi):
    implants = list(Implant.objects.order_by("id")[:3])
    done = submission_row(matches=implants, model_id="ViT-B-32/untrained-seed0")
    submission_row(status=Status.FAILED, failure_reason="Imagem ilegível")
    submission_row(status=Status.RECEIVED, seconds=None)
    for who in ("reviewer", "viewer"):  # with and without the patient's name
        headers = people[who].headers
        page = check(openapi, "/api/submissions/", "get", client.get("/api/submissions/", **headers))
        assert page["count"] == 3 and ("patient" in page["results"][0]) == (who == "reviewer")
        one = client.get(f"/api/submissions/{done.pk}/", **headers)
        assert len(check(openapi, "/api/submissions/{id}/", "get", one)["matches"]) == 3


@pytest.mark.django_db
def test_match_answers_with_fixtures_quality_and_nothing_found_are_what_the_schema_says(
    client, people, catalog, openapi, settings, django_capture_on_commit_callbacks
):
    settings.RAIOX_UPLOAD_WAIT_SECONDS = 0
    headers = people["plain"].headers
    with django_capture_on_commit_callbacks(execute=False):
        one = client.post("/api/match/", {"file": _xray(4)}, **headers).json()["submission"]
        none = client.post("/api/match/", {"file": _xray(5)}, **headers).json()["submission"]
    references = ReferenceImage.objects.order_by("id")[:3]
    fixture = {"box": [10, 20, 60, 200], "axis_deg": -3.5, "apex": "unknown", "score": 0.8, "number": 1}
    submission_record_result(
        submission_id=Submission.objects.get(token=one).pk,
        embedding=[0.01] * 512,
        model_id="ViT-B-32/untrained-seed0",
        candidates=[MatchCandidate(r.implant_id, r.pk, s) for r, s in zip(references, (0.9, 0.8, 0.7))],
        fixtures=[fixture],
        quality_problems=["too_small", "blurred"],
        both_orientations=True,
    )
    submission_record_result(
        submission_id=Submission.objects.get(token=none).pk, embedding=None, model_id="m", candidates=[], fixtures=[]
    )
    path = "/api/match/{token}/"
    done = check(openapi, path, "get", client.get(f"/api/match/{one}/", **headers))
    assert done["fixtures"] == [{k: fixture[k] for k in ("box", "axis_deg", "apex", "score")}]
    assert [q["code"] for q in done["quality_problems"]] == ["too_small", "blurred"]
    assert done["no_fixture_found"] is False
    nothing = check(openapi, path, "get", client.get(f"/api/match/{none}/", **headers))
    assert nothing["no_fixture_found"] is True and nothing["fixtures"] == [] and nothing["implants"] == []


@pytest.mark.django_db
def test_the_schema_says_what_probability_and_band_mean_and_keeps_raw_similarity_for_staff(
    client, people, catalog, openapi, settings, django_capture_on_commit_callbacks
):
    schemas = openapi["components"]["schemas"]
    public = schemas["MatchImplant"]["properties"]
    # The dentist's answer (/upload, /api/match/): the calibrated probability and band are the
    # headline, explained; the raw similarity (no probability) is not in it (the old system's
    # contract was id, name, manufacturer, image_url).
    assert "similarity" not in public
    probability = public["probability"]
    assert probability["nullable"] is True and (probability["minimum"], probability["maximum"]) == (0, 1)
    for words in ("Probabilidade estimada", "calibração ativa", "ainda não foi calibrado"):
        assert words in probability["description"]
    band = public["band"]
    assert band["nullable"] is True
    for words in ("alta (>= 90 %", "media (>= 60 %", "nenhuma", "parecidos", "ainda não foi calibrado"):
        assert words in band["description"]
    # The staff API keeps the raw similarity, and says it is no probability.
    staff = schemas["Match"]["properties"]
    assert {"similarity", "probability", "band"} <= set(staff)
    assert "não é uma probabilidade" in staff["similarity"]["description"]
    assert "Probabilidade estimada" in staff["probability"]["description"]

    # A real done answer has no similarity key (the schema is closed: ``check`` would fail on it).
    settings.RAIOX_UPLOAD_WAIT_SECONDS = 0
    with django_capture_on_commit_callbacks(execute=False):
        token = client.post("/api/match/", {"file": _xray(6)}, **people["plain"].headers).json()["submission"]
    _record_result(Submission.objects.get(token=token))
    done = check(openapi, "/api/match/{token}/", "get", client.get(f"/api/match/{token}/", **people["plain"].headers))
    assert done["implants"] and all("similarity" not in i and "probability" in i for i in done["implants"])
