"""Reads for the dentist's pages: the result view-model and the confidence label."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from django.conf import settings
from django.utils.formats import number_format
from django.utils.translation import gettext_lazy as _

from implants.models import Implant
from submissions.models import Status, Submission, Verdict
from submissions.services.dentist import REFINE_FIELDS

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
    untrained: bool = False
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


def _safe_url(file_field: object) -> str:
    # A missing file or an unreachable bucket must not break the page: the card shows no image.
    try:
        return file_field.url if file_field else ""  # type: ignore[attr-defined]
    except Exception:
        return ""


def _filters(submission: Submission) -> list[FilterField]:
    chosen = submission.refine_filters or {}
    return [
        FilterField(name, str(Implant._meta.get_field(name).verbose_name), list(choices.choices), chosen.get(name, ""))
        for name, choices in REFINE_FIELDS.items()
    ]


def submission_result_view(submission: Submission) -> ResultView:
    """Everything the result page shows for one submission (already reached by its token)."""
    view = ResultView(
        submission=submission,
        status=submission.status,
        status_label=str(submission.get_status_display()),
        untrained="untrained" in (submission.embedding_model or ""),
        image_url=_safe_url(submission.image),
        failure_reason=submission.failure_reason,
        filters=_filters(submission),
        has_filters=bool(submission.refine_filters),
    )
    verdicts = dict(submission.feedback.values_list("implant_id", "verdict"))
    view.rejected_count = sum(1 for v in verdicts.values() if v == Verdict.NOT_THIS)
    if submission.status != Status.DONE:
        return view
    matches = list(
        submission.matches.select_related("implant__manufacturer", "reference_image").order_by("rank")[
            : settings.RAIOX_TOP_K + 1
        ]
    )
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
                image_url=_safe_url(match.reference_image.image if match.reference_image else None),
                verdict=verdicts.get(implant.pk),
            )
        )
    view.no_convincing_match = not top or top[0].similarity < settings.RAIOX_MIN_SIMILARITY
    return view
