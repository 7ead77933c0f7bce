"""What a candidate is labelled: the band of its calibrated probability, and the rules that take
"alta" away (look-alikes, a tie, the image's quality). Pure: reads only the objects it is given and
the settings, never the database (the look-alike groups are read by ``results.queries``), so the
rules a dentist sees are unit-tested without one (tests/submissions/test_confidence.py)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.utils.formats import number_format
from django.utils.translation import gettext_lazy as _

from implants.models import Implant
from submissions.models import Band, Match, Submission


def is_convincing(similarity: float | None) -> bool:
    """Whether a similarity (0-1) is high enough to be shown as an answer."""
    return similarity is not None and float(similarity) >= settings.RAIOX_MIN_SIMILARITY


def is_unreliable(submission: Submission) -> bool:
    """The image's quality limits the comparison (a fixture too small, cut by the edge, a blurred
    or flat film): no card is labelled "alta" and a specialist is suggested."""
    return bool(submission.quality_problems)


# --- confidence of a candidate ------------------------------------------------------------------
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


def format_mm(values: list[Decimal]) -> str:
    return " · ".join(number_format(v.normalize() if isinstance(v, Decimal) else v) for v in values)


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
    ("diameters_mm", lambda i: f"{format_mm(i.diameters_mm)} mm" if i.diameters_mm else "—"),
    ("screwdriver", lambda i: i.screwdriver or "—"),
]


def _differences(implants: Sequence[Implant]) -> list[Difference]:
    """The catalogue features on which these implants differ (the same on all: not listed)."""
    out = []
    for name, read in DIFFERENCE_FIELDS:
        values = [(str(i), str(read(i))) for i in implants]
        if len({value for _implant, value in values}) > 1:
            out.append(Difference(str(Implant._meta.get_field(name).verbose_name), values))
    return out


def largest_lookalike_group(
    shown: Sequence[Match], memberships: Iterable[tuple[int, int]]
) -> tuple[int, list[Implant]] | None:
    """The look-alike group holding most of the shown candidates (two at least; ties: the higher
    group id), with its members among them in the candidates' order; None when no group holds two.
    ``memberships``: the ``(group id, implant id)`` pairs of the shown implants."""
    by_id = {m.implant_id: m.implant for m in shown}
    members: dict[int, list[int]] = {}
    for group_id, implant_id in memberships:
        members.setdefault(group_id, []).append(implant_id)
    candidates = [(len(ids), gid) for gid, ids in members.items() if len(ids) >= 2]
    if not candidates:
        return None
    _n, group_id = max(candidates)
    order = [m.implant_id for m in shown if m.implant_id in members[group_id]]
    return group_id, [by_id[i] for i in order]


def group_warning(name: str, notes: str, implants: Sequence[Implant]) -> LookalikeWarning:
    """The warning for candidates of one catalogue look-alike group."""
    return LookalikeWarning("group", name, notes, [str(i) for i in implants], _differences(implants))


def tie_warning(shown: Sequence[Match]) -> LookalikeWarning | None:
    """The warning for the first two candidates within the tie margin
    (``RAIOX_CONFIDENCE_MEDIUM_MARGIN``, the margin under which the page already calls it "empate")."""
    if len(shown) < 2:
        return None
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
