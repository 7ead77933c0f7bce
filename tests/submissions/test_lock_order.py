"""The lock order of ``submissions/locks.py``, where one transaction locks several rows: deleting
submissions locks their review requests first (answering a review locks the request, then its
submission), and each model's rows by pk, so that a deletion and an answer, or two deletions of
overlapping sets, queue on each other instead of deadlocking."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from submissions import services
from submissions.models import ReviewRequest, Submission
from testkit.images import xray_file

pytestmark = pytest.mark.django_db


def test_deleting_submissions_locks_review_requests_first_then_submissions_by_pk():
    films = [
        services.submission_create(intake=services.IntakeRecord(source="upload", image_bytes=xray_file(seed=n)))[0]
        for n in range(2)
    ]
    ReviewRequest.objects.create(submission=films[1])

    with CaptureQueriesContext(connection) as captured:
        deleted = services.submissions_delete(submission_ids=[films[1].pk, films[0].pk])

    assert deleted == 2 and not Submission.objects.exists() and not ReviewRequest.objects.exists()
    locks = [q["sql"] for q in captured.captured_queries if "FOR UPDATE" in q["sql"]]
    review_table, submission_table = ReviewRequest._meta.db_table, Submission._meta.db_table
    assert [f'FROM "{review_table}"' in sql for sql in locks] == [True, False], locks
    assert f'FROM "{submission_table}"' in locks[1] and "ORDER BY" in locks[1] and '."id" ASC' in locks[1], locks
