"""/metrics: the named series, computed from the database; refused to anonymous outsiders."""

from __future__ import annotations

import pytest
from django_q.models import OrmQ
from django_q.tasks import async_task
from prometheus_client.parser import text_string_to_metric_families

from submissions.services.processing import submission_fail
from tests.builders.submissions import submission_processed

SERIES = [
    "raiox_http_request_duration_seconds",
    "raiox_submissions",
    "raiox_submissions_failed",
    "raiox_submission_answer_seconds",
    "raiox_submission_worker_seconds",
    "raiox_embedding_seconds",
    "raiox_task_failures",
    "raiox_queue_depth",
    "raiox_queue_oldest_task_age_seconds",
    "raiox_worker_model_info",
    "raiox_reference_images",
    "raiox_database_up",
]


def samples(text: str) -> dict[tuple[str, tuple], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def test_metrics_expose_the_named_series_with_values_from_the_database(client, catalog, make_submission):
    done = make_submission(source="upload")
    submission_processed(done)
    failed = make_submission(source="jotform", external_id="j-1")
    submission_fail(submission_id=failed.pk, reason="imagem ilegível")
    make_submission(source="api")  # received, not yet processed
    # The services queued the submissions' tasks with them (same transaction); say a worker took
    # those, and two others wait.
    OrmQ.objects.all().delete()
    async_task("raiox.backups.backup_task")
    async_task("raiox.backups.backup_task")
    client.get("/healthcheck")

    response = client.get("/metrics")  # the test client comes from 127.0.0.1: allowed by default
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    text = response.content.decode()
    names = {family.name for family in text_string_to_metric_families(text)}
    assert set(SERIES) <= names
    values = samples(text)
    assert values[("raiox_submissions", (("source", "upload"), ("status", "done")))] == 1
    assert values[("raiox_submissions", (("source", "jotform"), ("status", "failed")))] == 1
    assert values[("raiox_submissions", (("source", "api"), ("status", "received")))] == 1
    assert values[("raiox_submissions_failed", (("source", "jotform"),))] == 1
    # The failed one has no answer: only the answered one is timed.
    assert values[("raiox_submission_answer_seconds_count", ())] == 1
    assert values[("raiox_submission_worker_seconds_count", ())] == 1
    assert values[("raiox_queue_depth", ())] == 2
    assert values[("raiox_worker_model_info", (("model", "ViT-B-32/untrained-seed0"), ("untrained", "true")))] == 1
    assert values[("raiox_database_up", ())] == 1
    latency = [
        key
        for key in values
        if key[0] == "raiox_http_request_duration_seconds_count" and ("view", "healthcheck") in key[1]
    ]
    assert latency and values[latency[0]] >= 1


def test_metrics_and_the_dashboard_time_the_same_answer(client, admin_client, catalog, make_submission):
    """One submission waited 10 s in the queue and took the worker 2 s: the dashboard's "tempo de
    resposta" and /metrics' answer time both say 12 s; /metrics' worker time says 2 s."""
    import datetime as dt

    from submissions import stats
    from submissions.models import Submission

    done = make_submission(source="upload")
    submission_processed(done)
    received = Submission.objects.get(pk=done.pk).received_at
    Submission.objects.filter(pk=done.pk).update(
        started_at=received + dt.timedelta(seconds=10), finished_at=received + dt.timedelta(seconds=12)
    )

    values = samples(client.get("/metrics").content.decode())
    assert values[("raiox_submission_answer_seconds_sum", ())] == pytest.approx(12.0)
    assert values[("raiox_submission_worker_seconds_sum", ())] == pytest.approx(2.0)
    assert values[("raiox_submission_answer_seconds_bucket", (("le", "10.0"),))] == 0
    assert values[("raiox_submission_answer_seconds_bucket", (("le", "20.0"),))] == 1
    assert stats.answer_times().p50 == pytest.approx(12.0)
    page = admin_client.get("/admin/dashboard/")
    assert page.status_code == 200
    assert "Tempo de resposta" in page.content.decode()
    assert "12.0 s" in page.content.decode()


def test_answer_time_is_one_quantity_on_the_dashboard_the_csv_the_admin_and_metrics(
    client, admin_client, catalog, make_submission
):
    """Three answers that waited in the queue: the CSV's ``tempo_s``, the admin column, the
    dashboard's median and /metrics' answer time are all received -> finished (ANSWER_TIME); only
    /metrics' worker time is started -> finished (WORKER_TIME)."""
    import csv
    import datetime as dt
    import io
    import statistics

    from submissions.models import Submission

    timings = [(10, 12), (15, 20), (27, 30)]  # (started, finished) seconds after received
    for started, finished in timings:
        done = make_submission(source="upload")
        submission_processed(done)
        received = Submission.objects.get(pk=done.pk).received_at
        Submission.objects.filter(pk=done.pk).update(
            started_at=received + dt.timedelta(seconds=started), finished_at=received + dt.timedelta(seconds=finished)
        )
    answers = [float(finished) for _started, finished in timings]
    workers = [float(finished - started) for started, finished in timings]

    ids = list(Submission.objects.values_list("pk", flat=True))
    export = admin_client.post("/admin/submissions/submission/", {"action": "export_csv", "_selected_action": ids})
    assert export.status_code == 200
    rows = list(csv.DictReader(io.StringIO(export.content.decode("utf-8-sig"))))
    csv_seconds = [float(row["tempo_s"]) for row in rows]
    assert csv_seconds == answers

    changelist = admin_client.get("/admin/submissions/submission/").content.decode()
    assert all(f"{seconds:.1f} s" in changelist for seconds in answers)

    dashboard = admin_client.get("/admin/dashboard/").content.decode()
    assert f'id="fig-p50">{statistics.median(csv_seconds):.1f} s<' in dashboard

    values = samples(client.get("/metrics").content.decode())
    assert values[("raiox_submission_answer_seconds_count", ())] == len(csv_seconds)
    assert values[("raiox_submission_answer_seconds_sum", ())] == pytest.approx(sum(csv_seconds))
    assert values[("raiox_submission_worker_seconds_sum", ())] == pytest.approx(sum(workers))


def test_metrics_count_failed_worker_tasks(client, db):
    from django.utils import timezone
    from django_q.models import Task

    now = timezone.now()
    Task.objects.create(
        id="a" * 32, name="t1", func="matching.tasks.process_submission", started=now, stopped=now, success=False
    )
    values = samples(client.get("/metrics").content.decode())
    assert values[("raiox_task_failures", (("func", "matching.tasks.process_submission"),))] == 1


@pytest.mark.parametrize(
    "headers",
    [
        {"REMOTE_ADDR": "203.0.113.5"},
        {"REMOTE_ADDR": "203.0.113.5", "HTTP_AUTHORIZATION": "Bearer wrong-token"},
        # Without a trusted proxy, a forged X-Forwarded-For is not believed.
        {"REMOTE_ADDR": "203.0.113.5", "HTTP_X_FORWARDED_FOR": "127.0.0.1"},
    ],
)
def test_metrics_refuse_anonymous_requests_from_outside(client, db, settings, headers):
    settings.RAIOX_METRICS_TOKEN = "s3cret-metrics-token"
    response = client.get("/metrics", **headers)
    assert response.status_code == 404
    assert b"raiox_" not in response.content


def test_metrics_through_the_proxy_see_the_real_client(client, db, settings):
    # Behind nginx every request comes from 127.0.0.1; the client is the address nginx appended.
    settings.RAIOX_TRUSTED_PROXY_COUNT = 1
    assert client.get("/metrics", HTTP_X_FORWARDED_FOR="203.0.113.5").status_code == 404
    assert client.get("/metrics", HTTP_X_FORWARDED_FOR="127.0.0.1").status_code == 200


def test_metrics_token_lets_prometheus_in_from_anywhere(client, db, settings):
    settings.RAIOX_METRICS_TOKEN = "s3cret-metrics-token"
    response = client.get("/metrics", REMOTE_ADDR="203.0.113.5", HTTP_AUTHORIZATION="Bearer s3cret-metrics-token")
    assert response.status_code == 200
    assert b"raiox_queue_depth" in response.content


def test_queue_age_is_reported_in_metrics(client, db):
    from datetime import timedelta

    from django.utils import timezone
    from django_q.models import OrmQ

    async_task("raiox.backups.backup_task")
    OrmQ.objects.update(lock=timezone.now() - timedelta(minutes=30))
    values = samples(client.get("/metrics").content.decode())
    assert values[("raiox_queue_oldest_task_age_seconds", ())] >= 1800
