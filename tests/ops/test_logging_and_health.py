"""Logs: a request id on every line, JSON when configured, never a patient's name. Healthcheck extras."""

from __future__ import annotations

import json
import logging
from datetime import timedelta

from django.utils import timezone
from django_q.models import OrmQ
from django_q.tasks import async_task

from raiox.logging import JsonFormatter, RequestIdFilter
from tests.builders.submissions import submission_processed
from tests.ops.conftest import PATIENT


def test_intake_and_processing_logs_never_contain_the_patient_name(client, caplog, catalog, make_submission):
    caplog.set_level(logging.DEBUG)
    submission = make_submission(patient=PATIENT)
    submission_processed(submission)
    duplicate = make_submission(patient=PATIENT, source="jotform", external_id="dup-1")
    make_submission(patient=PATIENT, source="jotform", external_id="dup-1")
    client.get("/healthcheck")
    client.get("/metrics")
    client.get(f"/admin/submissions/submission/{duplicate.pk}/change/")  # a redirect to login, logged
    assert caplog.records, "nothing was logged: the test would prove nothing"
    formatter = JsonFormatter("%(asctime)s %(levelname)s %(name)s %(message)s")
    for record in caplog.records:
        RequestIdFilter().filter(record)
        line = formatter.format(record)
        for part in PATIENT.split():
            assert part not in line


def test_every_log_line_of_a_request_carries_its_request_id(client, caplog, db):
    caplog.set_level(logging.INFO)
    response = client.get("/healthcheck", HTTP_X_REQUEST_ID="abc12345-req")
    assert response["X-Request-ID"] == "abc12345-req"
    client.get("/no-such-page", HTTP_X_REQUEST_ID="zzz98765-req")  # logged by django.request as 404
    not_found = [r for r in caplog.records if r.name == "django.request"]
    assert not_found and all(r.request_id == "zzz98765-req" for r in not_found)


def test_a_malformed_request_id_is_replaced(client, db):
    response = client.get("/healthcheck", HTTP_X_REQUEST_ID="bad id\nwith newline")
    assert response["X-Request-ID"] != "bad id\nwith newline"
    assert len(response["X-Request-ID"]) == 32


def test_json_log_lines_are_one_object_each():
    record = logging.LogRecord("raiox.test", logging.WARNING, __file__, 1, "submission %s failed", (42,), None)
    RequestIdFilter().filter(record)
    line = JsonFormatter("%(asctime)s %(levelname)s %(name)s %(request_id)s %(message)s").format(record)
    data = json.loads(line)
    assert data["message"] == "submission 42 failed"
    assert data["level"] == "WARNING" and data["logger"] == "raiox.test" and data["request_id"] == "-"


def test_healthcheck_reports_queue_age_and_model_state(client, catalog, make_submission):
    OrmQ.objects.all().delete()  # the seeded catalogue's embedding tasks: taken by a worker
    body = client.get("/healthcheck").json()
    assert body["checks"]["queue"]["ok"] and body["checks"]["queue"]["waiting"] == 0
    assert body["checks"]["model"]["model"] is None and "warning" in body["checks"]["model"]

    submission_processed(make_submission())
    OrmQ.objects.all().delete()  # the submission's tasks, queued with it: taken by a worker
    async_task("raiox.backups.backup_task")
    OrmQ.objects.update(lock=timezone.now() - timedelta(hours=1))
    response = client.get("/healthcheck")
    body = response.json()
    assert response.status_code == 200  # slow workers: a warning, not an outage of the web node
    queue = body["checks"]["queue"]
    assert queue["waiting"] == 1 and queue["oldest_task_age_seconds"] >= 3600 and "warning" in queue
    model = body["checks"]["model"]
    assert model["model"] == "ViT-B-32/untrained-seed0" and model["untrained"] is True
    assert set(body["warnings"]) == {"queue", "model"}
