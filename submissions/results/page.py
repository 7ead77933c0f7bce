"""The dentist's result page: everything it shows for one submission (``submission_result_page``),
its candidate cards, filters, the regions marked on the film and their SVG overlay's sizing."""

from __future__ import annotations

from dataclasses import dataclass, field

from implants.models import REFINE_FIELDS, Implant
from submissions.fixtures import BOTH_ORIENTATIONS, NO_FIXTURE_FOUND, quality_messages
from submissions.models import Status, Submission, Verdict
from submissions.results.confidence import (
    LOW,
    Confidence,
    LookalikeWarning,
    format_mm,
    is_unreliable,
    shown_confidences,
)
from submissions.results.links import file_url, result_path
from submissions.results.queries import (
    ReviewState,
    card_image_url,
    lookalike_warning,
    no_convincing_match,
    no_fixture_found,
    review_state,
    top_matches,
)


@dataclass(frozen=True)
class CandidateCard:
    rank: int
    implant_id: int
    manufacturer: str
    name: str
    connection: str
    body_shape: str
    level: str
    thread_shape: str
    diameters: str
    screwdriver: str
    similarity_percent: float  # raw, for staff pages only (never the dentist's headline)
    probability_percent: float | None  # calibrated; None: the model is not calibrated yet
    confidence: Confidence
    image_url: str
    verdict: str | None


@dataclass(frozen=True)
class FilterField:
    name: str
    label: str
    choices: list[tuple[str, str]]
    selected: str


@dataclass(frozen=True)
class RegionBlock:
    """One implant marked on the film (a child submission): its number, tooth, result and where
    its rectangle lies on the film (percentages, for the numbered overlay)."""

    number: int
    tooth: str
    token: str
    url: str
    status: str
    status_label: str
    cards: list[CandidateCard]
    no_convincing_match: bool
    review: ReviewState | None
    # The rectangle on the film, in the film's pixels (drawn as SVG over the image: no inline styles).
    x: int
    y: int
    width: int
    height: int
    image_width: int
    image_height: int
    # Found by the worker's finder (not marked by the dentist): its suggested FDI quadrant on a
    # panoramic (None: cannot be told) and what the dentist could fix in the picture.
    found: bool = False
    suggested_quadrant: int | None = None
    quality: list[dict] = field(default_factory=list)
    both_orientations: bool = False

    @property
    def is_pending(self) -> bool:
        return self.status in (Status.RECEIVED, Status.PROCESSING)


def region_blocks(submission: Submission) -> list[RegionBlock]:
    """The regions marked on ``submission``'s film (crop & re-match included), in order."""
    blocks = []
    for n, child in enumerate(submission.crops.order_by("pk"), start=1):
        child_page = submission_result_page(child, with_regions=False)
        box = child.crop_box or {}
        blocks.append(
            RegionBlock(
                number=box.get("region", n),
                tooth=child.tooth,
                token=str(child.token),
                url=result_path(child),
                status=child.status,
                status_label=str(child.get_status_display()),
                cards=child_page.cards,
                no_convincing_match=child_page.no_convincing_match,
                review=child_page.review,
                x=int(box.get("x", 0)),
                y=int(box.get("y", 0)),
                width=int(box.get("width", 0)),
                height=int(box.get("height", 0)),
                # Crops made before regions existed did not record the film's size.
                image_width=int(box.get("image_width", 0)),
                image_height=int(box.get("image_height", 0)),
                found=bool(box.get("found")),
                suggested_quadrant=box.get("suggested_quadrant"),
                quality=child_page.quality if child.status == Status.DONE else [],
                both_orientations=child_page.both_orientations,
            )
        )
    return blocks


@dataclass
class ResultPage:
    """The result page's view model: what its template shows for one submission."""

    submission: Submission
    status: str
    status_label: str
    cards: list[CandidateCard] = field(default_factory=list)
    no_convincing_match: bool = False
    image_url: str = ""
    failure_reason: str = ""
    filters: list[FilterField] = field(default_factory=list)
    has_filters: bool = False
    rejected_count: int = 0
    confirmed_implant_id: int | None = None
    review: ReviewState | None = None
    lookalike: LookalikeWarning | None = None
    # Offer the specialist prominently: nothing convinces, or the best candidate is only "baixa".
    review_suggested: bool = False
    regions: list[RegionBlock] = field(default_factory=list)
    # The finder's part: nothing found in the film; what to fix in the picture ([{code, message}]);
    # the apex end could not be told and both orientations were compared.
    no_fixture_found: bool = False
    quality: list[dict] = field(default_factory=list)
    both_orientations: bool = False
    no_fixture_found_message: str = str(NO_FIXTURE_FOUND)
    both_orientations_message: str = str(BOTH_ORIENTATIONS)

    @property
    def regions_found(self) -> bool:
        """The regions on the film were found by the worker (not marked by the dentist)."""
        return any(r.found for r in self.regions)

    @property
    def film_size(self) -> tuple[int, int] | None:
        """The film's size in pixels, for the numbered overlay (None: nothing to draw)."""
        sized = [r for r in self.regions if r.image_width and r.image_height]
        return (sized[0].image_width, sized[0].image_height) if sized else None

    @property
    def film_label_size(self) -> int:
        """Region numbers and outlines drawn in proportion to the film, legible at any size."""
        return max(12, max(self.film_size or (0, 0)) // 22)

    @property
    def film_stroke(self) -> int:
        return max(2, max(self.film_size or (0, 0)) // 220)

    @property
    def regions_pending(self) -> bool:
        return any(r.is_pending for r in self.regions)

    @property
    def state_key(self) -> str:
        """Changes whenever what the page shows changes (the film's or a region's status)."""
        return "|".join([self.status, *(r.status for r in self.regions)])

    @property
    def is_done(self) -> bool:
        return self.status == Status.DONE

    @property
    def is_failed(self) -> bool:
        return self.status == Status.FAILED

    @property
    def is_pending(self) -> bool:
        return self.status in (Status.RECEIVED, Status.PROCESSING)


def _filters(submission: Submission) -> list[FilterField]:
    chosen = submission.refine_filters or {}
    return [
        FilterField(name, str(Implant._meta.get_field(name).verbose_name), list(choices.choices), chosen.get(name, ""))
        for name, choices in REFINE_FIELDS.items()
    ]


def submission_result_page(submission: Submission, *, with_regions: bool = True) -> ResultPage:
    """Everything the result page shows for one submission (already reached by its token).
    Whether the workers run untrained weights is system state, not the submission's: the page's
    banner reads it from ``system_state`` (``matching.context_processors``)."""
    page = ResultPage(
        submission=submission,
        status=submission.status,
        status_label=str(submission.get_status_display()),
        image_url=file_url(submission.image),
        failure_reason=submission.failure_reason,
        filters=_filters(submission),
        has_filters=bool(submission.refine_filters),
    )
    verdicts = dict(submission.feedback.values_list("implant_id", "verdict"))
    page.rejected_count = sum(1 for v in verdicts.values() if v == Verdict.NOT_THIS)
    page.review = review_state(submission)
    if with_regions:
        page.regions = region_blocks(submission)
    if submission.status != Status.DONE:
        page.review_suggested = submission.status == Status.FAILED
        return page
    page.quality = quality_messages(submission.quality_problems or [])
    page.both_orientations = submission.both_orientations
    page.no_fixture_found = no_fixture_found(submission, has_regions=bool(page.regions) if with_regions else None)
    if page.regions or page.no_fixture_found:
        # No whole-film answer: each region answers on its own, or there is nothing to match.
        page.review_suggested = page.no_fixture_found
        return page
    top = top_matches(submission)
    page.lookalike = lookalike_warning(top)
    unreliable = is_unreliable(submission)
    for match, confidence in zip(top, shown_confidences(submission, top, page.lookalike), strict=True):
        implant = match.implant
        page.cards.append(
            CandidateCard(
                rank=match.rank,
                implant_id=implant.pk,
                manufacturer=implant.manufacturer.name,
                name=implant.name,
                connection=implant.get_connection_display(),
                body_shape=implant.get_body_shape_display(),
                level=implant.get_level_display(),
                thread_shape=implant.get_thread_shape_display(),
                diameters=format_mm(implant.diameters_mm),
                screwdriver=implant.screwdriver,
                similarity_percent=round(match.similarity * 100, 1),
                probability_percent=None if match.probability is None else round(match.probability * 100),
                confidence=confidence,
                image_url=card_image_url(match),
                verdict=verdicts.get(implant.pk),
            )
        )
    page.no_convincing_match = no_convincing_match(submission, top)
    page.review_suggested = (
        unreliable or page.no_convincing_match or not page.cards or page.cards[0].confidence.level == LOW.level
    )
    return page
