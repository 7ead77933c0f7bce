"""Recording that the dentist was told (the e-mail is sent by ``submissions.tasks.notify_dentist``)."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from submissions.models import Submission


@transaction.atomic
def submission_mark_notified(*, submission_id: int) -> bool:
    """Set ``notified_at`` once; False when it was already set (the e-mail went out before)."""
    submission = Submission.objects.select_for_update().get(pk=submission_id)
    if submission.notified_at is not None:
        return False
    submission.notified_at = timezone.now()
    submission.save(update_fields=["notified_at"])
    return True
