"""Abuse limits on every anonymous write (issue 13): per client address behind the configured
proxies, counted in the shared cache, 429 with Retry-After (JSON for machines, a pt-BR page for
people); another client behind the same proxy is not affected, and a forged X-Forwarded-For does
not buy a fresh count. Small configured limits, so nothing here depends on the clock."""

from __future__ import annotations

import base64
import json
import time

import pytest
from django.core.cache import caches
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from kernel.http import client_address
from submissions.models import Submission
from testkit.images import xray_file
from tests.builders.submissions import jotform_submission, submission_received

pytestmark = pytest.mark.django_db

# The rates' periods are 30 days: a window boundary cannot fall inside a test.
LIMIT = 3
# nginx (127.0.0.1) appends the address it saw; it is the only proxy trusted.
ALICE = {"REMOTE_ADDR": "127.0.0.1", "HTTP_X_FORWARDED_FOR": "198.51.100.7"}
BOB = {"REMOTE_ADDR": "127.0.0.1", "HTTP_X_FORWARDED_FOR": "203.0.113.9"}
# Alice pretending to be someone else: nginx still appends her real address last.
ALICE_FORGING = {"REMOTE_ADDR": "127.0.0.1", "HTTP_X_FORWARDED_FOR": "192.0.2.1, 198.51.100.7"}


@pytest.fixture(autouse=True)
def limits(settings):
    caches[settings.RAIOX_SHARED_CACHE].clear()
    settings.RAIOX_TRUSTED_PROXY_COUNT = 1
    settings.RAIOX_RATE_LIMITS = {"intake": f"{LIMIT}/30d", "machine": "5/30d", "actions": f"{LIMIT}/30d"}
    settings.RAIOX_UPLOAD_WAIT_SECONDS = 0  # no worker here: /upload answers 202 at once
    settings.RAIOX_WEBHOOK_TOKEN = ""
    settings.JOTFORM_WEBHOOK_TOKEN = ""
    yield
    caches[settings.RAIOX_SHARED_CACHE].clear()


def upload(client: Client, who: dict, seed: int = 0):
    return client.post("/upload", {"file": SimpleUploadedFile("rx.png", xray_file(seed=seed))}, **who)


def assert_429(response, *, json_body: bool) -> None:
    assert response.status_code == 429, response.content
    assert int(response["Retry-After"]) > 0
    if json_body:
        assert response.json()["code"] == "rate_limited"
        assert "Muitas solicitações" in response.json()["error"]
    else:
        assert "Muitas solicitações seguidas" in response.content.decode()


def test_client_address_trusts_only_the_configured_proxies(rf, settings):
    settings.RAIOX_TRUSTED_PROXY_COUNT = 0
    assert client_address(rf.get("/", **ALICE)) == "127.0.0.1"  # no proxy trusted: the header is the client's
    settings.RAIOX_TRUSTED_PROXY_COUNT = 1
    assert client_address(rf.get("/", **ALICE)) == "198.51.100.7"
    assert client_address(rf.get("/", **ALICE_FORGING)) == "198.51.100.7"
    assert client_address(rf.get("/", REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="not-an-ip")) == "127.0.0.1"
    settings.RAIOX_TRUSTED_PROXY_COUNT = 2  # a load balancer, then nginx
    two = rf.get("/", REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="192.0.2.1, 198.51.100.7, 10.0.0.2")
    assert client_address(two) == "198.51.100.7"


def test_upload_is_limited_per_client_and_other_clients_are_not(client):
    codes = [upload(client, ALICE, seed=i).status_code for i in range(LIMIT + 4)]
    assert codes == [202] * LIMIT + [429] * 4
    assert Submission.objects.count() == LIMIT  # a refused request stores nothing
    assert_429(upload(client, ALICE_FORGING, seed=99), json_body=True)

    assert upload(client, BOB, seed=50).status_code == 202
    assert Submission.objects.count() == LIMIT + 1


def test_webhook_and_jotform_count_anonymous_deliveries(client):
    def webhook(i: int, who: dict):
        body = {"nome": "Ana", "email": "ana@example.com", "id": f"w{i}", "file": base64.b64encode(xray_file(seed=i))}
        body["file"] = body["file"].decode()
        return client.post("/webhook", json.dumps(body), content_type="application/json", **who)

    codes = [webhook(i, ALICE).status_code for i in range(LIMIT)]
    assert codes == [201] * LIMIT
    assert_429(webhook(10, ALICE), json_body=True)
    # The limit is per address, across the anonymous routes: /jotform is refused too.
    jot = client.post(
        "/jotform",
        {"nome": "Ana", "email": "ana@example.com", "file": SimpleUploadedFile("rx.png", xray_file(seed=7))},
        **ALICE,
    )
    assert_429(jot, json_body=True)
    assert webhook(20, BOB).status_code == 201


def test_a_sender_with_the_webhook_token_has_its_own_generous_limit(client, settings):
    settings.RAIOX_WEBHOOK_TOKEN = "s3cret"
    auth = {**ALICE, "HTTP_AUTHORIZATION": "Bearer s3cret"}
    for i in range(LIMIT):  # Alice spends her anonymous allowance
        assert upload(client, ALICE, seed=i).status_code == 202
    assert upload(client, ALICE, seed=9).status_code == 429

    def webhook(i: int, who: dict):
        body = {"nome": "Ana", "email": "ana@example.com", "id": f"t{i}"}
        body["file"] = base64.b64encode(xray_file(seed=30 + i)).decode()
        return client.post("/webhook", json.dumps(body), content_type="application/json", **who)

    assert [webhook(i, auth).status_code for i in range(6)] == [201] * 5 + [429]
    # Guessing the token is counted as anonymous: Alice has nothing left.
    assert webhook(40, {**BOB, "HTTP_AUTHORIZATION": "Bearer guess"}).status_code == 403
    assert_429(webhook(41, {**ALICE, "HTTP_AUTHORIZATION": "Bearer guess"}), json_body=True)


def test_upload_page_answers_a_pt_br_page_or_its_scripts_json(client):
    data = {"nome": "Dra. Ana", "email": "ana@example.com", "paciente": "Maria", "dente": "36"}
    for i in range(LIMIT):
        response = client.post("/enviar/", {**data, "file": SimpleUploadedFile("rx.png", xray_file(seed=i))}, **ALICE)
        assert response.status_code == 302
    page = client.post("/enviar/", {**data, "file": SimpleUploadedFile("rx.png", xray_file(seed=9))}, **ALICE)
    assert_429(page, json_body=False)
    script = client.post(
        "/enviar/",
        {**data, "file": SimpleUploadedFile("rx.png", xray_file(seed=9))},
        HTTP_ACCEPT="application/json",
        **ALICE,
    )
    assert script.status_code == 429 and "Muitas solicitações" in script.json()["errors"]["__all__"][0]
    assert client.get("/enviar/", **ALICE).status_code == 200  # reading the page is never limited
    assert Submission.objects.count() == LIMIT


def test_result_page_actions_and_crop_are_limited(client):
    submission = submission_received(
        patient="Maria Souza", dentist_email="dra.ana@example.com", filename="rx.png", image=xray_file(size=(400, 300))
    )
    token = submission.token
    feedback = reverse("submissions:feedback", args=[token])
    refine = reverse("submissions:refine", args=[token])
    crop = reverse("submissions:crop", args=[token])

    codes = [client.post(feedback, {"implant_id": "x"}, **ALICE).status_code for _ in range(LIMIT)]
    assert codes == [302] * LIMIT
    assert_429(client.post(refine, {"limpar": "1"}, **ALICE), json_body=False)
    assert client.post(refine, {"limpar": "1"}, **BOB).status_code == 302

    # Each crop its own implant (side by side): overlapping crops are refused by the region rules.
    boxes = [{"x": str(10 + 100 * n), "y": "10", "width": "90", "height": "200"} for n in range(LIMIT + 1)]
    assert [client.post(crop, box, **BOB).status_code for box in boxes[:LIMIT]] == [302] * LIMIT
    assert_429(client.post(crop, boxes[LIMIT], **BOB), json_body=False)
    assert Submission.objects.filter(parent=submission).count() == LIMIT


def test_login_lockouts_key_on_the_real_client(rf, settings):
    """django-axes asks kernel.http.client_address (it had no ipware: every lockout keyed on nginx)."""
    from axes.helpers import get_client_ip_address

    assert get_client_ip_address(rf.post("/admin/login/", **ALICE)) == "198.51.100.7"


THANKS = "/jotform/obrigado/"


def test_thank_you_lookups_are_counted_per_real_client_not_per_proxy(settings):
    """Behind nginx every dentist arrives from 127.0.0.1: one dentist's refreshes must not lock
    the others out of their own thank-you page."""
    settings.RAIOX_THANKYOU_RATE_LIMIT = 2
    alice, bob = Client(), Client()
    codes = [alice.get(THANKS, {"sid": "5800000000000000001"}, **ALICE).status_code for _ in range(3)]
    assert codes == [200, 200, 429]
    refused = alice.get(THANKS, {"sid": "5800000000000000001"}, **ALICE)
    assert int(refused["Retry-After"]) > 0
    assert bob.get(THANKS, {"sid": "5800000000000000002"}, **BOB).status_code == 200


def test_thank_you_page_stops_refreshing_after_the_pending_window(settings):
    settings.RAIOX_THANKYOU_PENDING_SECONDS = 120
    browser = Client()
    first = browser.get(THANKS, {"sid": "5800000000000000003"}, **ALICE).content.decode()
    assert 'http-equiv="refresh"' in first and "Recebido, analisando" in first
    # The webhook never arrives: once the window is over (here: shortened), the page stops.
    settings.RAIOX_THANKYOU_PENDING_SECONDS = 0
    later = browser.get(THANKS, {"sid": "5800000000000000003"}, **ALICE).content.decode()
    assert 'http-equiv="refresh"' not in later
    assert "demorando mais que o normal" in later and "e-mail" in later


@pytest.mark.django_db(transaction=True)
def test_an_unreachable_count_lets_the_request_meet_the_outage_itself(client, settings):
    """The counts live in the database: when they cannot be read (here a cache table that is not
    there) the request is not counted rather than answered 500 — in a real outage the intake
    then answers its own 503 with Retry-After (tests/faults/test_database_down.py)."""
    settings.CACHES = {
        **settings.CACHES,
        "unreachable": {"BACKEND": "kernel.cache.AtomicDatabaseCache", "LOCATION": "no_such_cache_table"},
    }
    settings.RATELIMIT_USE_CACHE = "unreachable"
    assert upload(client, ALICE).status_code == 202


def test_other_traffic_never_culls_a_limit_or_a_claim(settings):
    """Issue 22: Django's database cache culled a third of its live keys past 300 entries, the
    rate-limit counters first: a flood of other keys served a limited client again at once, and
    dropped the thank-you claims."""
    settings.RAIOX_THANKYOU_RATE_LIMIT = 2
    cache = caches[settings.RAIOX_SHARED_CACHE]
    jotform_submission("5800000000000000010")  # a claim is taken only for a submission that exists
    alice = Client()
    codes = [alice.get(THANKS, {"sid": "5800000000000000010"}, **ALICE).status_code for _ in range(3)]
    assert codes == [302, 302, 429]  # its result, then the limit
    claim = cache.get("thankyou-claim:5800000000000000010")
    assert claim
    # Other traffic, far past the old 300 and the new MAX_ENTRIES (each with an expiry, as every
    # entry of this cache has): many addresses' counters, many claims.
    for n in range(1100):
        cache.set(f"zz-other-{n:05d}", n, timeout=600)
    assert alice.get(THANKS, {"sid": "5800000000000000010"}, **ALICE).status_code == 429
    assert cache.get("thankyou-claim:5800000000000000010") == claim
    # Expired rows do make room.
    cache.set("short-lived", 1, timeout=0.001)
    time.sleep(0.01)
    cache.set("one-more", 1, timeout=600)
    assert cache.get("zz-other-00000") == 0 and cache.get("short-lived") is None
