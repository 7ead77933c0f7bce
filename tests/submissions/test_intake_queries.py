"""The statements one webhook costs: a new Jotform delivery is one transaction holding the
submission and its task (``kernel.queue.enqueue_on_commit``), nothing else; a repeat costs the
refused insert and the lookup. Counted so that the intake path cannot grow back unnoticed."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django_q.models import OrmQ

from submissions.models import Submission
from testkit.images import xray_file
from testkit.payloads import jotform_payload


def statements(ctx: CaptureQueriesContext) -> list[str]:
    """Each statement reduced to its first words (``INSERT INTO "table"``, ``BEGIN``...)."""
    out = []
    for query in ctx.captured_queries:
        sql = query["sql"].strip()
        if sql.startswith("WITH task AS (INSERT INTO"):
            out.append('INSERT INTO "django_q_ormq" + pg_notify')
        else:
            out.append(" ".join(sql.split()[:3]) if sql.startswith("INSERT") else sql.split()[0])
    return out


# Transactional: BEGIN/COMMIT are the real ones (a test transaction would make them savepoints).
@pytest.mark.django_db(transaction=True)
def test_a_jotform_webhook_is_one_transaction_of_two_statements(client, upload_host, settings):
    # As in production: the webhook URL carries the token (only its holder learns a repeat's link).
    settings.JOTFORM_WEBHOOK_TOKEN = "t0ken"
    body, content_type = jotform_payload(upload_base=upload_host.url("/u/"))

    with CaptureQueriesContext(connection) as ctx:
        response = client.generic("POST", "/jotform?token=t0ken", body, content_type=content_type)

    assert response.status_code == 201, response.content
    assert statements(ctx) == [
        "BEGIN",
        'INSERT INTO "submissions_submission"',
        'INSERT INTO "django_q_ormq" + pg_notify',
        "COMMIT",
    ]
    submission = Submission.objects.get()
    assert [task.task["args"] for task in OrmQ.objects.all()] == [(submission.pk,)]

    # Jotform delivers it again: the unique constraint refuses the row (nothing queued), the
    # lookup answers with the original.
    with CaptureQueriesContext(connection) as ctx:
        repeat = client.generic("POST", "/jotform?token=t0ken", body, content_type=content_type)

    assert repeat.status_code == 200 and repeat.json()["token"] == str(submission.token)
    assert statements(ctx) == ["BEGIN", 'INSERT INTO "submissions_submission"', "ROLLBACK", "SELECT"]
    assert Submission.objects.count() == 1 and OrmQ.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_webhook_with_the_file_looks_up_repeats_before_storing(client):
    form = {"submissionID": "plain-001", "nome": "Dra. Ana", "email": "ana@example.com", "dente": "36"}

    def deliver():
        upload = SimpleUploadedFile("raio.png", xray_file(), "image/png")
        with CaptureQueriesContext(connection) as ctx:
            response = client.post("/jotform", {**form, "file": upload})
        return response, statements(ctx)

    response, sent = deliver()

    assert response.status_code == 201, response.content
    assert sent == [
        "SELECT",
        "BEGIN",
        'INSERT INTO "submissions_submission"',
        'INSERT INTO "django_q_ormq" + pg_notify',
        "COMMIT",
    ]
    # The lookup first: a repeat with bytes is answered before its image is validated and stored.
    repeat, sent = deliver()
    assert repeat.status_code == 200 and sent == ["SELECT"]


@pytest.mark.django_db(transaction=True)
def test_a_submission_rolled_back_leaves_no_task(client, upload_host, monkeypatch):
    """The task row is part of the submission's transaction: when the transaction fails after the
    task was written, neither stays (with a queue-after-commit the opposite risk existed: a
    committed submission whose task was never sent)."""
    from django.db import DatabaseError

    from submissions.services import processing

    def broken_enqueue(*args, **kwargs):
        real(*args, **kwargs)  # the task row is written...
        raise DatabaseError("connection lost")  # ...then the transaction fails

    real = processing.enqueue_on_commit
    monkeypatch.setattr(processing, "enqueue_on_commit", broken_enqueue)
    body, content_type = jotform_payload(upload_base=upload_host.url("/u/"))

    response = client.generic("POST", "/jotform", body, content_type=content_type)

    assert response.status_code == 503
    assert Submission.objects.count() == 0 and OrmQ.objects.count() == 0
