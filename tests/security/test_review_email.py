"""The specialist-review e-mail is no relay either (issue 22): it greets with a fixed word, never
the name the sender typed, and it shares the per-address daily cap of the result e-mail. Addresses
are kept in one canonical form on every route (NFKC, IDNA domain, lower-case; quoted local parts
and IP-literal domains refused), so spelling one mailbox another way does not dodge the cap."""

from __future__ import annotations

import base64
import json

import pytest
from django.contrib.auth.models import User
from django.core import mail
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from submissions import services
from submissions.models import ReviewRequest, Submission
from submissions.tasks import notify_dentist, notify_review
from testkit.images import xray_png
from testkit.payloads import plain_form
from tests.security.test_result_email import PATIENT, PHISHING, _sent_by_a_stranger

pytestmark = pytest.mark.django_db

FULL_WIDTH = "vitima@ｅｘａｍｐｌｅ．ｃｏｍ"  # full-width letters and dot: the same mailbox


@pytest.fixture(autouse=True)
def _mail(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.RAIOX_UPLOAD_WAIT_SECONDS = 0


def _answered_review(submission: Submission) -> ReviewRequest:
    review, _ = services.review_request_create(submission=submission, note=PHISHING)
    return services.review_request_answer(review_request=review, user=None, note="Imagem sem o implante inteiro.")


def test_the_review_e_mail_greets_without_the_typed_name(client, django_capture_on_commit_callbacks):
    submission = _sent_by_a_stranger(client, django_capture_on_commit_callbacks, email="vitima@example.com")
    review = _answered_review(submission)
    assert notify_review(review.pk) == "sent"
    [message] = mail.outbox
    assert message.body.startswith("Olá,\n")
    for typed in (PHISHING, "banco-falso", "Seu acesso", PATIENT):
        assert typed not in f"{message.subject}\n{message.body}"
    assert "Imagem sem o implante inteiro." in message.body  # the specialist's words are still there


def test_review_e_mails_share_the_daily_cap_with_result_e_mails(
    client, settings, django_capture_on_commit_callbacks, admin_client
):
    settings.RAIOX_RESULT_EMAILS_PER_DAY = 2
    first = _sent_by_a_stranger(client, django_capture_on_commit_callbacks, email="vitima@example.com", seed=1)
    second = _sent_by_a_stranger(client, django_capture_on_commit_callbacks, email=FULL_WIDTH, seed=2)
    assert second.dentist_email == "vitima@example.com"  # one mailbox, one spelling
    assert [notify_dentist(first.pk), notify_dentist(second.pk)] == ["sent", "sent"]

    review = _answered_review(first)
    assert notify_review(review.pk) == "daily limit"
    assert notify_review(review.pk) == "skipped"  # a second delivery sends nothing either
    assert len(mail.outbox) == 2
    review.refresh_from_db()
    assert review.notified_at is None
    assert review.email_skipped_reason == "limite diário de e-mails para este endereço atingido"

    # And a review e-mail sent counts against the result e-mails of the day.
    settings.RAIOX_RESULT_EMAILS_PER_DAY = 3
    assert notify_review(review.pk) == "skipped"
    ReviewRequest.objects.filter(pk=review.pk).update(email_skipped_reason="")
    assert notify_review(review.pk) == "sent"
    third = _sent_by_a_stranger(client, django_capture_on_commit_callbacks, email="VITIMA@example.com", seed=3)
    assert notify_dentist(third.pk) == "daily limit"
    assert len(mail.outbox) == 3


# --- the one address rule, on every route ------------------------------------------------------

CANONICAL = [
    (FULL_WIDTH, "vitima@example.com"),
    ("Vitima@EXAMPLE.com", "vitima@example.com"),
    ("ana@bücher.de", "ana@xn--bcher-kva.de"),
]
REFUSED = ['"vitima"@example.com', '"vi tima"@example.com', "vitima@[127.0.0.1]", "vitima@[IPv6:::1]", "a@b@c.com"]


def _api_client() -> Client:
    user = User.objects.create_user("clinica", password="x-pass-123")
    api = Client()
    api.force_login(user)
    return api


def _post(route: str, client: Client, address: str, seed: int):
    if route == "/webhook":
        body = {"nome": "Ana", "email": address, "file": base64.b64encode(xray_png(seed)).decode()}
        return client.post("/webhook", json.dumps(body), content_type="application/json")
    if route == "/jotform":  # the old plain form
        body, content_type = plain_form(xray_png(seed), email=address.encode())
        return client.post("/jotform", body, content_type=content_type)
    form = {"file": SimpleUploadedFile("rx.png", xray_png(seed), "image/png"), "nome": "Ana", "email": address}
    return client.post(route, form)


ROUTES = ["/upload", "/api/match/", "/webhook", "/jotform"]


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize(("typed", "stored"), CANONICAL)
def test_every_route_stores_the_canonical_address(client, route, typed, stored):
    sender = _api_client() if route == "/api/match/" else client
    response = _post(route, sender, typed, seed=len(typed))
    assert response.status_code in (200, 201, 202), response.content
    assert list(Submission.objects.values_list("dentist_email", flat=True)) == [stored]


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("typed", REFUSED)
def test_every_route_refuses_quoted_and_ip_literal_addresses(client, route, typed):
    sender = _api_client() if route == "/api/match/" else client
    response = _post(route, sender, typed, seed=1)
    assert response.status_code == 400, response.content
    assert response.json()["field"] == "email"
    assert response.json()["code"] == "invalid_email"
    assert Submission.objects.count() == 0
