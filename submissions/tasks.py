"""django-q2 tasks of the submissions app (ids in, services for writes)."""

from __future__ import annotations

import logging

logger = logging.getLogger(__name__)


def notify_dentist(submission_id: int) -> None:
    """E-mail the dentist the result link. Implemented by the intake issue (#4)."""
    logger.info("notify_dentist: submission %s (e-mail not yet implemented)", submission_id)
