"""The second calibration method (isotonic regression on the first candidate's similarity and
margin), the choice between the two, and the stored softmax calibrations of before (still loaded,
same numbers)."""

from __future__ import annotations

import numpy as np
import pytest

from implants.models import Implant
from matching import calibration as calibrating
from matching import tasks
from matching.calibration import calibrated, calibration_activate, calibration_fit
from matching.canonical import PREPROCESS_VERSION
from matching.models import Calibration
from submissions.models import Submission
from submissions.services import IntakeRecord, submission_create
from testkit.images import xray_png
from tests.calibrations import RUNNING_MODEL
from tests.matching.test_calibration import _chance_observations

pytestmark = pytest.mark.django_db


def _right_observations(queries: int, seed: int) -> list[calibrating.Observation]:
    """A model right 80 % of the time, whose right answers stand out from the second candidate."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(queries):
        right = rng.random() < 0.8
        sims = list(np.sort(rng.uniform(0.90, 0.95, 5))[::-1])
        if right:
            sims[0] = 0.97 + float(rng.uniform(0, 0.02))
        out.append(calibrating.Observation(tuple(float(s) for s in sims), 0 if right else None))
    return out


# --- the fit -------------------------------------------------------------------------------------


def test_isotonic_on_a_model_at_chance_gives_no_alta_and_a_probability_near_chance():
    n = 32
    fitted = calibrating.fit(_chance_observations(n, 300, seed=1), k=3, method=calibrating.ISOTONIC)
    assert fitted.method == calibrating.ISOTONIC
    assert fitted.bands.high is None and fitted.bands.medium is None  # the set never shows it
    held = calibrating.assess(_chance_observations(n, 300, seed=2), fitted.params, fitted.bands)
    assert held["bands"]["alta"]["queries"] == 0 and held["bands"]["media"]["queries"] == 0
    assert 0.5 / n <= held["mean_probability"] <= 2.0 / n
    assert held["ece"] <= 0.05
    # No step of the regression stands on fewer than a handful of answers: nothing reads 0 or 100 %.
    assert max(fitted.params.ys) < 0.5


def test_isotonic_gives_alta_where_the_set_shows_it_and_keeps_the_candidates_in_order():
    fitted = calibrating.fit(_right_observations(200, seed=3), k=3, method=calibrating.ISOTONIC)
    figures = calibrating.assess(_right_observations(200, seed=4), fitted.params, fitted.bands)
    assert fitted.bands.high is not None
    assert figures["bands"]["alta"]["queries"] >= 100 and figures["bands"]["alta"]["right"] >= 0.9
    assert figures["ece"] <= 0.1
    p = calibrating.probabilities((0.98, 0.93, 0.92, 0.91, 0.90), fitted.params)
    assert p == sorted(p, reverse=True) and p[0] >= 0.9 and sum(p) <= 1.0 + 1e-9


def test_the_pool_adjacent_violators_steps_are_non_decreasing_and_stand_on_enough_answers():
    rng = np.random.default_rng(5)
    x = list(rng.uniform(0, 1, 200))
    y = [bool(rng.random() < v) for v in x]
    xs, ys = calibrating._pav(x, y)
    assert list(xs) == sorted(xs) and list(ys) == sorted(ys)
    counts = [sum(lo <= v <= hi for v in x) for lo, hi in zip(xs[0::2], xs[1::2], strict=True)]
    assert min(counts) >= calibrating.MIN_BAND_COUNT and sum(counts) == 200


def test_the_default_method_is_the_one_of_lower_held_out_ece():
    observations = _right_observations(120, seed=6)
    groups = [f"film{i}" for i in range(len(observations))]
    method, heldout = calibrating.pick_method(observations, groups, 3)
    assert method == min(calibrating.METHODS, key=lambda m: heldout[m]["ece"])
    stored = calibration_fit(model_id=RUNNING_MODEL, observations=observations, groups=groups, dataset="d")
    assert stored.method == method and stored.heldout["method"] == method
    other = next(m for m in calibrating.METHODS if m != method)
    assert stored.heldout["compared"][other]["ece"] == heldout[other]["ece"]
    # Too small a set to compare (no films to split): the softmax, as before.
    assert calibration_fit(model_id=RUNNING_MODEL, observations=observations, dataset="d").method == calibrating.SOFTMAX
    # Asked for by name.
    chosen = calibration_fit(
        model_id=RUNNING_MODEL, observations=observations, groups=groups, dataset="d", method=calibrating.ISOTONIC
    )
    assert chosen.method == calibrating.ISOTONIC and {"weight", "xs", "ys", "shares", "k"} <= set(chosen.params)
    with pytest.raises(ValueError):
        calibrating.params_from("platt", {})


# --- a softmax calibration stored before the isotonic method ---------------------------------------


def test_a_stored_softmax_calibration_still_loads_and_gives_the_same_numbers():
    # A row as the first version stored it (method, params and bands as they were written then).
    old = Calibration.objects.create(
        model_id=RUNNING_MODEL,
        preprocess_version=PREPROCESS_VERSION,
        method="softmax-temperature",
        params={"temperature": 0.01, "rest": 0.93, "k": 3},
        bands={"high": 0.6, "medium": 0.2, "no_match": 0.001},
        dataset="antes do isotônico",
    )
    # The numbers the first version gave for these similarities.
    expected = [0.6439142598879746, 0.23688281808990763, 0.032058603280085106, 0.004338660155080518, 2.92336622e-05]
    answer = calibrated(old, [0.95, 0.94, 0.92, 0.90, 0.85])
    assert [p for p, _ in answer] == [round(v, 4) for v in expected]
    assert [b for _, b in answer] == ["alta", "media", "baixa", "baixa", "nenhuma"]
    assert calibrating.probabilities([0.95, 0.94, 0.92, 0.90, 0.85], calibrating.Params(0.01, 0.93, 3)) == (
        pytest.approx(expected, rel=1e-9)
    )
    # ... and the softmax fit itself is the one of before: the same parameters on the same set.
    rng = np.random.default_rng(7)
    observations = []
    for _ in range(60):
        sims = np.sort(rng.uniform(0.9, 0.99, 5))[::-1]
        rank = int(rng.integers(8))
        observations.append(calibrating.Observation(tuple(float(s) for s in sims), rank if rank < 5 else None))
    fitted = calibrating.fit(observations, 3)
    assert fitted.params == calibrating.Params(0.04466835921509635, 1.0420193366838075, 3)
    assert fitted.bands.high is None and fitted.bands.no_match == pytest.approx(0.11727552265034633)
    assert fitted.ece_fit == 0.0682


# --- the worker uses a stored isotonic calibration only for its model and preprocessing ---------------


def _processed(seed: int) -> Submission:
    submission, _ = submission_create(
        intake=IntakeRecord(source="upload", image_bytes=xray_png(seed), filename="x.png")
    )
    assert tasks.process_submission(submission.pk) == "done"
    submission.refresh_from_db()
    return submission


def _isotonic(model_id: str, preprocess_version: str = PREPROCESS_VERSION) -> Calibration:
    n = Implant.objects.filter(is_active=True).count()
    calibration = calibration_fit(
        model_id=model_id,
        observations=_chance_observations(n, 200),
        dataset="ao acaso",
        preprocess_version=preprocess_version,
        method=calibrating.ISOTONIC,
    )
    return calibration_activate(calibration_id=calibration.pk, user=None)


def test_a_stored_isotonic_calibration_is_used_only_for_its_model_and_preprocessing(embedded_catalog):
    _isotonic("ViT-B-32/laion2b_s34b_b79k+" + PREPROCESS_VERSION)  # other weights
    _isotonic(RUNNING_MODEL, preprocess_version="fx0")  # other framing of the pictures
    before = _processed(6)
    assert all(m.probability is None and m.band == "" for m in before.matches.all())

    mine = _isotonic(RUNNING_MODEL)
    assert calibrating.active_calibration(model_id=RUNNING_MODEL) == mine
    later = _processed(7)
    matches = list(later.matches.order_by("rank"))
    assert matches and all(m.probability is not None for m in matches)
    assert [(m.probability, m.band) for m in matches] == calibrated(mine, [m.similarity for m in matches])
    assert all(m.band != "alta" for m in matches)
    assert matches[0].probability <= 4.0 / Implant.objects.filter(is_active=True).count()
