"""django-q2 tasks of the submissions app: ids in, one service call.

A queued task is stored in django-q's queue table by its dotted path (``NOTIFY_TASK``,
``NOTIFY_REVIEW_TASK``), so its name must outlive a deploy: ``notify_dentist`` and
``notify_review`` keep their old names (the services they call are the e-mail ones of
``services/email.py``) so that tasks queued before a release still run after it.
"""

from __future__ import annotations

from submissions import services
from submissions.results.email import build_result_email, build_review_email


def notify_dentist(submission_id: int) -> str:
    """E-mail the dentist the result link, once (``services.submission_email_result``)."""
    return services.submission_email_result(submission_id=submission_id, build=build_result_email)


def requeue_stuck_submissions() -> str:
    """Scheduled (ensure_schedules): queue again submissions stuck past the limit."""
    counts = services.submission_requeue_stuck()
    return ", ".join(f"{k}={v}" for k, v in counts.items())


def apply_retention() -> str:
    """Scheduled (ensure_schedules): delete what is older than RAIOX_RETENTION_DAYS."""
    report = services.retention_apply()
    return f"submissions={report.submissions} tasks={report.tasks} sessions={report.sessions}"


def notify_review(review_request_id: int) -> str:
    """E-mail the dentist the specialist's answer, once (``services.review_request_email_answer``)."""
    return services.review_request_email_answer(review_request_id=review_request_id, build=build_review_email)
