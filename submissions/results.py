"""Reads of a submission's result shared by every page and API that shows it (no torch here).

"No convincing match" is derived from the stored Matches and ``RAIOX_MIN_SIMILARITY`` each time, not
stored, so that changing the cut-off applies to every result at once.
"""

from __future__ import annotations

from django.conf import settings
from django.db.models import QuerySet

from submissions.models import Match, Status, Submission


def is_convincing(similarity: float | None) -> bool:
    """Whether a similarity (0-1) is high enough to be shown as an answer."""
    return similarity is not None and float(similarity) >= settings.RAIOX_MIN_SIMILARITY


def no_convincing_match(submission: Submission) -> bool:
    """True when a finished submission's best candidate is below the cut-off, or there is none:
    the answer is then "no convincing match" rather than three arbitrary implants."""
    if submission.status != Status.DONE:
        return False
    best = submission.matches.order_by("rank").values_list("similarity", flat=True).first()
    return not is_convincing(best)


def top_matches(submission: Submission, k: int | None = None) -> QuerySet[Match]:
    k = k or settings.RAIOX_TOP_K
    return submission.matches.select_related("implant__manufacturer", "reference_image").order_by("rank")[:k]
