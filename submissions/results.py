"""The result read model: every read of a submission's result, for every page and API that shows it.

One home for the rules a reader of a result needs — which matches are shown (``ranked_matches`` /
``top_matches``), whether the best is convincing (``is_convincing``), where the result lives
(``result_url``, ``status_url``, ``match_api_url``) — and the two shapes built from them: the
dentist's result page (``submission_result_view``) and the JSON answer of ``POST /upload`` and
``/api/match/`` (``match_result``, rendered by ``submissions.serializers.MatchResultSerializer``).
Used by the pages, the upload/match APIs, the intake answers, the e-mail, the staff API and the
admin. No torch here: web processes import it.

"No convincing match" is derived from the stored Matches and ``RAIOX_MIN_SIMILARITY`` each time, not
stored, so that changing the cut-off applies to every result at once.
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

from implants.models import REFINE_FIELDS, Implant
from kernel.queue import notifications
from submissions.models import Match, Status, Submission, Verdict
from submissions.services.core import RESULT_CHANNEL

# --- the rules ----------------------------------------------------------------------------------


def is_convincing(similarity: float | None) -> bool:
    """Whether a similarity (0-1) is high enough to be shown as an answer."""
    return similarity is not None and float(similarity) >= settings.RAIOX_MIN_SIMILARITY


def ranked_matches() -> QuerySet[Match]:
    """Every Match, best first, with what a reader shows of it (implant, manufacturer, reference
    image) in the same query. Filter by submission, or use as a ``Prefetch`` queryset."""
    return Match.objects.select_related("implant__manufacturer", "reference_image").order_by("rank")


def top_matches(submission: Submission, k: int | None = None) -> list[Match]:
    """The ``k`` (default ``RAIOX_TOP_K``) best candidates of a submission."""
    return list(ranked_matches().filter(submission=submission)[: k or settings.RAIOX_TOP_K])


def no_convincing_match(submission: Submission, top: Sequence[Match] | None = None) -> bool:
    """True when a finished submission's best candidate is below the cut-off, or there is none:
    the answer is then "no convincing match" rather than three arbitrary implants. ``top``: its
    top matches when the caller has them already (no query)."""
    if submission.status != Status.DONE:
        return False
    if top is None:
        top = top_matches(submission, 1)
    return not (top and is_convincing(top[0].similarity))


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


def match_result(submission: Submission) -> MatchResult:
    result = MatchResult(
        submission=submission,
        status=submission.status,
        result_url=result_url(submission),
        status_url=status_url(submission),
    )
    if submission.status == Status.DONE:
        top = top_matches(submission)
        return replace(result, implants=top, no_convincing_match=no_convincing_match(submission, top))
    if submission.status == Status.FAILED:
        return replace(result, error=submission.failure_reason, field="file", code="processing_failed")
    return result


# --- the dentist's result page ------------------------------------------------------------------
# Confidence of a candidate, from its similarity (0-1) and its lead over the next candidate
# (thresholds: settings.RAIOX_CONFIDENCE_*). A clear winner must be both close to its reference and
# ahead of the runner-up: two implants at 0.93 and 0.92 are a coin toss, whatever the figure says.


@dataclass(frozen=True)
class Confidence:
    level: str  # alta | media | baixa (CSS class and test hook)
    label: str
    explanation: str


HIGH = Confidence(
    "alta", _("Confiança alta"), _("Muito parecido com a referência e bem à frente do próximo candidato.")
)
MEDIUM = Confidence(
    "media", _("Confiança média"), _("Parecido, mas outros candidatos estão próximos: confira as características.")
)
LOW = Confidence("baixa", _("Confiança baixa"), _("Pouca semelhança: use apenas como pista."))
TIE = Confidence("baixa", _("Confiança baixa"), _("Empate com outro candidato: compare as características."))


def confidence_for(similarity: float, *neighbours: float | None) -> Confidence:
    """Label one candidate. ``neighbours``: the similarities of the candidates ranked just above
    and below it (None where there is none); the margin is the gap to the closest of them."""
    gaps = [abs(similarity - n) for n in neighbours if n is not None]
    margin = min(gaps) if gaps else 1.0
    if similarity >= settings.RAIOX_CONFIDENCE_HIGH_SIMILARITY and margin >= settings.RAIOX_CONFIDENCE_HIGH_MARGIN:
        return HIGH
    if similarity >= settings.RAIOX_CONFIDENCE_MEDIUM_SIMILARITY and margin >= settings.RAIOX_CONFIDENCE_MEDIUM_MARGIN:
        return MEDIUM
    return TIE if similarity >= settings.RAIOX_CONFIDENCE_MEDIUM_SIMILARITY else LOW


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
    similarity_percent: float
    confidence: Confidence
    image_url: str
    verdict: str | None


@dataclass(frozen=True)
class FilterField:
    name: str
    label: str
    choices: list[tuple[str, str]]
    selected: str


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


def submission_result_view(submission: Submission) -> ResultView:
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
    if submission.status != Status.DONE:
        return view
    # One more than shown: the last card's confidence needs the gap to the runner-up below it.
    matches = top_matches(submission, settings.RAIOX_TOP_K + 1)
    top = matches[: settings.RAIOX_TOP_K]
    for i, match in enumerate(top):
        implant = match.implant
        previous = matches[i - 1].similarity if i > 0 else None
        following = matches[i + 1].similarity if i + 1 < len(matches) else None
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
                confidence=confidence_for(match.similarity, previous, following),
                image_url=file_url(match.reference_image.image if match.reference_image else None),
                verdict=verdicts.get(implant.pk),
            )
        )
    view.no_convincing_match = no_convincing_match(submission, top)
    return view
