"""Fault run 1: the worker is killed with SIGKILL in the middle of processing.

Submissions arrive over HTTP (the old plain form on /jotform, each with its sender id), a real
`manage.py qcluster` starts on them, and while one of them is `processing` the whole cluster's
process group gets SIGKILL (no handler runs, nothing is acknowledged). A fresh cluster is started:
tasks never taken run at once, tasks the dead cluster had taken are delivered again when their
broker lock expires (Q_CLUSTER retry). Every submission must reach `done` with exactly one set of
matches, none lost, none duplicated.
"""

from __future__ import annotations

from collections import Counter

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db.models import Count

from submissions.models import Match, Status, Submission
from testkit.images import xray_png
from tests.builders.worker import embed_catalog, report, wait_until

N = 15


def _statuses() -> Counter:
    return Counter(Submission.objects.values_list("status", flat=True))


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_worker_killed_mid_processing_loses_and_duplicates_nothing(client, catalog, cluster_factory):
    embed_catalog()
    first = cluster_factory().start()

    accepted = []
    for i in range(N):
        response = client.post(
            "/jotform",
            {
                "submissionID": f"kill-{i:03d}",
                "nome": "Dra. Ana",
                "email": "ana@example.com",
                "paciente": "Paciente Teste",
                "dente": "36",
                "file": SimpleUploadedFile(f"raiox-{i}.png", xray_png(100 + i), "image/png"),
            },
        )
        assert response.status_code == 201, response.content
        accepted.append(response.json()["token"])

    # Kill once the worker is warm (a few done) and one submission is being processed right now.
    def mid_processing() -> bool:
        counts = _statuses()
        return counts[Status.DONE] >= 3 and counts[Status.PROCESSING] >= 1

    assert wait_until(mid_processing, every=0.02), f"never caught mid-processing: {_statuses()}"
    first.kill()
    at_kill = _statuses()
    interrupted = list(Submission.objects.filter(status=Status.PROCESSING).values_list("pk", flat=True))
    assert interrupted, "the kill must interrupt a submission in processing"
    assert at_kill[Status.DONE] < N

    second = cluster_factory().start()
    assert wait_until(lambda: _statuses()[Status.DONE] == N), (
        f"not every submission reached done after the restart: {_statuses()}\n{second.output()[-3000:]}"
    )

    submissions = list(Submission.objects.annotate(n=Count("matches")).order_by("pk"))
    assert sorted(str(s.token) for s in submissions) == sorted(accepted)  # one row per delivery
    duplicated = 0
    for submission in submissions:
        ranks = sorted(Match.objects.filter(submission=submission).values_list("rank", flat=True))
        implants = Match.objects.filter(submission=submission).values_list("implant_id", flat=True)
        if ranks != list(range(1, len(ranks) + 1)) or len(set(implants)) != len(ranks) or not ranks:
            duplicated += 1
    for pk in interrupted:  # the interrupted ones really ran twice (killed, then delivered again)
        assert Submission.objects.get(pk=pk).attempts >= 2
    processed = sum(1 for s in submissions if s.status == Status.DONE)
    lost = len(accepted) - processed
    report(
        "worker SIGKILL",
        accepted=len(accepted),
        processed=processed,
        lost=lost,
        duplicated=duplicated,
        done_at_kill=at_kill[Status.DONE],
        processing_at_kill=len(interrupted),
        max_attempts=max(s.attempts for s in submissions),
    )
    assert (len(accepted), processed, lost, duplicated) == (N, N, 0, 0)
