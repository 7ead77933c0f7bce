"""The labels a dentist reads on each candidate (``submissions.results.confidence``), without a
database: the band of the calibrated probability, and "alta" taken away among look-alikes, for a tie
and when the image's quality limits the comparison. The page and API suites check the same rules
end to end (test_lookalike.py, test_pages.py); these pin the rules themselves."""

from __future__ import annotations

from decimal import Decimal

from implants.models import BodyShape, Connection, Implant, Manufacturer, ThreadShape
from submissions.models import Band, Match, Submission
from submissions.results.confidence import (
    BELOW_CUT,
    HIGH,
    LOOKS_ALIKE,
    QUALITY_LIMITED,
    UNCALIBRATED,
    group_warning,
    is_convincing,
    largest_lookalike_group,
    shown_band,
    shown_confidences,
    tie_warning,
)


def _implant(pk: int, name: str, connection: str = Connection.MORSE_TAPER) -> Implant:
    return Implant(
        pk=pk,
        manufacturer=Manufacturer(pk=1, name="Neodent"),
        name=name,
        connection=connection,
        body_shape=BodyShape.TAPERED,
        thread_shape=ThreadShape.V,
        diameters_mm=[Decimal("3.50"), Decimal("4.00")],
    )


def _match(implant: Implant, similarity: float, probability: float | None, band: str = "") -> Match:
    return Match(implant=implant, rank=1, similarity=similarity, probability=probability, band=band)


def _labels(submission: Submission, top: list[Match], lookalike=None) -> list[str]:
    return [c.level for c in shown_confidences(submission, top, lookalike)]


A, B, C = _implant(1, "Drive CM"), _implant(2, "Titamax EX", Connection.EXTERNAL_HEX), _implant(3, "Alvim CM")


def test_a_calibrated_clear_winner_is_alta_and_the_rest_keep_their_band():
    top = [_match(A, 0.97, 0.95, Band.HIGH), _match(B, 0.80, 0.03, Band.LOW), _match(C, 0.60, 0.01, Band.NONE)]
    confidences = shown_confidences(Submission(), top, None)
    assert confidences[0] is HIGH and str(confidences[0].label) == "Confiança alta"
    assert [c.level for c in confidences] == ["alta", "baixa", "baixa"]
    assert confidences[2] is BELOW_CUT  # under the calibration's cut-off: said so, not just "baixa"
    assert [shown_band(m, c) for m, c in zip(top, confidences, strict=True)] == ["alta", "baixa", "nenhuma"]


def test_a_lookalike_is_never_alta_and_the_answer_carries_media():
    top = [_match(A, 0.97, 0.95, Band.HIGH), _match(C, 0.80, 0.03, Band.LOW)]
    warning = group_warning("Cone Morse Neodent", "Olhe o colar.", [A, C])
    confidences = shown_confidences(Submission(), top, warning)
    assert confidences[0] is LOOKS_ALIKE and confidences[0].level == "media"
    assert "alta" not in [c.level for c in confidences]
    assert shown_band(top[0], confidences[0]) == Band.MEDIUM


def test_a_tie_between_the_first_two_warns_and_is_never_alta(settings):
    settings.RAIOX_CONFIDENCE_MEDIUM_MARGIN = 0.01
    top = [_match(A, 0.905, 0.95, Band.HIGH), _match(B, 0.900, 0.04, Band.LOW)]
    warning = tie_warning(top)
    assert warning is not None and warning.reason == "tie"
    assert warning.implants == ["Neodent Drive CM", "Neodent Titamax EX"]
    # What tells them apart is listed; what they share (the body shape) is not.
    labels = [d.label for d in warning.differences]
    assert "conexão" in labels and "formato do corpo" not in labels
    assert "alta" not in _labels(Submission(), top, warning)


def test_two_candidates_apart_are_no_tie(settings):
    settings.RAIOX_CONFIDENCE_MEDIUM_MARGIN = 0.01
    assert tie_warning([_match(A, 0.95, 0.9, Band.HIGH), _match(B, 0.90, 0.05, Band.LOW)]) is None
    assert tie_warning([_match(A, 0.95, 0.9, Band.HIGH)]) is None


def test_the_image_quality_takes_alta_away():
    top = [_match(A, 0.97, 0.95, Band.HIGH)]
    confidences = shown_confidences(Submission(quality_problems=["blurred"]), top, None)
    assert confidences == [QUALITY_LIMITED] and confidences[0].level == "media"
    assert shown_band(top[0], confidences[0]) == Band.MEDIUM


def test_a_model_not_calibrated_yet_has_no_band_and_says_so():
    top = [_match(A, 0.97, None)]
    confidences = shown_confidences(Submission(), top, None)
    assert confidences == [UNCALIBRATED] and str(confidences[0].label) == "Modelo ainda não calibrado"
    assert shown_band(top[0], confidences[0]) is None


def test_the_largest_lookalike_group_wins_and_keeps_the_candidates_order():
    top = [_match(C, 0.9, 0.5), _match(B, 0.8, 0.3), _match(A, 0.7, 0.2)]
    # group 7 holds two shown implants, group 9 three: 9 wins; a group of one is no warning.
    memberships = [(7, 1), (7, 3), (9, 1), (9, 2), (9, 3), (4, 2)]
    assert largest_lookalike_group(top, memberships) == (9, [C, B, A])
    assert largest_lookalike_group(top, [(4, 2), (5, 1)]) is None


def test_convincing_is_read_from_the_cut_off(settings):
    settings.RAIOX_MIN_SIMILARITY = 0.75
    assert is_convincing(0.75) and not is_convincing(0.7499) and not is_convincing(None)
