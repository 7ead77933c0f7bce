"""The admin's one "identificar o implante" page, through HTTP: one page, one form, one permission
for confirming a submission and answering its review request; reached from the submission (button,
action) and from the review queue; "not identifiable" offered only while a request is open."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.urls import reverse

from implants.models import Implant
from submissions import services
from submissions.models import ReviewOutcome, ReviewRequest, Submission
from tests.builders.submissions import implant_candidates, queued, submission_finished, submission_received

pytestmark = pytest.mark.django_db


@pytest.fixture
def submission(catalog) -> Submission:
    return submission_finished(submission_received(), candidates=implant_candidates((0.62, 0.60, 0.55)))


def _as(people, name: str) -> Client:
    client = Client()
    if people[name].user is not None:
        client.force_login(people[name].user)
    return client


def _page_url(submission: Submission) -> str:
    return reverse("admin:submissions_submission_confirm", args=[submission.pk])


def _buttons(html: str) -> set[str]:
    return set(re.findall(r'<(?:input|button) type="submit"[^>]* name="([a-z_]+)"', html))


def test_permission_matrix_on_both_urls(people, submission):
    review, _ = services.review_request_create(submission=submission)
    urls = {
        "page": _page_url(submission),
        "old answer URL": reverse("admin:submissions_reviewrequest_answer", args=[review.pk]),
    }
    implant = Implant.objects.first()
    for where, url in urls.items():
        for name in ("viewer", "editor"):  # staff without the confirmation's permission
            client = _as(people, name)
            assert client.get(url, follow=True).status_code == 403, (where, name)
            assert client.post(url, {"implant": implant.pk}).status_code == 403, (where, name)
        for name in ("plain", "anonymous"):  # not staff: the admin's login
            response = _as(people, name).get(url)
            assert response.status_code == 302 and "/admin/login/" in response["Location"], (where, name)
        for name in ("reviewer", "admin"):
            assert _as(people, name).get(url, follow=True).status_code == 200, (where, name)
    review.refresh_from_db()
    submission.refresh_from_db()
    assert review.answered_at is None and submission.confirmed_implant is None


def test_the_page_reads_as_a_confirmation_without_a_review_request(people, submission):
    page = _as(people, "reviewer").get(_page_url(submission)).content.decode()
    assert "Identificar o implante do envio #" in page
    assert "Um dos candidatos" in page and "Ou qualquer implante do catálogo" in page
    assert 'value="Confirmar"' in page and "Implante do catálogo" in page
    assert _buttons(page) == {"candidate", "identified"}
    assert "Não identificável" not in page and "Nota ao dentista" not in page
    assert 'data-testid="review-request"' not in page
    assert page.count('name="candidate"') == 3


def test_confirming_from_the_submission_page(people, submission, django_capture_on_commit_callbacks):
    reviewer = _as(people, "reviewer")
    detail = reviewer.get(reverse("admin:submissions_submission_change", args=[submission.pk])).content.decode()
    assert _page_url(submission) in detail and "Identificar o implante…" in detail

    # The list's action leads to the same page.
    action = reviewer.post(
        reverse("admin:submissions_submission_changelist"), {"action": "confirm", "_selected_action": [submission.pk]}
    )
    assert action.status_code == 302 and action["Location"] == _page_url(submission)

    chosen = submission.matches.order_by("rank")[1].implant
    with django_capture_on_commit_callbacks(execute=True):
        answer = reviewer.post(_page_url(submission), {"candidate": chosen.pk, "answering": "False"})
    assert answer.status_code == 302
    assert answer["Location"] == reverse("admin:submissions_submission_change", args=[submission.pk])
    submission.refresh_from_db()
    assert submission.confirmed_implant == chosen and submission.confirmed_by == people["reviewer"].user
    assert submission.confirmed_reference_image is not None
    assert queued("submissions.tasks.notify_review") == []
    followed = reviewer.get(answer["Location"]).content.decode()
    assert "Implante confirmado" in followed


def test_not_identifiable_is_refused_without_an_open_review(people, submission):
    refused = _as(people, "reviewer").post(
        _page_url(submission), {"not_identifiable": "1", "answer_note": "Sem rosca visível."}
    )
    assert refused.status_code == 400 and "Escolha o implante." in refused.content.decode()
    submission.refresh_from_db()
    assert submission.confirmed_implant is None and not ReviewRequest.objects.exists()


def test_with_an_open_review_the_page_offers_the_answer(people, submission):
    services.review_request_create(submission=submission, note="Colocado em 2012.")
    page = _as(people, "reviewer").get(_page_url(submission)).content.decode()
    assert 'data-testid="review-request"' in page and "Pedido de revisão do dentista" in page
    assert '<strong data-testid="dentist-note">Colocado em 2012.</strong>' in page
    assert _buttons(page) == {"candidate", "identified", "not_identifiable"}
    assert 'value="Responder com este implante"' in page and "Não identificável (explique na nota)" in page
    assert '<label for="id_answer_note">Nota ao dentista</label>' in page
    assert '<input type="hidden" name="answering" value="True"' in page
    assert page.index('id="id_answer_note"') < page.index('name="candidate"')  # the note goes with any button


def test_the_queue_leads_to_the_page_and_the_old_url_redirects(people, submission):
    review, _ = services.review_request_create(submission=submission)
    reviewer = _as(people, "reviewer")
    queue = reviewer.get(reverse("admin:submissions_reviewrequest_changelist")).content.decode()
    assert f'href="{_page_url(submission)}">Responder…' in queue
    old = reviewer.get(reverse("admin:submissions_reviewrequest_answer", args=[review.pk]))
    assert old.status_code == 302 and old["Location"] == _page_url(submission)


def test_answering_the_review_from_the_submission_page_confirms_too(
    people, submission, django_capture_on_commit_callbacks
):
    review, _ = services.review_request_create(submission=submission)
    reviewer = _as(people, "reviewer")
    truth = Implant.objects.order_by("-id").first()
    with django_capture_on_commit_callbacks(execute=True):
        answer = reviewer.post(
            _page_url(submission), {"implant": truth.pk, "answer_note": "Hexágono externo.", "answering": "True"}
        )
    assert answer.status_code == 302 and answer["Location"] == reverse("admin:submissions_reviewrequest_changelist")
    review.refresh_from_db()
    submission.refresh_from_db()
    assert review.outcome == ReviewOutcome.IDENTIFIED and review.implant == truth
    assert review.answer_note == "Hexágono externo." and review.answered_by == people["reviewer"].user
    assert submission.confirmed_implant == truth and submission.confirmed_reference_image is not None
    assert queued("submissions.tasks.notify_review") == [(review.pk,)]
    assert "Resposta enviada ao dentista." in reviewer.get(answer["Location"]).content.decode()

    # Answered: the page says so, and no longer offers "not identifiable" nor the note.
    page = reviewer.get(_page_url(submission)).content.decode()
    assert 'data-testid="review-answered"' in page and "Este pedido já foi respondido" in page
    assert "Hexágono externo." in page
    assert _buttons(page) == {"candidate", "identified", "unconfirm"}

    # A later confirmation from the page changes the confirmation, not the answer.
    other = Implant.objects.order_by("id").first()
    with django_capture_on_commit_callbacks(execute=True):
        again = reviewer.post(_page_url(submission), {"implant": other.pk, "answering": "False"})
    assert again.status_code == 302
    review.refresh_from_db()
    submission.refresh_from_db()
    assert submission.confirmed_implant == other and review.implant == truth
    assert len(queued("submissions.tasks.notify_review")) == 1


def test_not_identifiable_from_the_submission_page(people, submission):
    review, _ = services.review_request_create(submission=submission)
    reviewer = _as(people, "reviewer")
    refused = reviewer.post(_page_url(submission), {"not_identifiable": "1", "answer_note": "", "answering": "True"})
    assert refused.status_code == 400 and "Explique ao dentista" in refused.content.decode()
    done = reviewer.post(
        _page_url(submission), {"not_identifiable": "1", "answer_note": "Imagem cortada.", "answering": "True"}
    )
    assert done.status_code == 302
    review.refresh_from_db()
    submission.refresh_from_db()
    assert review.outcome == ReviewOutcome.NOT_IDENTIFIABLE and review.answer_note == "Imagem cortada."
    assert submission.confirmed_implant is None


def test_a_review_answered_meanwhile_is_a_conflict_not_a_silent_reconfirmation(people, submission):
    review, _ = services.review_request_create(submission=submission)
    first, second = Implant.objects.order_by("id")[:2]
    services.review_request_answer(review_request=review, user=people["admin"].user, implant=first)
    # The reviewer's page was loaded while the request was open (answering=True).
    late = _as(people, "reviewer").post(_page_url(submission), {"implant": second.pk, "answering": "True"})
    assert late.status_code == 409 and "já foi respondido por outro revisor" in late.content.decode()
    submission.refresh_from_db()
    assert submission.confirmed_implant == first


def test_the_entry_service_answers_an_open_request_locking_it_first(people, submission):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    review, _ = services.review_request_create(submission=submission)
    implant = Implant.objects.first()
    with CaptureQueriesContext(connection) as captured:
        answered = services.submission_identify(submission=submission, user=people["reviewer"].user, implant=implant)
    assert answered is not None and answered.pk == review.pk and answered.implant == implant
    locks = [q["sql"] for q in captured.captured_queries if "FOR UPDATE" in q["sql"]]
    assert f'FROM "{ReviewRequest._meta.db_table}"' in locks[0], locks
    assert any(f'FROM "{Submission._meta.db_table}"' in sql for sql in locks[1:]), locks
