"""The dentist's e-mails: once, in Portuguese, with the result link, no patient in the subject;
the result and the specialist's answer sent by the one send-once service
(``submissions/services/email.py`` ``email_send_once``)."""

from __future__ import annotations

import re
import smtplib

import pytest
from django.core import mail
from django_q.models import OrmQ

from submissions import services
from submissions.models import ReviewRequest, Submission
from submissions.services import email
from submissions.tasks import notify_dentist, notify_review
from testkit.images import xray_file
from tests.builders.submissions import submission_finished, submission_received


@pytest.fixture
def finished(db, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.SITE_URL = "https://raiox.example.com"
    received = submission_received(source="webhook", dentist_name="Ana Souza", patient="Maria Confidencial")
    return submission_finished(received)  # nothing found


def test_sent_once_with_the_link_and_no_patient_in_the_subject(finished, caplog):
    assert notify_dentist(finished.pk) == "sent"
    assert notify_dentist(finished.pk) == "already notified"

    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["ana@example.com"]
    assert f"https://raiox.example.com/r/{finished.token}/" in message.body
    assert "Maria" not in message.subject and "Confidencial" not in message.subject
    assert "Maria Confidencial" not in message.body
    assert "resultado" in message.subject
    assert message.body.startswith("Olá,") and "Dente: 36" in message.body
    assert "Ana" not in message.body  # nothing the sender typed (tests/security/test_result_email.py)
    finished.refresh_from_db()
    assert finished.notified_at is not None
    assert "Maria" not in caplog.text and "ana@example.com" not in caplog.text


def test_failure_e_mail_gives_the_reason(finished):
    services.submission_fail(submission_id=finished.pk, reason="Não foi possível ler a imagem enviada.")
    notify_dentist(finished.pk)
    (message,) = mail.outbox
    assert "não foi possível" in message.subject
    assert "Não foi possível ler a imagem enviada." in message.body


def test_failed_send_raises_for_retry_and_is_sent_on_the_next_try(finished, monkeypatch, caplog):
    def refuse(self, *args, **kwargs):
        raise smtplib.SMTPServerDisconnected("mail server down")

    monkeypatch.setattr("django.core.mail.backends.locmem.EmailBackend.send_messages", refuse)
    with pytest.raises(smtplib.SMTPServerDisconnected):
        notify_dentist(finished.pk)
    finished.refresh_from_db()
    assert finished.notified_at is None
    assert "will retry" in caplog.text and "Maria" not in caplog.text

    monkeypatch.undo()
    assert notify_dentist(finished.pk) == "sent"
    assert len(mail.outbox) == 1


def test_skipped_without_e_mail(finished):
    Submission.objects.filter(pk=finished.pk).update(dentist_email="")
    assert notify_dentist(finished.pk) == "no e-mail"
    assert mail.outbox == []


def test_not_sent_before_the_result(db, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    submission, _ = services.submission_create(
        intake=services.IntakeRecord(source="upload", dentist_email="a@example.com", image_bytes=xray_file())
    )
    assert notify_dentist(submission.pk) == "not finished"
    assert mail.outbox == []


@pytest.mark.django_db(transaction=True)
def test_recording_a_result_queues_the_e_mail_with_retries(settings):
    submission, _ = services.submission_create(
        intake=services.IntakeRecord(source="upload", dentist_email="a@example.com", image_bytes=xray_file())
    )
    services.submission_record_result(submission_id=submission.pk, embedding=[0.0] * 512, model_id="m", candidates=[])
    queued = [task.task for task in OrmQ.objects.all()]
    notify = [t for t in queued if t["func"] == "submissions.tasks.notify_dentist"]
    assert len(notify) == 1 and notify[0]["args"] == (submission.pk,)
    # Not acknowledged on failure: the broker delivers it again after Q_CLUSTER["retry"] seconds.
    assert notify[0]["ack_failure"] is False


def test_one_e_mail_per_film_none_for_its_regions(finished):
    region, _ = services.submission_create(
        intake=services.IntakeRecord(
            source="webhook",
            dentist_email="ana@example.com",
            image_bytes=xray_file(),
            parent_id=finished.pk,
            crop_box={"x": 0, "y": 0, "width": 64, "height": 64, "region": 1},
        )
    )
    services.submission_record_result(submission_id=region.pk, embedding=[0.0] * 512, model_id="m", candidates=[])
    assert notify_dentist(region.pk) == "region"
    assert notify_dentist(finished.pk) == "sent"
    assert len(mail.outbox) == 1 and f"/r/{finished.token}/" in mail.outbox[0].body


def _emailed(catalog, settings, calibrated):
    from implants.models import Implant

    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    submission, _ = services.submission_create(
        intake=services.IntakeRecord(source="upload", dentist_email="ana@example.com", image_bytes=xray_file())
    )
    implants = list(Implant.objects.order_by("pk")[:3])
    services.submission_record_result(
        submission_id=submission.pk,
        embedding=[0.0] * 512,
        model_id="m",
        candidates=[
            services.MatchCandidate(i.pk, None, s, p, band)
            for i, s, (p, band) in zip(implants, (0.99, 0.98, 0.97), calibrated, strict=True)
        ],
    )
    assert notify_dentist(submission.pk) == "sent"
    return mail.outbox[-1].body


def test_the_e_mail_carries_the_estimated_probability_only_with_a_calibration(catalog, settings):
    body = _emailed(catalog, settings, [(0.62, "media"), (0.2, "baixa"), (0.1, "baixa")])
    assert "Probabilidade estimada do primeiro candidato: 62 % (Confiança média)." in body
    body = _emailed(catalog, settings, [(None, "")] * 3)
    # The result link carries a random token, which may itself contain "99": look at the words only.
    words = re.sub(r"https?://\S+", "<link>", body)
    assert "O modelo ainda não foi calibrado" in words and "%" not in words and "99" not in words
    body = _emailed(catalog, settings, [(0.04, "nenhuma"), (0.03, "nenhuma"), (0.02, "nenhuma")])
    assert "Nenhuma correspondência convincente" in body and "Probabilidade" not in body


# --- one send-once service for both e-mails -------------------------------------------------------


def _refuse(self, *args, **kwargs):
    raise smtplib.SMTPServerDisconnected("mail server down")


def _answered(submission: Submission) -> ReviewRequest:
    review, _ = services.review_request_create(submission=submission)
    return services.review_request_answer(review_request=review, user=None, note="Imagem sem a rosca visível.")


def test_both_e_mails_go_through_the_one_send_once_service(finished, monkeypatch):
    review = _answered(finished)
    seen = []
    real = email.email_send_once

    def spy(**kwargs):
        seen.append((type(kwargs["row"]), kwargs["row"].pk, kwargs["label"]))
        return real(**kwargs)

    monkeypatch.setattr(email, "email_send_once", spy)
    assert [notify_dentist(finished.pk), notify_review(review.pk)] == ["sent", "sent"]
    assert [notify_dentist(finished.pk), notify_review(review.pk)] == ["already notified"] * 2
    assert (
        seen
        == [
            (Submission, finished.pk, "notify_dentist: submission"),
            (ReviewRequest, review.pk, "notify_review: review"),
        ]
        * 2
    )
    assert len(mail.outbox) == 2


def test_a_failed_review_e_mail_is_retried_and_sent_once(finished, monkeypatch, caplog):
    review = _answered(finished)
    monkeypatch.setattr("django.core.mail.backends.locmem.EmailBackend.send_messages", _refuse)
    with pytest.raises(smtplib.SMTPServerDisconnected):
        notify_review(review.pk)
    review.refresh_from_db()
    assert review.notified_at is None and review.email_skipped_reason == ""
    assert f"notify_review: review {review.pk} e-mail failed (SMTPServerDisconnected); will retry" in caplog.text
    assert "Maria" not in caplog.text and "ana@example.com" not in caplog.text

    monkeypatch.undo()
    assert notify_review(review.pk) == "sent"
    assert notify_review(review.pk) == "already notified"
    assert len(mail.outbox) == 1 and "não conseguiu identificar" in mail.outbox[0].body
    review.refresh_from_db()
    assert review.notified_at is not None
    assert f"notify_review: review {review.pk} e-mail sent" in caplog.text


def test_the_daily_cap_counts_both_kinds_and_only_e_mails_that_went_out(finished, settings, monkeypatch):
    settings.RAIOX_RESULT_EMAILS_PER_DAY = 2
    second = submission_finished(submission_received(image=xray_file(seed=2)))
    review = _answered(finished)
    assert notify_dentist(finished.pk) == "sent"

    # A review e-mail the mail server refused counts nothing: the second result still goes out.
    monkeypatch.setattr("django.core.mail.backends.locmem.EmailBackend.send_messages", _refuse)
    with pytest.raises(smtplib.SMTPServerDisconnected):
        notify_review(review.pk)
    monkeypatch.undo()
    assert notify_dentist(second.pk) == "sent"

    # One result and one more result: the retried review e-mail is over the address's cap.
    assert notify_review(review.pk) == "daily limit"
    assert notify_review(review.pk) == "skipped"
    assert len(mail.outbox) == 2
    review.refresh_from_db()
    assert review.notified_at is None
    assert review.email_skipped_reason == "limite diário de e-mails para este endereço atingido"
