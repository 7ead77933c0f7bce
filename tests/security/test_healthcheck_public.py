"""``/healthcheck`` (issue 13): the public learns whether the service is up, nothing more — not the
model, the device, the pgvector version, the queue or the workers — with the same 200 / 503 as
before; the details go to the callers ``/metrics`` lets in (allow-listed address or bearer token)
and to logged-in staff. A public hit does not cost a storage request each time."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User

from raiox import health

pytestmark = pytest.mark.django_db

OUTSIDER = {"REMOTE_ADDR": "203.0.113.7"}  # not in RAIOX_METRICS_ALLOWED_IPS
DETAIL_KEYS = {"status", "failing", "warnings", "checks"}


@pytest.fixture(autouse=True)
def _fresh_probe(monkeypatch, settings):
    monkeypatch.setattr(health, "_last_storage_probe", None, raising=False)  # each test starts without a probe
    settings.RAIOX_METRICS_ALLOWED_IPS = ["127.0.0.1", "10.0.0.0/8"]
    settings.RAIOX_METRICS_TOKEN = "monitoring-secret-token"


def _break_storage(settings) -> None:
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            **settings.STORAGES["default"],
            "OPTIONS": {**settings.STORAGES["default"]["OPTIONS"], "endpoint_url": "http://127.0.0.1:9"},
        },
    }


def test_the_public_gets_the_status_only(client):
    response = client.get("/healthcheck", **OUTSIDER)
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    for secret in ("pgvector", "model", "device", "queue", "workers", "version"):
        assert secret not in response.content.decode()


def test_the_monitoring_and_staff_get_the_details(client):
    allowed = client.get("/healthcheck", REMOTE_ADDR="10.1.2.3").json()
    assert set(allowed) == DETAIL_KEYS and allowed["checks"]["pgvector"]["version"].startswith("0.")
    bearer = client.get("/healthcheck", HTTP_AUTHORIZATION="Bearer monitoring-secret-token", **OUTSIDER).json()
    assert set(bearer) == DETAIL_KEYS
    wrong = client.get("/healthcheck", HTTP_AUTHORIZATION="Bearer guessed", **OUTSIDER).json()
    assert wrong == {"status": "ok"}

    client.force_login(User.objects.create_user("dentista", password="x-pass-123"))  # logged in, not staff
    assert client.get("/healthcheck", **OUTSIDER).json() == {"status": "ok"}
    client.force_login(User.objects.create_user("equipe", password="x-pass-123", is_staff=True))
    assert set(client.get("/healthcheck", **OUTSIDER).json()) == DETAIL_KEYS


def test_the_public_status_follows_an_outage_with_the_same_code(client, monkeypatch):
    def broken():
        raise ConnectionError("database down")

    monkeypatch.setitem(health.CHECKS, "database", broken)
    response = client.get("/healthcheck", **OUTSIDER)
    assert response.status_code == 503 and response.json() == {"status": "unavailable"}


def test_public_hits_reuse_a_recent_storage_probe(client, s3_storage, settings, monkeypatch):
    assert client.get("/healthcheck", **OUTSIDER).json() == {"status": "ok"}  # probes the bucket
    _break_storage(settings)
    # Within the probe's life a public hit does not ask the bucket again (it would fail now)...
    assert client.get("/healthcheck", **OUTSIDER).json() == {"status": "ok"}
    # ...once the probe is old, the next public hit probes, and reports the outage.
    monkeypatch.setattr(health, "STORAGE_PROBE_SECONDS", 0.0, raising=False)
    response = client.get("/healthcheck", **OUTSIDER)
    assert response.status_code == 503 and response.json() == {"status": "unavailable"}


def test_the_monitoring_always_probes_the_storage(client, s3_storage, settings):
    assert client.get("/healthcheck", **OUTSIDER).status_code == 200  # a recent probe, storage up
    _break_storage(settings)
    detailed = client.get("/healthcheck", HTTP_AUTHORIZATION="Bearer monitoring-secret-token", **OUTSIDER)
    assert detailed.status_code == 503 and detailed.json()["failing"] == ["storage"]
