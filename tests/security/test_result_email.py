"""The result e-mail is no relay (issue 13): anyone may send an X-ray with any address, so the
message carries nothing the sender typed, and one address gets at most
``RAIOX_RESULT_EMAILS_PER_DAY`` result e-mails in any 24 hours (the submission records why the
next one was not sent)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core import mail
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from submissions import services
from submissions.models import Submission
from submissions.tasks import notify_dentist
from testkit.images import xray_png

pytestmark = pytest.mark.django_db

PHISHING = "Seu acesso expirou, entre em https://banco-falso.example/login"
PATIENT = "Maria Confidencial"
FILENAME = "senha-do-banco.png"


@pytest.fixture(autouse=True)
def _mail(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.RAIOX_UPLOAD_WAIT_SECONDS = 0  # no worker here: the result is recorded below


def _sent_by_a_stranger(client, django_capture_on_commit_callbacks, *, email: str, seed: int = 1) -> Submission:
    """An X-ray posted to /upload by anyone, naming any address; its result recorded as the
    worker would."""
    with django_capture_on_commit_callbacks(execute=False):
        response = client.post(
            "/upload",
            {
                "file": SimpleUploadedFile(FILENAME, xray_png(seed), "image/png"),
                "nome": PHISHING,
                "email": email,
                "paciente": PATIENT,
                "dente": "36",
            },
        )
    assert response.status_code == 202, response.content
    submission = Submission.objects.get(token=response.json()["submission"])
    return services.submission_record_result(
        submission_id=submission.pk, embedding=[0.0] * 512, model_id="m", candidates=[]
    )


def test_the_e_mail_carries_nothing_the_sender_typed(client, django_capture_on_commit_callbacks):
    done = _sent_by_a_stranger(client, django_capture_on_commit_callbacks, email="vitima@example.com")
    failed = _sent_by_a_stranger(client, django_capture_on_commit_callbacks, email="vitima@example.com", seed=2)
    services.submission_fail(submission_id=failed.pk, reason="Não foi possível ler a imagem enviada.")
    assert notify_dentist(done.pk) == "sent" and notify_dentist(failed.pk) == "sent"

    assert len(mail.outbox) == 2
    for message in mail.outbox:
        text = f"{message.subject}\n{message.body}"
        for typed in (PHISHING, "banco-falso", "Seu acesso", PATIENT, "Maria", FILENAME, "senha"):
            assert typed not in text
        assert message.body.startswith("Olá,\n")
        assert "/r/" in message.body  # the result link is still there


def test_one_address_gets_at_most_the_daily_limit(client, settings, django_capture_on_commit_callbacks, admin_client):
    settings.RAIOX_RESULT_EMAILS_PER_DAY = 3
    sent = [
        _sent_by_a_stranger(client, django_capture_on_commit_callbacks, email=email, seed=seed)
        for seed, email in enumerate(["vitima@example.com", "Vitima@Example.com", "vitima@example.com"], start=1)
    ]
    one_more = _sent_by_a_stranger(client, django_capture_on_commit_callbacks, email="VITIMA@example.com", seed=4)
    other = _sent_by_a_stranger(client, django_capture_on_commit_callbacks, email="outra@example.com", seed=5)

    assert [notify_dentist(s.pk) for s in sent] == ["sent"] * 3
    assert notify_dentist(one_more.pk) == "daily limit"
    assert notify_dentist(one_more.pk) == "skipped"  # a second delivery of the task sends nothing either
    assert notify_dentist(other.pk) == "sent"  # another address has its own count
    assert [m.to for m in mail.outbox] == [["vitima@example.com"]] * 3 + [["outra@example.com"]]

    one_more.refresh_from_db()
    assert one_more.notified_at is None
    assert one_more.email_skipped_reason == "limite diário de e-mails para este endereço atingido"
    page = admin_client.get(f"/admin/submissions/submission/{one_more.pk}/change/")
    assert "limite diário de e-mails para este endereço atingido" in page.content.decode()

    # A day later the address may receive result e-mails again.
    Submission.objects.filter(pk__in=[s.pk for s in sent]).update(notified_at=timezone.now() - dt.timedelta(hours=25))
    later = _sent_by_a_stranger(client, django_capture_on_commit_callbacks, email="vitima@example.com", seed=6)
    assert notify_dentist(later.pk) == "sent"
    assert len(mail.outbox) == 5
