"""The API: match endpoint (same JSON as /upload), filters, pagination, throttling, query counts,
OpenAPI schema and Swagger UI served without a CDN."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from django.core.cache import cache
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.utils import timezone
from rest_framework.throttling import ScopedRateThrottle

from implants.models import Implant, ReferenceImage
from matching import tasks
from submissions.models import Source, Status, Submission
from testkit.images import xray_png
from tests.builders.submissions import submission_row

pytestmark = pytest.mark.django_db


def _post_xray(client, headers, seed=1, **fields):
    data = {"file": SimpleUploadedFile("rx.png", xray_png(seed), "image/png"), **fields}
    return client.post("/api/match/", data, **headers)


def test_match_endpoint_answers_like_upload(client, people, catalog, settings, django_capture_on_commit_callbacks):
    settings.RAIOX_UPLOAD_WAIT_SECONDS = 0  # no worker in this test: answer 202 at once
    settings.SITE_URL = "https://raiox.example.com"  # result links are the site's, whatever the Host
    for reference_id in ReferenceImage.objects.values_list("pk", flat=True):
        tasks.embed_reference_image(reference_id)
    headers = people["plain"].headers
    with django_capture_on_commit_callbacks(execute=False):
        response = _post_xray(client, headers, nome="Dra. Ana", email="ana@example.com", dente="36")
    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "received"
    token = body["submission"]
    assert body["result_url"] == f"https://raiox.example.com/r/{token}/"
    assert body["status_url"] == f"https://raiox.example.com/r/{token}/status.json"
    assert response["Location"] == f"https://raiox.example.com/api/match/{token}/"
    submission = Submission.objects.get(token=token)
    assert submission.source == Source.API and submission.tooth == "36"

    tasks.process_submission(submission.pk)  # what the worker does
    done = client.get(f"/api/match/{token}/", **headers)
    assert done.status_code == 200
    body = done.json()
    assert set(body) == {
        "status",
        "submission",
        "result_url",
        "status_url",
        "no_convincing_match",
        "implants",
        "fixtures",
        "no_fixture_found",
        "quality_problems",
    }
    assert body["status"] == "done" and len(body["implants"]) == 3
    # The implant the finder found in the X-ray: its box in the X-ray's pixels, nothing else.
    assert body["no_fixture_found"] is False and len(body["fixtures"]) == 1
    assert set(body["fixtures"][0]) >= {"box", "axis_deg", "apex", "score"}
    assert [i["rank"] for i in body["implants"]] == [1, 2, 3]
    first = body["implants"][0]
    # The old system's keys and the calibrated figures; the raw similarity only in the staff API.
    assert set(first) == {"id", "name", "manufacturer", "image_url", "probability", "band", "rank"}
    # The running model has no calibration yet: no probability, no band (the schema says so).
    assert first["probability"] is None and first["band"] is None
    assert first["image_url"].startswith("http://testserver/media/referencia/")
    assert Implant.objects.get(pk=first["id"]).name == first["name"]


def test_match_endpoint_bad_input_and_auth(client, people, db):
    assert _post_xray(client, {}).status_code == 401
    response = client.post("/api/match/", {}, **people["plain"].headers)
    assert response.status_code == 400 and response.json()["field"] == "file"
    response = client.post(
        "/api/match/",
        {"file": SimpleUploadedFile("rx.png", b"GIF89a not really", "image/gif")},
        **people["plain"].headers,
    )
    assert response.status_code in (400, 415) and response.json()["field"] == "file"
    response = _post_xray(client, people["plain"].headers, dente="99")
    assert response.status_code == 400 and response.json()["field"] == "dente"  # the name the client sent
    assert not Submission.objects.exists()


def test_image_endpoints_are_throttled(client, people, db, monkeypatch, settings):
    settings.RAIOX_UPLOAD_WAIT_SECONDS = 0
    monkeypatch.setattr(ScopedRateThrottle, "THROTTLE_RATES", {"images": "2/minute"})
    cache.clear()
    headers = people["plain"].headers
    assert [_post_xray(client, headers, seed=i).status_code for i in range(3)] == [202, 202, 429]
    # Reading is not throttled.
    assert client.get("/api/implants/", **headers).status_code == 200
    cache.clear()


def test_submissions_filters_and_pagination(client, people, catalog):
    now = timezone.now()
    for i in range(7):
        submission_row(received_at=now - dt.timedelta(days=i), source="jotform" if i % 2 else "upload")
    submission_row(status=Status.FAILED, received_at=now - dt.timedelta(days=10))
    headers = people["reviewer"].headers

    page = client.get("/api/submissions/?page_size=5", **headers).json()
    assert page["count"] == 8 and len(page["results"]) == 5 and "page=2" in page["next"]
    assert len(client.get(page["next"], **headers).json()["results"]) == 3
    assert client.get("/api/submissions/?status=failed", **headers).json()["count"] == 1
    assert client.get("/api/submissions/?source=jotform", **headers).json()["count"] == 3
    since = (timezone.localdate() - dt.timedelta(days=2)).isoformat()
    assert client.get(f"/api/submissions/?received_after={since}", **headers).json()["count"] == 3
    bad = client.get("/api/submissions/?received_after=ontem", **headers)
    assert bad.status_code == 400 and bad.json()["field"] == "received_after"
    assert client.get("/api/submissions/?status=nope", **headers).status_code == 400


def test_api_list_query_counts(client, people, catalog, django_assert_max_num_queries):
    implants = list(Implant.objects.all()[:3])
    for _ in range(30):
        submission_row(matches=implants)
    with django_assert_max_num_queries(8):
        response = client.get("/api/submissions/", **people["reviewer"].headers)
    assert response.status_code == 200 and len(response.json()["results"]) == 30
    with django_assert_max_num_queries(6):
        response = client.get("/api/implants/", **people["plain"].headers)
    assert response.json()["count"] == 32


def test_token_endpoint(client, people):
    response = client.post("/api/token/", {"username": "cliente", "password": "x-pass-123"})
    assert response.status_code == 200 and response.json()["token"] == people["plain"].token


def test_openapi_schema_validates_and_lists_every_endpoint(client):
    from openapi_spec_validator import validate

    call_command("spectacular", "--validate", "--fail-on-warn", stdout=io.StringIO())
    response = client.get("/api/schema/?format=json")
    assert response.status_code == 200
    schema = response.json()
    validate(schema)
    paths = set(schema["paths"])
    for path in (
        "/api/match/",
        "/api/match/{token}/",
        "/api/implants/",
        "/api/manufacturers/",
        "/api/reference-images/",
        "/api/submissions/",
        "/api/token/",
        "/upload",
        "/implants",
        "/healthcheck",
        "/jotform",
        "/webhook",
    ):
        assert path in paths, path
    assert {"tokenAuth", "cookieAuth"} <= set(schema["components"]["securitySchemes"])


def test_swagger_ui_at_docs_without_cdn(client):
    response = client.get("/docs")
    assert response.status_code == 200
    html = response.content.decode()
    assert "swagger-ui" in html and "/static/drf_spectacular_sidecar/swagger-ui-dist/" in html
    assert "cdn" not in html.lower() and "<script>" not in html  # the script is a file (strict CSP)
