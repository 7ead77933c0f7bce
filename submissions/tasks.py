"""django-q2 tasks of the submissions app: ids in, one service call."""

from __future__ import annotations

from submissions import services


def notify_dentist(submission_id: int) -> str:
    """E-mail the dentist the result link, once (``services.submission_notify_dentist``)."""
    return services.submission_notify_dentist(submission_id=submission_id)


def requeue_stuck_submissions() -> str:
    """Scheduled (ensure_schedules): queue again submissions stuck past the limit."""
    counts = services.submission_requeue_stuck()
    return ", ".join(f"{k}={v}" for k, v in counts.items())


def apply_retention() -> str:
    """Scheduled (ensure_schedules): delete what is older than RAIOX_RETENTION_DAYS."""
    report = services.retention_apply()
    return f"submissions={report.submissions} tasks={report.tasks} sessions={report.sessions}"


def notify_review(review_request_id: int) -> str:
    """E-mail the dentist the specialist's answer, once (``services.review_request_notify``)."""
    return services.review_request_notify(review_request_id=review_request_id)
