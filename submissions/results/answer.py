"""The answers built from a result outside the page: the JSON of ``POST /upload`` and
``/api/match/`` (``match_result``, rendered by ``submissions.serializers.MatchResultSerializer``),
the region links of the API and webhook answers, and the e-mail's one-line headline."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from submissions.fixtures import quality_messages
from submissions.models import Match, Status, Submission
from submissions.results.confidence import shown_band, shown_confidences
from submissions.results.links import result_url, status_url
from submissions.results.queries import (
    fixture_boxes,
    lookalike_warning,
    no_convincing_match,
    no_fixture_found,
    top_matches,
)


@dataclass(frozen=True)
class MatchResult:
    """The old ``POST /upload`` answer, shared by ``/upload`` and ``/api/match/``: implants only
    when done, the error only when failed (None: the key is left out of the JSON)."""

    submission: Submission
    status: str
    result_url: str
    status_url: str
    no_convincing_match: bool | None = None
    implants: list[Match] | None = None
    error: str | None = None
    field: str | None = None
    code: str | None = None
    regions: list[dict] | None = None
    # When done: what the finder saw (None: it did not run), what to fix, and "nothing found".
    fixtures: list[dict] | None = None
    quality_problems: list[dict] | None = None
    no_fixture_found: bool | None = None


def region_links(children: Sequence[Submission]) -> list[dict]:
    """The implants marked on a film, as API and webhook answers list them: number, tooth, and the
    token, status and result page of each one's own submission."""
    return [
        {
            "region": (child.crop_box or {}).get("region", n),
            "tooth": child.tooth,
            "token": str(child.token),
            "status": child.status,
            "result_url": result_url(child),
            # Found by the worker (not marked by the dentist), with its tooth position as a
            # suggestion (the FDI quadrant on a panoramic; null when it cannot be told).
            "found": bool((child.crop_box or {}).get("found")),
            "suggested_quadrant": (child.crop_box or {}).get("suggested_quadrant"),
        }
        for n, child in enumerate(children, start=1)
    ]


def match_result(submission: Submission) -> MatchResult:
    children = list(submission.crops.order_by("pk"))
    result = MatchResult(
        submission=submission,
        status=submission.status,
        result_url=result_url(submission),
        status_url=status_url(submission),
        regions=region_links(children) if children else None,
    )
    if submission.status == Status.DONE:
        result = replace(
            result,
            fixtures=fixture_boxes(submission),
            quality_problems=quality_messages(submission.quality_problems or []),
            no_fixture_found=no_fixture_found(submission, has_regions=bool(children)),
        )
        if children:
            # A film with regions is never answered as a whole: each region has its own answer.
            return replace(result, implants=[])
        top = top_matches(submission)
        for match, confidence in zip(top, shown_confidences(submission, top, lookalike_warning(top)), strict=True):
            match.shown_band = shown_band(match, confidence)  # type: ignore[attr-defined]
        return replace(result, implants=top, no_convincing_match=no_convincing_match(submission, top))
    if submission.status == Status.FAILED:
        return replace(result, error=submission.failure_reason, field="file", code="processing_failed")
    return result


@dataclass(frozen=True)
class Headline:
    """The first candidate in one line (the e-mail): its calibrated probability (None: the model
    is not calibrated yet), its label, and whether nothing convinces."""

    probability_percent: int | None
    label: str
    no_convincing_match: bool


def headline(submission: Submission) -> Headline | None:
    """None where the answer has no candidates of its own (not done, regions, nothing found)."""
    if submission.status != Status.DONE or no_fixture_found(submission) or submission.crops.exists():
        return None
    top = top_matches(submission)
    if not top:
        return Headline(None, "", True)
    confidence = shown_confidences(submission, top, lookalike_warning(top))[0]
    probability = top[0].probability
    return Headline(
        None if probability is None else round(probability * 100),
        str(confidence.label),
        no_convincing_match(submission, top),
    )
