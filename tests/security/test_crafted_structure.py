"""Crafted structure never answers 500 (issue 22): JSON nested 200 000 deep on the anonymous token
endpoint and on the review API, ``regions`` nested deep or holding a 400-digit number on
``/webhook`` and ``/api/match/``, and a non-ASCII bearer on ``/metrics`` and ``/healthcheck``.

Each is a clear 4xx ``{"error","field","code"}`` in Portuguese (``kernel.parsing`` for JSON, the
region rules for numbers), or, for a bearer, simply a wrong token."""

from __future__ import annotations

import base64
import json

import pytest
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from rest_framework.authtoken.models import Token

from kernel.errors import ApplicationError
from kernel.parsing import JSON_MAX_DEPTH, parse_json
from submissions import services
from submissions.models import Submission
from submissions.regions import parse_region
from testkit.images import xray_file
from tests.builders.storage import storage_keys

pytestmark = pytest.mark.django_db

DEEP = "[" * 200_000
DEEP_OBJECT = '{"a":' * 200_000
HUGE = "9" * 400


def _error(response, status: int = 400) -> dict:
    assert response.status_code == status, (response.status_code, response.content[:300])
    body = response.json()
    assert set(body) == {"error", "field", "code"} and body["error"]
    return body


def _api_client() -> Client:
    user = User.objects.create_user("integrador", "integrador@example.com", "x-pass-123")
    return Client(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")


@pytest.mark.parametrize(
    "body",
    [DEEP, DEEP_OBJECT, "[" * 40 + "]" * 40, '{"username": ' + HUGE + "}"],
    ids=["deep", "objects", "deeper-than-the-cap", "huge"],
)
def test_anonymous_token_endpoint_refuses_crafted_json(client, body):
    error = _error(client.post("/api/token/", body, content_type="application/json"))
    assert error["code"] == "invalid_json" and "JSON" in error["error"]


@pytest.mark.parametrize(
    "body",
    [DEEP, '{"note": ' + DEEP + "}", '{"note": ' + HUGE + "}", '{"note": NaN}'],
    ids=["deep", "deep-note", "huge", "nan"],
)
def test_review_api_refuses_crafted_json(body):
    submission, _ = services.submission_create(
        intake=services.IntakeRecord(
            source="upload", dentist_name="Ana", dentist_email="ana@example.com", image_bytes=xray_file()
        )
    )
    api = _api_client()
    error = _error(api.post(f"/api/match/{submission.token}/review/", body, content_type="application/json"))
    assert error["code"] == "invalid_json"


def _region(x: str = "10") -> str:
    return '[{"x": ' + x + ', "y": 10, "width": 80, "height": 80, "tooth": "36"}]'


REGIONS = {
    "deep": DEEP,
    "deep-within-interpreter-limit": "[" * 500 + "]" * 500,
    "huge-number": _region(HUGE),
    "huge-negative": _region("-" + HUGE),
    "huge-float": _region("1e400"),
    "huge-number-as-text": _region('"' + HUGE + '"'),
}


def _webhook_json(client, regions: str):
    image = base64.b64encode(xray_file()).decode()
    body = '{"nome": "Ana", "email": "ana@example.com", "file": "' + image + '", "regions": ' + regions + "}"
    return client.post("/webhook", body, content_type="application/json")


def _webhook_json_string(client, regions: str):
    body = {"nome": "Ana", "email": "ana@example.com", "file": base64.b64encode(xray_file()).decode()}
    return client.post("/webhook", json.dumps({**body, "regions": regions}), content_type="application/json")


def _webhook_multipart(client, regions: str):
    data = {"nome": "Ana", "email": "ana@example.com", "regions": regions}
    return client.post("/webhook", {**data, "file": SimpleUploadedFile("r.png", xray_file(), "image/png")})


def _api_match(client, regions: str):
    data = {"nome": "Ana", "email": "ana@example.com", "regions": regions}
    return _api_client().post("/api/match/", {**data, "file": SimpleUploadedFile("r.png", xray_file(), "image/png")})


ROUTES = {
    "webhook-json": _webhook_json,
    "webhook-json-string": _webhook_json_string,
    "webhook-multipart": _webhook_multipart,
    "api-match": _api_match,
}


@pytest.mark.parametrize("route", list(ROUTES))
@pytest.mark.parametrize("regions", list(REGIONS))
def test_crafted_regions_are_a_400_and_leave_nothing(client, route, regions):
    error = _error(ROUTES[route](client, REGIONS[regions]))
    assert error["code"] in {"invalid_json", "invalid_regions", "invalid_region", "region_outside_image"}
    assert not Submission.objects.exists() and storage_keys() == []


@pytest.mark.parametrize(
    "value", [10**400, -(10**400), "9" * 400, 1e308, float("nan")], ids=["int", "negative", "text", "float", "nan"]
)
def test_region_numbers_are_bounded_before_any_arithmetic(value):
    raw = {"x": value, "y": 0, "width": 80, "height": 80, "tooth": "36"}
    with pytest.raises(ApplicationError) as caught:
        parse_region(raw, "Região 1", width=200, height=200)
    assert caught.value.status == 400 and caught.value.field == "regions"


def test_parser_caps_are_exact():
    ok = "[" * JSON_MAX_DEPTH + "]" * JSON_MAX_DEPTH
    assert parse_json(ok) is not None
    with pytest.raises(ApplicationError):
        parse_json("[" + ok + "]")
    assert parse_json('{"n": 12345678901234567890}') == {"n": 12345678901234567890}
    with pytest.raises(ApplicationError):
        parse_json('{"n": 123456789012345678901}')
    with pytest.raises(ApplicationError):
        parse_json("[]" * 10_001)


@pytest.mark.parametrize("bearer", ["Bearer s3cret-métrica", "Bearer \u2603\u2603", "Bearer \udcff"])
def test_a_non_ascii_bearer_is_a_wrong_token(client, settings, bearer):
    settings.RAIOX_METRICS_TOKEN = "s3cret-metrics-token"
    outsider = {"REMOTE_ADDR": "203.0.113.5", "HTTP_AUTHORIZATION": bearer}
    assert client.get("/metrics", **outsider).status_code == 404
    health = client.get("/healthcheck", **outsider)
    assert health.status_code in {200, 503} and set(health.json()) == {"status"}
    # The right token still opens both.
    right = {"REMOTE_ADDR": "203.0.113.5", "HTTP_AUTHORIZATION": "Bearer s3cret-metrics-token"}
    assert client.get("/metrics", **right).status_code == 200
    assert "checks" in client.get("/healthcheck", **right).json()


def test_a_non_ascii_webhook_token_is_a_403(client, settings):
    settings.RAIOX_WEBHOOK_TOKEN = "webhook-token"
    response = client.post("/webhook", "{}", content_type="application/json", HTTP_AUTHORIZATION="Bearer tökén")
    assert _error(response, 403)["code"] == "forbidden"
