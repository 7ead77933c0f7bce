"""The result read model: every read of a submission's result, for every page and API that shows it.

One home for the rules a reader of a result needs — which matches are shown (``ranked_matches`` /
``top_matches``), whether the best is convincing (``is_convincing``), where the result lives
(``result_url``, ``status_url``, ``match_api_url``) — and the two shapes built from them: the
dentist's result page (``submission_result_view``) and the JSON answer of ``POST /upload`` and
``/api/match/`` (``match_result``, rendered by ``submissions.serializers.MatchResultSerializer``).
Used by the pages, the upload/match APIs, the intake answers, the e-mail, the staff API and the
admin. No torch here: web processes import it.

A candidate's picture (``card_image_url``) is always a catalogue image of its implant, never the
confirmed case the match may have come from: that is another patient's X-ray
(``implants.selectors``). Only the staff admin shows the matched reference image itself.

What the dentist reads of a candidate is its *calibrated probability* and band, stored on the Match
by the worker from the active calibration of the model that answered (``matching.calibration``):
"Probabilidade estimada: 62 %", "Confiança alta / média / baixa". Without a calibration for that
model there is no percentage: the page says the model is not calibrated yet. The raw similarity is
for staff (admin, staff API) and the evaluation, never the dentist's headline.

"No convincing match" is the first candidate's band ``nenhuma`` (the calibration's cut-off); for a
result of a model not calibrated yet it is still read from ``RAIOX_MIN_SIMILARITY`` each time.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal

from django.conf import settings
from django.db.models import OuterRef, Prefetch, QuerySet, Subquery
from django.urls import reverse
from django.utils.formats import number_format
from django.utils.translation import gettext_lazy as _

from implants.models import REFINE_FIELDS, Implant, LookalikeGroup, ReferenceImage
from implants.selectors import catalog_images, is_showable
from kernel.queue import RESULT_CHANNEL, notifications
from submissions.fixtures import BOTH_ORIENTATIONS, NO_FIXTURE_FOUND, quality_messages
from submissions.models import Band, Match, ReviewRequest, Status, Submission, Verdict

# --- the rules ----------------------------------------------------------------------------------


def is_convincing(similarity: float | None) -> bool:
    """Whether a similarity (0-1) is high enough to be shown as an answer."""
    return similarity is not None and float(similarity) >= settings.RAIOX_MIN_SIMILARITY


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


def is_unreliable(submission: Submission) -> bool:
    """The image's quality limits the comparison (a fixture too small, cut by the edge, a blurred
    or flat film): no card is labelled "alta" and a specialist is suggested."""
    return bool(submission.quality_problems)


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


# --- where a result lives -----------------------------------------------------------------------
# Absolute URLs are built from SITE_URL, never from the request's Host: the same link goes into
# the e-mail, the webhook answers and the API, whichever host or proxy the request came through.


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


# --- the waiting ``/upload`` and ``/api/match/`` --------------------------------------------------

# The longest wait between two reads of the submission: the worker's NOTIFY at commit
# (``RESULT_CHANNEL``) wakes the request at once; this only bounds the wait where notifications do
# not arrive (PgBouncer in transaction mode, inside a test's transaction).
POLL_SECONDS = 0.25


def wait_for_result(submission_id: int, seconds: float) -> None:
    """Wait up to ``seconds`` for the worker to finish a submission. The web process LISTENs for
    the worker's notification (``kernel.queue.notifications``) and reads the status when woken (a
    cheap indexed read); the worker does the matching."""
    deadline = time.monotonic() + seconds
    with notifications(RESULT_CHANNEL) as wait:
        while True:
            # Read after LISTEN: a result recorded between the two still wakes the next wait.
            state = Submission.objects.filter(pk=submission_id).values_list("status", flat=True).first()
            remaining = deadline - time.monotonic()
            if state in (Status.DONE, Status.FAILED) or remaining <= 0:
                return
            wait(min(POLL_SECONDS, remaining), str(submission_id))


# --- the API answer -----------------------------------------------------------------------------


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


# --- the dentist's result page ------------------------------------------------------------------
# Confidence of a candidate: the band of its calibrated probability, stored by the worker
# (``Match.band``; the cut-offs were chosen per calibration for a measured precision, see
# ``matching.calibration``). A result of a model not calibrated yet has no band and no percentage.


@dataclass(frozen=True)
class Confidence:
    level: str  # alta | media | baixa | sem-calibracao (CSS class and test hook)
    label: str
    explanation: str


HIGH = Confidence(
    "alta",
    _("Confiança alta"),
    _("Na calibração deste modelo, respostas com esta probabilidade acertaram pelo menos 9 em 10 vezes."),
)
MEDIUM = Confidence(
    "media",
    _("Confiança média"),
    _("Na calibração, respostas assim acertaram pelo menos 6 em 10 vezes: confira as características."),
)
LOW = Confidence("baixa", _("Confiança baixa"), _("Pouco provável: use apenas como pista."))
BELOW_CUT = Confidence(
    "baixa", _("Confiança baixa"), _("Abaixo do que, na calibração, distinguia respostas certas das erradas.")
)
UNCALIBRATED = Confidence(
    "sem-calibracao",
    _("Modelo ainda não calibrado"),
    _("Ainda não medimos com que frequência este modelo acerta: a ordem dos candidatos é só uma pista."),
)
BAND_CONFIDENCE = {Band.HIGH: HIGH, Band.MEDIUM: MEDIUM, Band.LOW: LOW, Band.NONE: BELOW_CUT}


def confidence_of(match: Match) -> Confidence:
    """The stored band's label; ``UNCALIBRATED`` when the model that answered had no calibration."""
    if match.probability is None:
        return UNCALIBRATED
    return BAND_CONFIDENCE.get(match.band, LOW)


# The image's quality limits the comparison (``is_unreliable``): never "alta".
QUALITY_LIMITED = Confidence(
    "media",
    _("Confiança média"),
    _("A qualidade da imagem limita a comparação: confira as características ou peça um especialista."),
)


def _mm(values: list[Decimal]) -> str:
    return " · ".join(number_format(v.normalize() if isinstance(v, Decimal) else v) for v in values)


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


# --- look-alike warnings -------------------------------------------------------------------------
# Some implants look alike on a radiograph (the catalogue groups them: ``LookalikeGroup``), and two
# candidates within the tie margin are as good as a coin toss. Either way the page says so, lists the
# catalogue features that tell the implants apart, and no card is labelled "alta".

LOOKS_ALIKE = Confidence(
    "media",
    _("Confiança média"),
    _("Parecido com outro implante nesta radiografia: confira as diferenças antes de decidir."),
)


@dataclass(frozen=True)
class Difference:
    label: str
    values: list[tuple[str, str]]  # (implant, its value), in the candidates' order


@dataclass(frozen=True)
class LookalikeWarning:
    reason: str  # group | tie
    group: str  # the catalogue group's name ("" for a tie)
    notes: str  # the group's "how to tell them apart"
    implants: list[str]
    differences: list[Difference]


def _yes_no(value: bool) -> str:
    return str(_("sim") if value else _("não"))


DIFFERENCE_FIELDS = [
    ("connection", lambda i: i.get_connection_display()),
    ("body_shape", lambda i: i.get_body_shape_display()),
    ("level", lambda i: i.get_level_display()),
    ("thread_shape", lambda i: i.get_thread_shape_display()),
    ("apex", lambda i: i.get_apex_display() or "—"),
    ("collar", lambda i: i.get_collar_display() or "—"),
    ("platform_switching", lambda i: _yes_no(i.platform_switching)),
    ("diameters_mm", lambda i: f"{_mm(i.diameters_mm)} mm" if i.diameters_mm else "—"),
    ("screwdriver", lambda i: i.screwdriver or "—"),
]


def _differences(implants: Sequence[Implant]) -> list[Difference]:
    """The catalogue features on which these implants differ (the same on all: not listed)."""
    out = []
    for name, read in DIFFERENCE_FIELDS:
        values = [(str(i), str(read(i))) for i in implants]
        if len({v for _i, v in values}) > 1:
            out.append(Difference(str(Implant._meta.get_field(name).verbose_name), values))
    return out


def lookalike_warning(shown: Sequence[Match]) -> LookalikeWarning | None:
    """The warning for the candidates shown: two or more of them in one look-alike group (the
    largest such group), else the first two within the tie margin (``RAIOX_CONFIDENCE_MEDIUM_MARGIN``,
    the margin under which the page already calls it "empate"); None otherwise."""
    if len(shown) < 2:
        return None
    by_id = {m.implant_id: m.implant for m in shown}
    members: dict[int, list[int]] = {}
    through = LookalikeGroup.implants.through
    for group_id, implant_id in through.objects.filter(implant_id__in=by_id).values_list(
        "lookalikegroup_id", "implant_id"
    ):
        members.setdefault(group_id, []).append(implant_id)
    candidates = [(len(ids), gid) for gid, ids in members.items() if len(ids) >= 2]
    if candidates:
        _n, group_id = max(candidates)
        group = LookalikeGroup.objects.get(pk=group_id)
        order = [m.implant_id for m in shown if m.implant_id in members[group_id]]
        implants = [by_id[i] for i in order]
        return LookalikeWarning("group", group.name, group.notes, [str(i) for i in implants], _differences(implants))
    first, second = shown[0], shown[1]
    if abs(first.similarity - second.similarity) < settings.RAIOX_CONFIDENCE_MEDIUM_MARGIN:
        implants = [first.implant, second.implant]
        return LookalikeWarning("tie", "", "", [str(i) for i in implants], _differences(implants))
    return None


def shown_confidences(
    submission: Submission, top: Sequence[Match], lookalike: LookalikeWarning | None
) -> list[Confidence]:
    """What each shown candidate is labelled, for the page and the API alike: its band, never
    "alta" among look-alikes (``lookalike``) nor when the image's quality limits the comparison."""
    out = [confidence_of(m) for m in top]
    if lookalike is not None:
        out = [LOOKS_ALIKE if c is HIGH else c for c in out]
    if is_unreliable(submission):
        out = [QUALITY_LIMITED if c is HIGH else c for c in out]
    return out


def shown_band(match: Match, confidence: Confidence) -> str | None:
    """The band the answers carry for a candidate (null: not calibrated): the stored one, "média"
    where a rule above took "alta" away."""
    if match.probability is None:
        return None
    if match.band == Band.HIGH and confidence is not HIGH:
        return Band.MEDIUM
    return match.band


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


@dataclass(frozen=True)
class FilterField:
    name: str
    label: str
    choices: list[tuple[str, str]]
    selected: str


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
        child_view = submission_result_view(child, with_regions=False)
        box = child.crop_box or {}
        blocks.append(
            RegionBlock(
                number=box.get("region", n),
                tooth=child.tooth,
                token=str(child.token),
                url=result_path(child),
                status=child.status,
                status_label=str(child.get_status_display()),
                cards=child_view.cards,
                no_convincing_match=child_view.no_convincing_match,
                review=child_view.review,
                x=int(box.get("x", 0)),
                y=int(box.get("y", 0)),
                width=int(box.get("width", 0)),
                height=int(box.get("height", 0)),
                # Crops made before regions existed did not record the film's size.
                image_width=int(box.get("image_width", 0)),
                image_height=int(box.get("image_height", 0)),
                found=bool(box.get("found")),
                suggested_quadrant=box.get("suggested_quadrant"),
                quality=child_view.quality if child.status == Status.DONE else [],
                both_orientations=child_view.both_orientations,
            )
        )
    return blocks


@dataclass
class ResultView:
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


def submission_result_view(submission: Submission, *, with_regions: bool = True) -> ResultView:
    """Everything the result page shows for one submission (already reached by its token).
    Whether the workers run untrained weights is system state, not the submission's: the page's
    banner reads it from ``system_state`` (``matching.context_processors``)."""
    view = ResultView(
        submission=submission,
        status=submission.status,
        status_label=str(submission.get_status_display()),
        image_url=file_url(submission.image),
        failure_reason=submission.failure_reason,
        filters=_filters(submission),
        has_filters=bool(submission.refine_filters),
    )
    verdicts = dict(submission.feedback.values_list("implant_id", "verdict"))
    view.rejected_count = sum(1 for v in verdicts.values() if v == Verdict.NOT_THIS)
    view.review = review_state(submission)
    if with_regions:
        view.regions = region_blocks(submission)
    if submission.status != Status.DONE:
        view.review_suggested = submission.status == Status.FAILED
        return view
    view.quality = quality_messages(submission.quality_problems or [])
    view.both_orientations = submission.both_orientations
    view.no_fixture_found = no_fixture_found(submission, has_regions=bool(view.regions) if with_regions else None)
    if view.regions or view.no_fixture_found:
        # No whole-film answer: each region answers on its own, or there is nothing to match.
        view.review_suggested = view.no_fixture_found
        return view
    top = top_matches(submission)
    view.lookalike = lookalike_warning(top)
    unreliable = is_unreliable(submission)
    for match, confidence in zip(top, shown_confidences(submission, top, view.lookalike), strict=True):
        implant = match.implant
        view.cards.append(
            CandidateCard(
                rank=match.rank,
                implant_id=implant.pk,
                manufacturer=implant.manufacturer.name,
                name=implant.name,
                connection=implant.get_connection_display(),
                body_shape=implant.get_body_shape_display(),
                level=implant.get_level_display(),
                thread_shape=implant.get_thread_shape_display(),
                diameters=_mm(implant.diameters_mm),
                screwdriver=implant.screwdriver,
                similarity_percent=round(match.similarity * 100, 1),
                probability_percent=None if match.probability is None else round(match.probability * 100),
                confidence=confidence,
                image_url=card_image_url(match),
                verdict=verdicts.get(implant.pk),
            )
        )
    view.no_convincing_match = no_convincing_match(submission, top)
    view.review_suggested = (
        unreliable or view.no_convincing_match or not view.cards or view.cards[0].confidence.level == LOW.level
    )
    return view
