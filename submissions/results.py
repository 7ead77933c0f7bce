"""Reads of a submission's result shared by every page and API that shows it (no torch here).

"No convincing match" is derived from the stored Matches and ``RAIOX_MIN_SIMILARITY`` each time, not
stored, so that changing the cut-off applies to every result at once.
"""

from __future__ import annotations

import time

from django.conf import settings
from django.core.files.storage import default_storage
from django.db.models import QuerySet
from django.http import HttpRequest

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


POLL_SECONDS = 0.05


def wait_for_result(submission_id: int, seconds: float) -> None:
    """Wait up to ``seconds`` for the worker to finish a submission. The web process only polls
    the database (a cheap indexed read); the worker does the matching."""
    deadline = time.monotonic() + seconds
    while True:
        state = Submission.objects.filter(pk=submission_id).values_list("status", flat=True).first()
        if state in (Status.DONE, Status.FAILED) or time.monotonic() >= deadline:
            return
        time.sleep(POLL_SECONDS)


def result_body(request: HttpRequest, submission: Submission) -> dict:
    """The old ``POST /upload`` answer, shared by ``/upload`` and ``/api/match/``: status, the
    result and status URLs, and when done the top implants with signed reference-image URLs."""
    token = str(submission.token)
    body: dict = {
        "status": submission.status,
        "submission": token,
        "result_url": request.build_absolute_uri(f"/r/{token}/"),
        "status_url": request.build_absolute_uri(f"/r/{token}/status.json"),
    }
    if submission.status == Status.DONE:
        implants = []
        for match in top_matches(submission):
            image = match.reference_image.image if match.reference_image else None
            implants.append(
                {
                    "id": match.implant_id,
                    "name": match.implant.name,
                    "manufacturer": match.implant.manufacturer.name,
                    "image_url": request.build_absolute_uri(default_storage.url(image.name)) if image else None,
                    "similarity": round(match.similarity, 4),
                    "rank": match.rank,
                }
            )
        body["no_convincing_match"] = no_convincing_match(submission)
        body["implants"] = implants
    elif submission.status == Status.FAILED:
        body.update({"error": submission.failure_reason, "field": "file", "code": "processing_failed"})
    return body
