"""django-q2 tasks of the submissions app: ids in, one service call."""

from __future__ import annotations

from submissions import services


def notify_dentist(submission_id: int) -> str:
    """E-mail the dentist the result link, once (``services.submission_notify_dentist``)."""
    return services.submission_notify_dentist(submission_id=submission_id)


def notify_review(review_request_id: int) -> str:
    """E-mail the dentist the specialist's answer, once (``services.review_request_notify``)."""
    return services.review_request_notify(review_request_id=review_request_id)
