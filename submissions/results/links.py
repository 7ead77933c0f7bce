"""Where a result lives: the result page, its status JSON and the API's Location, and a stored
file's URL. Absolute URLs are built from SITE_URL, never from the request's Host: the same link goes
into the e-mail, the webhook answers and the API, whichever host or proxy the request came through."""

from __future__ import annotations

from django.conf import settings
from django.urls import reverse

from submissions.models import Submission


def _absolute(path: str) -> str:
    return f"{settings.SITE_URL}{path}"


def result_path(submission: Submission) -> str:
    """The result page, for redirects within the site."""
    return reverse("submissions:result", args=[submission.token])


def result_url(submission: Submission) -> str:
    """The result page, absolute (e-mail, webhook and API answers)."""
    return _absolute(result_path(submission))


def status_url(submission: Submission) -> str:
    """The result page's status endpoint (JSON), absolute."""
    return _absolute(reverse("submissions:result-status", args=[submission.token]))


def match_api_url(submission: Submission) -> str:
    """Where an API client asks again for a pending ``/api/match/`` (the 202's Location)."""
    return _absolute(reverse("api-match-result", args=[submission.token]))


def file_url(file_field: object) -> str:
    """A stored file's URL (a short-lived signed URL on S3, /media/... locally); "" when there is
    none or the storage cannot be reached: a missing image must not break the page."""
    try:
        return file_field.url if file_field else ""  # type: ignore[attr-defined]
    except Exception:
        return ""
