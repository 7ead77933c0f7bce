"""Ask a specialist: the dentist asks once (page or API), a reviewer answers once (admin), the
dentist gets one e-mail and sees the answer above the automatic candidates; the dashboard's
review figures; permissions as for confirming."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from django.core import mail
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from implants.models import Implant
from submissions import services
from submissions.models import ReviewOutcome, ReviewRequest, Submission
from submissions.stats import review_figures
from submissions.tasks import notify_review
from tests.builders.submissions import (
    implant_candidates,
    queued,
    submission_finished,
    submission_received,
    submission_row,
)
from tests.builders.threads import at_once


def _finished(similarities=(0.62, 0.60, 0.55)) -> Submission:
    """A finished upload answered by the first catalogue implants (by id) with ``similarities``."""
    return submission_finished(submission_received(), candidates=implant_candidates(similarities))


@pytest.fixture
def locmem(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.SITE_URL = "https://raiox.example.com"


# --- the dentist asks ------------------------------------------------------------------------


@pytest.mark.django_db
def test_low_confidence_page_offers_the_specialist_and_asking_twice_makes_one_request(catalog, client):
    submission = _finished()
    page = client.get(f"/r/{submission.token}/").content.decode()
    assert 'data-testid="review-offer"' in page and "specialist-suggested" in page
    assert "Resultado incerto? Peça a revisão de um especialista" in page

    url = reverse("submissions:review", args=[submission.token])
    first = client.post(url, {"note": "Colocado em 2012."}, follow=True)
    second = client.post(url, {"note": "outra coisa"}, follow=True)
    assert "Pedido enviado!" in first.content.decode()
    assert "Você já pediu a revisão" in second.content.decode()
    review = ReviewRequest.objects.get()
    assert review.submission == submission and review.note == "Colocado em 2012."
    page = second.content.decode()
    assert 'data-testid="review-pending"' in page and 'data-testid="review-offer"' not in page


@pytest.mark.django_db
def test_a_convincing_result_offers_review_without_insisting(catalog, client):
    submission = _finished(similarities=(0.97, 0.80, 0.70))
    page = client.get(f"/r/{submission.token}/").content.decode()
    assert 'data-testid="review-offer"' in page and "specialist-suggested" not in page


@pytest.mark.django_db
def test_bad_note_is_refused_and_nothing_is_stored(catalog, client, admin_user):
    submission = _finished()
    api = Client()
    api.force_login(admin_user)
    url = f"/api/match/{submission.token}/review/"
    answer = api.post(url, {"note": "x" * 1001}, content_type="application/json")
    assert answer.status_code == 400
    assert answer.json()["field"] == "note" and answer.json()["code"] == "too_long"
    answer = api.post(url, {"note": "bad\x00char"}, content_type="application/json")
    assert answer.status_code == 400
    assert not ReviewRequest.objects.exists()


@pytest.mark.django_db
def test_api_asks_once_and_reads_the_answer(catalog, admin_user, locmem):
    submission = _finished()
    api = Client()
    api.force_login(admin_user)
    url = f"/api/match/{submission.token}/review/"
    assert api.get(url).status_code == 404
    created = api.post(url, {"note": "Periapical antiga"}, content_type="application/json")
    assert created.status_code == 201 and created.json()["state"] == "open"
    again = api.post(url, {}, content_type="application/json")
    assert again.status_code == 200 and again.json()["note"] == "Periapical antiga"
    assert ReviewRequest.objects.count() == 1
    assert Client().post(url, {}, content_type="application/json").status_code in (401, 403)

    implant = Implant.objects.order_by("id")[1]
    services.review_request_answer(review_request=ReviewRequest.objects.get(), user=admin_user, implant=implant)
    body = api.get(url).json()
    assert body["state"] == "identified" and body["implant"] == implant.pk
    assert implant.name in body["implant_label"]


@pytest.mark.django_db(transaction=True)
def test_two_dentist_tabs_asking_at_once_make_one_request(catalog):
    submission = _finished()
    url = reverse("submissions:review", args=[submission.token])
    codes = at_once([lambda: Client().post(url, {"note": "pressa"}).status_code] * 2)
    assert codes == [302, 302]
    assert ReviewRequest.objects.filter(submission=submission).count() == 1


# --- the specialist answers ---------------------------------------------------------------------


@pytest.mark.django_db
def test_answer_with_the_implant_confirms_emails_once_and_shows_on_the_page(
    catalog, people, locmem, client, django_capture_on_commit_callbacks
):
    submission = _finished()
    review, _ = services.review_request_create(submission=submission, note="")
    reviewer = Client()
    reviewer.force_login(people["reviewer"].user)

    queue = reviewer.get(reverse("admin:submissions_reviewrequest_changelist"))
    assert queue.status_code == 200 and "Responder…" in queue.content.decode()

    truth = Implant.objects.order_by("-id").first()
    answer_url = reverse("admin:submissions_reviewrequest_answer", args=[review.pk])
    with django_capture_on_commit_callbacks(execute=True):
        answer = reviewer.post(answer_url, {"implant": truth.pk, "answer_note": "Conexão hexágono externo."})
    assert answer.status_code == 302
    submission.refresh_from_db()
    review.refresh_from_db()
    assert review.outcome == ReviewOutcome.IDENTIFIED and review.implant == truth
    assert review.answered_by == people["reviewer"].user
    # The answer is the staff confirmation: the X-ray became a reference image of that implant.
    assert submission.confirmed_implant == truth and submission.confirmed_reference_image is not None

    assert queued("submissions.tasks.notify_review") == [(review.pk,)]
    assert notify_review(review.pk) == "sent"
    assert notify_review(review.pk) == "already notified"
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["ana@example.com"] and "Maria Paciente" not in message.subject + message.body
    assert truth.name in message.body and f"/r/{submission.token}/" in message.body

    page = client.get(f"/r/{submission.token}/").content.decode()
    assert f"Confirmado por especialista: <strong>{truth.manufacturer.name} {truth.name}</strong>" in page
    assert page.index('data-testid="specialist-answer"') < page.index('data-testid="candidate"')
    assert "Conexão hexágono externo." in page


@pytest.mark.django_db
def test_not_identifiable_needs_a_note_and_tells_the_dentist(catalog, people, locmem, client):
    submission = _finished()
    review, _ = services.review_request_create(submission=submission)
    reviewer = Client()
    reviewer.force_login(people["reviewer"].user)
    url = reverse("admin:submissions_reviewrequest_answer", args=[review.pk])
    refused = reviewer.post(url, {"not_identifiable": "1", "answer_note": ""})
    assert refused.status_code == 400 and "Explique ao dentista" in refused.content.decode()
    assert ReviewRequest.objects.get().answered_at is None

    done = reviewer.post(url, {"not_identifiable": "1", "answer_note": "Imagem sem a rosca visível."})
    assert done.status_code == 302
    review.refresh_from_db()
    assert review.outcome == ReviewOutcome.NOT_IDENTIFIABLE and review.implant is None
    submission.refresh_from_db()
    assert submission.confirmed_implant is None
    notify_review(review.pk)
    assert len(mail.outbox) == 1 and "não conseguiu identificar" in mail.outbox[0].body
    page = client.get(f"/r/{submission.token}/").content.decode()
    assert "implante não identificável" in page and "Imagem sem a rosca visível." in page


@pytest.mark.django_db(transaction=True)
def test_two_reviewers_answering_at_once_one_wins(catalog, people, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    submission = _finished()
    review, _ = services.review_request_create(submission=submission)
    first, second = Implant.objects.order_by("id")[:2]
    url = reverse("admin:submissions_reviewrequest_answer", args=[review.pk])
    barrier = threading.Barrier(2)
    codes: dict[int, int] = {}

    def answer(user, implant) -> None:
        try:
            c = Client()
            c.force_login(user)
            barrier.wait()
            codes[implant.pk] = c.post(url, {"implant": implant.pk}).status_code
        finally:
            connection.close()

    threads = [
        threading.Thread(target=answer, args=(people["reviewer"].user, first)),
        threading.Thread(target=answer, args=(people["admin"].user, second)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(codes.values()) == [302, 409]
    winner = next(pk for pk, code in codes.items() if code == 302)
    review.refresh_from_db()
    submission.refresh_from_db()
    assert review.implant_id == winner and submission.confirmed_implant_id == winner
    # One answer, one confirmation image, one e-mail queued.
    assert submission.confirmed_reference_image is not None
    assert len(queued("submissions.tasks.notify_review")) == 1


@pytest.mark.django_db
def test_answering_needs_the_confirm_permission(catalog, people):
    submission = _finished()
    review, _ = services.review_request_create(submission=submission)
    url = reverse("admin:submissions_reviewrequest_answer", args=[review.pk])
    implant = Implant.objects.first()
    for name in ("viewer", "editor"):
        c = Client()
        c.force_login(people[name].user)
        assert c.post(url, {"implant": implant.pk}).status_code == 403, name
    plain = Client()
    plain.force_login(people["plain"].user)
    assert plain.post(url, {"implant": implant.pk}).status_code == 302  # to the admin login
    assert Client().get(reverse("admin:submissions_reviewrequest_changelist")).status_code == 302
    assert ReviewRequest.objects.get().answered_at is None


# --- the dashboard ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_dashboard_review_figures_from_fixtures(people):
    now = timezone.now()
    hours = [1, 2, 3, 4, 10]  # answered after these many hours
    for h in hours:
        s = submission_row()
        ReviewRequest.objects.create(
            submission=s,
            requested_at=now - dt.timedelta(days=2),
            answered_at=now - dt.timedelta(days=2) + dt.timedelta(hours=h),
            outcome=ReviewOutcome.NOT_IDENTIFIABLE,
            answer_note="n",
        )
    for h in (5, 30):  # still open, waiting this long
        ReviewRequest.objects.create(submission=submission_row(), requested_at=now - dt.timedelta(hours=h))
    # Answered long ago: outside the 30 days of the time-to-answer figures.
    ReviewRequest.objects.create(
        submission=submission_row(),
        requested_at=now - dt.timedelta(days=60),
        answered_at=now - dt.timedelta(days=59),
        outcome=ReviewOutcome.NOT_IDENTIFIABLE,
    )

    figures = review_figures(days=30)
    assert figures.open == 2 and figures.answered == 5
    assert figures.p50 == pytest.approx(3 * 3600)
    assert figures.p95 == pytest.approx((4 + 0.8 * 6) * 3600)  # linear interpolation, like percentile_cont
    assert figures.oldest_open_seconds == pytest.approx(30 * 3600, abs=60)

    admin = Client()
    admin.force_login(people["admin"].user)
    page = admin.get("/admin/dashboard/").content.decode()
    assert '<div class="rx-figure rx-bad" id="fig-reviews-open">2</div>' in page
    assert '<span id="fig-reviews-p50">3.0 h</span>' in page
    assert '<span id="fig-reviews-p95">8.8 h</span>' in page
