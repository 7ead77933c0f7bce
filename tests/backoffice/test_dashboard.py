"""Dashboard figures from known fixtures, and the page that shows them."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone
from django_q.tasks import async_task

from implants.models import Implant
from matching.state import model_state, queue_state
from matching.workers import worker_state_record
from submissions import stats
from submissions.models import Status
from tests.builders.submissions import submission_row

pytestmark = pytest.mark.django_db


@pytest.fixture
def confirmed_cases(catalog):
    """10 confirmed cases: 7 where the confirmed implant was 1st, 2 where it was 2nd or 3rd, 1 miss."""
    implants = list(Implant.objects.order_by("id")[:5])
    a, b, c, d, e = implants
    for _ in range(7):
        submission_row(matches=[a, b, c], confirmed=a)
    submission_row(matches=[b, a, c], confirmed=a)
    submission_row(matches=[b, c, a], confirmed=a)
    submission_row(matches=[b, c, d], confirmed=e)
    # Not confirmed: never counted.
    submission_row(matches=[a, b, c])
    return implants


def test_accuracy_on_confirmed_cases(confirmed_cases, django_assert_max_num_queries):
    with django_assert_max_num_queries(1):
        accuracy = stats.confirmed_accuracy()
    assert accuracy.confirmed == 10
    assert accuracy.top1_rate == pytest.approx(0.7)
    assert accuracy.top3_rate == pytest.approx(0.9)


def test_accuracy_by_week(catalog):
    a, b, c = Implant.objects.order_by("id")[:3]
    now = timezone.now()
    # Three weeks ago: 2 of 3 first, all 3 in the top 3.
    submission_row(received_at=now - dt.timedelta(days=21), matches=[a, b, c], confirmed=a)
    submission_row(received_at=now - dt.timedelta(days=21), matches=[b, c, a], confirmed=b)
    submission_row(received_at=now - dt.timedelta(days=21), matches=[c, b, a], confirmed=a)
    submission_row(received_at=now - dt.timedelta(hours=1), matches=[a, b, c], confirmed=a)  # this week: 1/1
    weeks = stats.confirmed_accuracy().weeks
    assert [(w.confirmed, w.top1, w.top3) for w in weeks] == [(3, 2, 3), (1, 1, 1)]


def test_processing_percentiles(db):
    now = timezone.now()
    for seconds in range(1, 101):  # 1 s .. 100 s
        submission_row(received_at=now - dt.timedelta(hours=2), seconds=float(seconds))
    submission_row(status=Status.FAILED, seconds=5000.0)  # failures are not processing times
    submission_row(status=Status.RECEIVED, seconds=None)
    times = stats.answer_times()
    assert times.count == 100
    assert times.p50 == pytest.approx(50.5)
    assert times.p95 == pytest.approx(95.05)


def test_per_day_by_source_and_status(db):
    now = timezone.localtime()
    submission_row(received_at=now - dt.timedelta(days=2), source="jotform")
    submission_row(received_at=now - dt.timedelta(days=2), source="jotform", status=Status.FAILED)
    submission_row(received_at=now - dt.timedelta(minutes=5), source="api")
    submission_row(received_at=now - dt.timedelta(days=40), source="api")  # outside the window
    daily = stats.submissions_per_day(days=30)
    assert len(daily.days) == 30 and daily.days[-1] == now.date()
    assert daily.total == 3
    assert daily.by_source["jotform"][-3] == 2 and daily.by_source["api"][-1] == 1
    assert daily.by_status["failed"][-3] == 1 and daily.by_status["done"][-3] == 1


def test_queue_and_failures(db, django_capture_on_commit_callbacks):
    async_task("matching.tasks.process_submission", 1)
    async_task("matching.tasks.process_submission", 2)
    queue = queue_state()
    assert queue.waiting == 2 and queue.oldest_enqueued_at is not None
    assert 0 <= queue.oldest_age_seconds < 3600
    assert "process_submission" in queue.oldest_task
    for _ in range(3):
        submission_row(status=Status.FAILED, failure_reason="Imagem ilegível")
    submission_row(status=Status.FAILED, failure_reason="Tempo esgotado")
    assert stats.failure_reasons() == [
        {"failure_reason": "Imagem ilegível", "count": 3},
        {"failure_reason": "Tempo esgotado", "count": 1},
    ]


def test_top_matched_and_model(catalog):
    a, b, c = Implant.objects.order_by("id")[:3]
    for _ in range(3):
        submission_row(matches=[a, b], model_id="ViT-B-32/untrained-seed0")
    submission_row(matches=[c, a], model_id="ViT-B-32/untrained-seed0")
    implants, manufacturers = stats.top_matched()
    assert [(r["implant_id"], r["count"]) for r in implants] == [(a.pk, 3), (c.pk, 1)]
    assert sum(r["count"] for r in manufacturers) == 4
    # The model is what the workers report (WorkerState), never guessed from a model id.
    assert model_state().model_id is None and not model_state().untrained
    worker_state_record(model_id="ViT-B-32/untrained-seed0", untrained=True, device="cpu")
    model = model_state()
    assert model.model_id == "ViT-B-32/untrained-seed0" and model.untrained and model.workers_alive == 1
    assert (model.reference_images, model.reference_images_embedded) == (32, 0)  # seed catalogue, not embedded


def test_dashboard_page_shows_the_figures(admin_client, confirmed_cases, django_assert_max_num_queries):
    submission_row(status=Status.FAILED, failure_reason="Não foi possível ler a imagem", model_id="")
    submission_row(model_id="ViT-B-32/untrained-seed0", matches=confirmed_cases[:3])
    worker_state_record(model_id="ViT-B-32/untrained-seed0", untrained=True, device="cpu")
    with django_assert_max_num_queries(20):
        response = admin_client.get("/admin/dashboard/")
    assert response.status_code == 200
    html = response.content.decode()
    assert '<div class="rx-figure" id="fig-top1">70 %</div>' in html
    assert '<span id="fig-top3">90 %</span>' in html
    assert '<span id="fig-confirmed">10</span>' in html
    assert "modelo sem treinamento" in html
    assert "Não foi possível ler a imagem" in html
    assert html.count("<svg") >= 5  # the charts are inline SVG
    assert "<script" not in html.split('id="content-main"')[1]  # no JS charts
    # The admin index links to it.
    assert "/admin/dashboard/" in admin_client.get("/admin/").content.decode()


def test_dashboard_empty_database(admin_client):
    response = admin_client.get("/admin/dashboard/")
    assert response.status_code == 200
    assert "Nenhum caso confirmado ainda" in response.content.decode()
