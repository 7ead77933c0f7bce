"""Which matches a reader is shown and the facts read from the database about a result: the ranked
candidates and their pictures, "no convincing match", "no fixture found", the finder's boxes, the
look-alike groups of the shown candidates and the dentist's review request; list annotations for
the admin, the CSV export and the staff API."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from django.conf import settings
from django.db.models import OuterRef, Prefetch, QuerySet, Subquery

from implants.models import LookalikeGroup, ReferenceImage
from implants.selectors import catalog_images, is_showable
from submissions.fixtures import quality_messages
from submissions.models import Band, Match, ReviewRequest, Status, Submission
from submissions.results.confidence import (
    LookalikeWarning,
    group_warning,
    is_convincing,
    largest_lookalike_group,
    tie_warning,
)
from submissions.results.links import file_url


def ranked_matches() -> QuerySet[Match]:
    """Every Match, best first, with what a reader shows of it (implant, manufacturer, reference
    image in the same query; the implant's catalogue images in one more). Filter by submission,
    or use as a ``Prefetch`` queryset."""
    return (
        Match.objects.select_related("implant__manufacturer", "reference_image")
        .prefetch_related(Prefetch("implant__reference_images", queryset=catalog_images(), to_attr="catalog_images"))
        .order_by("rank")
    )


def card_image(match: Match) -> ReferenceImage | None:
    """The picture shown for a candidate outside staff pages: the matched reference image when it
    is a catalogue image, else the implant's first catalogue image (the match came from a
    confirmed case, which is never shown), else none."""
    if is_showable(match.reference_image):
        return match.reference_image
    pictures = getattr(match.implant, "catalog_images", None)
    if pictures is None:  # a Match read without ranked_matches()
        pictures = list(catalog_images().filter(implant_id=match.implant_id)[:1])
    return pictures[0] if pictures else None


def card_image_url(match: Match) -> str:
    """``card_image``'s URL ("" when there is none or the storage cannot be reached)."""
    picture = card_image(match)
    return file_url(picture.image if picture else None)


def top_matches(submission: Submission, k: int | None = None) -> list[Match]:
    """The ``k`` (default ``RAIOX_TOP_K``) best candidates of a submission."""
    return list(ranked_matches().filter(submission=submission)[: k or settings.RAIOX_TOP_K])


def no_convincing_match(submission: Submission, top: Sequence[Match] | None = None) -> bool:
    """True when a finished submission's best candidate is below the cut-off, or there is none:
    the answer is then "no convincing match" rather than three arbitrary implants. The cut-off is
    the calibration's (band ``nenhuma``); a model not calibrated yet: ``RAIOX_MIN_SIMILARITY``.
    ``top``: its top matches when the caller has them already (no query)."""
    if submission.status != Status.DONE:
        return False
    if top is None:
        top = top_matches(submission, 1)
    if not top:
        return True
    if top[0].probability is not None:
        return top[0].band == Band.NONE
    return not is_convincing(top[0].similarity)


def no_fixture_found(submission: Submission, *, has_regions: bool | None = None) -> bool:
    """True when the finder looked at a finished film and found no implant in it (``fixtures`` is
    an empty list): the answer is "Não encontramos um implante", never candidates. A region is
    never "nothing found" (the dentist said an implant is there); nor is a film with regions."""
    if submission.status != Status.DONE or submission.parent_id is not None or submission.fixtures != []:
        return False
    if has_regions is None:
        has_regions = submission.crops.exists()
    return not has_regions


def fixture_boxes(submission: Submission) -> list[dict] | None:
    """The fixtures the finder saw, as the JSON answers carry them (box, axis_deg, apex, score, in
    reading order; no patient data); None when the finder did not run on it."""
    if submission.fixtures is None:
        return None
    keys = ("box", "axis_deg", "apex", "score")
    return [{k: f[k] for k in keys if k in f} for f in submission.fixtures]


def finding(submission: Submission) -> dict:
    """The finder's part of the status JSON (``/r/<token>/status.json``): ``fixtures`` (None: not
    run yet, or not at all), ``quality_problems`` (``[{code, message}]``), ``no_fixture_found``."""
    done = submission.status == Status.DONE
    return {
        "fixtures": fixture_boxes(submission) if done else None,
        "quality_problems": quality_messages(submission.quality_problems or []) if done else [],
        "no_fixture_found": no_fixture_found(submission),
    }


def with_top_match(submissions: QuerySet[Submission]) -> QuerySet[Submission]:
    """Lists (admin, CSV export): the first candidate's implant, manufacturer and similarity as
    ``top_implant``, ``top_manufacturer``, ``top_similarity``, in the same query as the page."""
    if "top_implant" in submissions.query.annotations:
        return submissions  # already there (the admin's list queryset, passed to its actions)
    first = Match.objects.filter(submission=OuterRef("pk"), rank=1)
    return submissions.annotate(
        top_implant=Subquery(first.values("implant__name")[:1]),
        top_manufacturer=Subquery(first.values("implant__manufacturer__name")[:1]),
        top_similarity=Subquery(first.values("similarity")[:1]),
    )


def with_matches(submissions: QuerySet[Submission]) -> QuerySet[Submission]:
    """Lists that show every candidate (staff API): the matches prefetched, best first."""
    return submissions.prefetch_related(Prefetch("matches", queryset=ranked_matches()))


def lookalike_warning(shown: Sequence[Match]) -> LookalikeWarning | None:
    """The warning for the candidates shown: two or more of them in one look-alike group (the
    largest such group), else the first two within the tie margin; None otherwise (the rules:
    ``results.confidence``)."""
    if len(shown) < 2:
        return None
    through = LookalikeGroup.implants.through
    memberships = through.objects.filter(implant_id__in={m.implant_id for m in shown}).values_list(
        "lookalikegroup_id", "implant_id"
    )
    largest = largest_lookalike_group(shown, memberships)
    if largest is not None:
        group_id, implants = largest
        group = LookalikeGroup.objects.get(pk=group_id)
        return group_warning(group.name, group.notes, implants)
    return tie_warning(shown)


@dataclass(frozen=True)
class ReviewState:
    """The dentist's request for a specialist and its answer, as the page and the API show it."""

    state: str  # open | identified | not_identifiable
    note: str
    requested_at: object
    answered_at: object | None = None
    implant_id: int | None = None
    implant_label: str = ""
    answer_note: str = ""

    @property
    def is_open(self) -> bool:
        return self.state == "open"


def review_state(submission: Submission) -> ReviewState | None:
    """The submission's review request (None when the dentist never asked)."""
    review = ReviewRequest.objects.select_related("implant__manufacturer").filter(submission_id=submission.pk).first()
    if review is None:
        return None
    implant = review.implant
    return ReviewState(
        state=review.outcome or "open",
        note=review.note,
        requested_at=review.requested_at,
        answered_at=review.answered_at,
        implant_id=implant.pk if implant else None,
        implant_label=f"{implant.manufacturer.name} {implant.name}" if implant else "",
        answer_note=review.answer_note,
    )
