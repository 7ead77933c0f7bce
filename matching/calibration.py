"""How sure the matcher really is: a probability per candidate, calibrated per model on a labelled set.

The raw similarity (``(1 + cosine) / 2``) says how close a picture is to a reference, not how often
the first candidate is right: CLIP cosines between X-rays of *different* implants are high too, so
raw similarity always reads "high". ``evaluate_matching --fit-calibration`` fits, on its labelled
set, a temperature-scaled softmax over the first ``k`` candidates' similarities plus one "none of
these" term (the right implant is elsewhere in the catalogue, or not found at all)::

    p_i = exp(s_i / T) / (sum_{j <= k} exp(s_j / T) + exp(r / T))

``T`` (temperature) and ``r`` (the "rest" similarity) minimise the negative log-likelihood of the
right answer (or of "rest" when it is not among the ``k``) — a grid over both, no optimiser needed.
A model at chance learns a large "rest": every candidate then reads near chance.

The bands follow from the same set: "alta" is the lowest probability above which the first
candidates were right at least 90 % of the time (and at least ``MIN_BAND_COUNT`` of them), "média"
60 %; no band is given when the set does not show it (no "alta" for a model at chance). "Nenhuma
correspondência convincente" (``NONE``) is below the probability that best separates right from
wrong first answers (Youden's J). All of it is stored in ``matching.Calibration``, per model id and
preprocessing version; the worker uses only the active one fitted for the model it runs
(``active_calibration``) and stores the probability and band on each Match — the pages only read them.

No torch here: the admin (web processes) imports it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from kernel.errors import ApplicationError
from matching.models import Calibration, CalibrationActivation, EvaluationReport

METHOD = "softmax-temperature"
HIGH, MEDIUM, LOW, NONE = "alta", "media", "baixa", "nenhuma"
HIGH_PRECISION = 0.90
MEDIUM_PRECISION = 0.60
MIN_BAND_COUNT = 5
ECE_BINS = 10
# The grid of the fit: temperatures on a log scale (similarities of one query differ by 1e-4..1e-1),
# the "rest" similarity around the observed ones.
TEMPERATURES = np.logspace(-4.5, 0, 91)
REST_STEPS = 121


@dataclass(frozen=True)
class Observation:
    """One labelled query: the candidates' similarities, best first, and where the right implant
    is among them (0-based; None: not among them, or the finder missed it)."""

    similarities: tuple[float, ...]
    truth: int | None


@dataclass(frozen=True)
class Params:
    temperature: float
    rest: float
    k: int

    def as_json(self) -> dict:
        return {"temperature": self.temperature, "rest": self.rest, "k": self.k}

    @classmethod
    def from_json(cls, data: dict) -> Params:
        return cls(float(data["temperature"]), float(data["rest"]), int(data["k"]))


@dataclass(frozen=True)
class Bands:
    """Probability cut-offs (None: the calibration set never showed that precision)."""

    high: float | None
    medium: float | None
    no_match: float  # below it the first candidate is "no convincing match"

    def as_json(self) -> dict:
        return {"high": self.high, "medium": self.medium, "no_match": self.no_match}

    @classmethod
    def from_json(cls, data: dict) -> Bands:
        def opt(v: object) -> float | None:
            return None if v is None else float(v)  # type: ignore[arg-type]

        return cls(opt(data.get("high")), opt(data.get("medium")), float(data.get("no_match", 0.0)))


def probabilities(similarities: Sequence[float], params: Params) -> list[float]:
    """The probability that each candidate is the right implant (candidates past ``k`` are
    scored against the same denominator, so they never outrank those before them)."""
    if not similarities:
        return []
    s = np.asarray(similarities, dtype=np.float64) / params.temperature
    head = s[: params.k]
    rest = params.rest / params.temperature
    top = max(float(head.max()), rest)
    denominator = np.exp(head - top).sum() + np.exp(rest - top)
    return [float(v) for v in np.exp(s - top) / denominator]


def band_for(probability: float, bands: Bands) -> str:
    if probability < bands.no_match:
        return NONE
    if bands.high is not None and probability >= bands.high:
        return HIGH
    if bands.medium is not None and probability >= bands.medium:
        return MEDIUM
    return LOW


def _nll(observations: Sequence[Observation], k: int, temperatures: np.ndarray, rests: np.ndarray) -> np.ndarray:
    """Mean negative log-likelihood on a (temperature x rest) grid."""
    total = np.zeros((len(temperatures), len(rests)))
    t = temperatures[:, None]
    for obs in observations:
        head = np.asarray(obs.similarities[:k], dtype=np.float64)
        logits = head[None, None, :] / t[..., None]  # (T, 1, k)
        rest = (rests[None, :] / t)[..., None]  # (T, R, 1)
        both = np.concatenate([np.broadcast_to(logits, (len(temperatures), len(rests), len(head))), rest], axis=2)
        top = both.max(axis=2, keepdims=True)
        log_z = np.log(np.exp(both - top).sum(axis=2)) + top[..., 0]
        chosen = both[..., obs.truth] if obs.truth is not None and obs.truth < len(head) else both[..., -1]
        total += log_z - chosen
    return total / max(1, len(observations))


def fit_params(observations: Sequence[Observation], k: int) -> Params:
    """T and r of least negative log-likelihood on the set (queries without candidates left out)."""
    usable = [o for o in observations if o.similarities]
    if not usable:
        raise ValueError("sem consultas com candidatos: nada para calibrar")
    sims = [s for o in usable for s in o.similarities[:k]]
    rests = np.linspace(min(sims) - 0.25, max(sims) + 0.25, REST_STEPS)
    nll = _nll(usable, k, TEMPERATURES, rests)
    i, j = np.unravel_index(int(np.argmin(nll)), nll.shape)
    return Params(float(TEMPERATURES[i]), float(rests[j]), k)


def _first(observations: Sequence[Observation], params: Params) -> list[tuple[float, bool]]:
    return [(probabilities(o.similarities, params)[0], o.truth == 0) for o in observations if o.similarities]


def _band_cut(scored: Sequence[tuple[float, bool]], target: float) -> float | None:
    """The lowest probability whose first answers at or above it are right >= ``target``, with at
    least ``MIN_BAND_COUNT`` of them (the widest band that keeps the precision)."""
    for cut in sorted({p for p, _ in scored}):
        kept = [ok for p, ok in scored if p >= cut]
        if len(kept) >= MIN_BAND_COUNT and sum(kept) / len(kept) >= target:
            return cut
    return None


def fit_bands(scored: Sequence[tuple[float, bool]]) -> Bands:
    high = _band_cut(scored, HIGH_PRECISION)
    medium = _band_cut(scored, MEDIUM_PRECISION)
    if medium is not None and high is not None:
        medium = min(medium, high)
    right = [p for p, ok in scored if ok]
    wrong = [p for p, ok in scored if not ok]
    if not right:
        no_match = 1.0  # never right on the set: nothing is convincing
    elif not wrong:
        no_match = 0.0
    else:
        values = sorted({p for p, _ in scored})
        best = max(
            values,
            key=lambda t: sum(p >= t for p in right) / len(right) - sum(p >= t for p in wrong) / len(wrong),
        )
        # Midway to the next lower probability seen: a new answer just under the best cut is not
        # pushed below it by the set's gaps.
        lower = [p for p in values if p < best]
        no_match = (best + lower[-1]) / 2 if lower else best
    return Bands(high, medium, float(no_match))


def ece(scored: Sequence[tuple[float, bool]], bins: int = ECE_BINS) -> float | None:
    """Expected calibration error of (stated probability, right) pairs: equal-width bins over 0-1,
    each bin's |share right - mean probability| weighted by its share of the answers."""
    if not scored:
        return None
    total = 0.0
    for b in range(bins):
        lo, hi = b / bins, (b + 1) / bins
        rows = [(p, ok) for p, ok in scored if lo <= p < hi or (b == bins - 1 and p == hi)]
        if rows:
            total += (
                len(rows) / len(scored) * abs(sum(ok for _, ok in rows) / len(rows) - np.mean([p for p, _ in rows]))
            )
    return round(float(total), 4)


def band_figures(scored_bands: Sequence[tuple[str, bool]]) -> dict:
    """Per band: how many first answers and the share right."""
    out = {}
    for band in (HIGH, MEDIUM, LOW, NONE):
        rows = [ok for b, ok in scored_bands if b == band]
        out[band] = {"queries": len(rows), "right": round(sum(rows) / len(rows), 4) if rows else None}
    return out


@dataclass(frozen=True)
class Fitted:
    params: Params
    bands: Bands
    ece_fit: float | None
    queries: int


def fit(observations: Sequence[Observation], k: int) -> Fitted:
    params = fit_params(observations, k)
    scored = _first(observations, params)
    return Fitted(params, fit_bands(scored), ece(scored), len(scored))


def assess(observations: Sequence[Observation], params: Params, bands: Bands) -> dict:
    """The figures of a calibration on a set: ECE, mean first-candidate probability, per band."""
    scored = _first(observations, params)
    return {
        "queries": len(scored),
        "ece": ece(scored),
        "mean_probability": round(float(np.mean([p for p, _ in scored])), 4) if scored else None,
        "top1": round(sum(ok for _, ok in scored) / len(scored), 4) if scored else None,
        "bands": band_figures([(band_for(p, bands), ok) for p, ok in scored]),
    }


def cross_fitted(observations: Sequence[Observation], groups: Sequence[str], k: int) -> dict | None:
    """Held-out figures without a second set: fit on half the films (by film, so two views of one
    film never fall on both sides), measure on the other half, and the other way round."""
    keys = sorted(set(groups))
    if len(keys) < 4:
        return None
    halves = [set(keys[0::2]), set(keys[1::2])]
    scored: list[tuple[float, bool]] = []
    banded: list[tuple[str, bool]] = []
    for held in halves:
        train = [o for o, g in zip(observations, groups, strict=True) if g not in held]
        test = [o for o, g in zip(observations, groups, strict=True) if g in held]
        if not any(o.similarities for o in train):
            return None
        fitted = fit(train, k)
        part = _first(test, fitted.params)
        scored += part
        banded += [(band_for(p, fitted.bands), ok) for p, ok in part]
    return {
        "split": "2 metades por filme (ajusta numa, mede na outra, e vice-versa)",
        "queries": len(scored),
        "ece": ece(scored),
        "bands": band_figures(banded),
    }


# --- the stored calibrations: reads and services (the writes of this module) ----------------------


def _running_preprocess() -> str:
    from matching.canonical import PREPROCESS_VERSION  # OpenCV: not imported by web processes

    return PREPROCESS_VERSION


def active_calibration(*, model_id: str, preprocess_version: str | None = None) -> Calibration | None:
    """The calibration the workers use for ``model_id``: the active one fitted for that very model
    id and preprocessing version (default: the running one, ``canonical.PREPROCESS_VERSION``);
    None when there is none ("modelo ainda não calibrado"). Read per batch: an activation applies
    to the next job, without a restart."""
    version = preprocess_version or _running_preprocess()
    return Calibration.objects.filter(model_id=model_id, preprocess_version=version, is_active=True).first()


def calibration_fit(
    *,
    model_id: str,
    observations: Sequence[Observation],
    dataset: str,
    k: int | None = None,
    groups: Sequence[str] | None = None,
    report: EvaluationReport | None = None,
    preprocess_version: str | None = None,
) -> Calibration:
    """Fit a calibration on labelled queries of ``model_id`` and store it, inactive (staff activate
    it in the admin). ``groups``: the film of each query, for the held-out figures (two halves by
    film); ``k``: how many candidates the softmax spans (default: the ``RAIOX_TOP_K`` the workers
    store)."""
    k = k or settings.RAIOX_TOP_K
    fitted = fit(observations, k)
    heldout = cross_fitted(observations, groups, k) if groups is not None else None
    with transaction.atomic():
        calibration = Calibration(
            model_id=model_id[:200],
            preprocess_version=preprocess_version or _running_preprocess(),
            method=METHOD,
            params=fitted.params.as_json(),
            bands=fitted.bands.as_json(),
            dataset=dataset[:200],
            queries=fitted.queries,
            ece_fit=fitted.ece_fit,
            heldout=heldout or {},
            report=report,
        )
        calibration.full_clean()
        calibration.save()
    return calibration


def _switch(calibration: Calibration | None, *, current: Calibration | None, action: str, user) -> None:
    now = timezone.now()
    if current is not None:
        current.is_active = False
        current.full_clean()
        current.save(update_fields=["is_active"])
    if calibration is not None:
        calibration.is_active = True
        calibration.activated_at = now
        calibration.activated_by = user
        calibration.full_clean()
        calibration.save(update_fields=["is_active", "activated_at", "activated_by"])
    audit = CalibrationActivation(
        calibration=calibration or current, previous=current, action=action, user=user, at=now
    )
    audit.full_clean()
    audit.save()


def calibration_activate(*, calibration_id: int, user) -> Calibration:
    """Make a calibration the one its model uses; the model's previous one is kept, inactive (see
    ``calibration_rollback``). Audited in ``CalibrationActivation`` (who, when, which it replaced)."""
    with transaction.atomic():
        calibration = Calibration.objects.select_for_update().get(pk=calibration_id)
        current = (
            Calibration.objects.select_for_update()
            .filter(model_id=calibration.model_id, preprocess_version=calibration.preprocess_version, is_active=True)
            .first()
        )
        if current is not None and current.pk == calibration.pk:
            return calibration
        _switch(calibration, current=current, action=CalibrationActivation.Action.ACTIVATE, user=user)
    return calibration


def calibration_rollback(*, model_id: str, preprocess_version: str, user) -> Calibration | None:
    """Go back to the calibration the active one replaced (or to none, uncalibrated, when it
    replaced none); returns the one now active. Audited like an activation."""
    with transaction.atomic():
        current = (
            Calibration.objects.select_for_update()
            .filter(model_id=model_id, preprocess_version=preprocess_version, is_active=True)
            .first()
        )
        if current is None:
            raise ApplicationError("Nenhuma calibração ativa para este modelo: não há o que desfazer.")
        # The one it replaced when it was (last) activated: rolling back twice walks back the chain.
        last = current.activations.filter(action=CalibrationActivation.Action.ACTIVATE).order_by("-at", "-pk").first()
        previous = last.previous if last is not None else None
        action = CalibrationActivation.Action.ROLLBACK if previous else CalibrationActivation.Action.DEACTIVATE
        _switch(previous, current=current, action=action, user=user)
    return previous


def calibrated(calibration: Calibration | None, similarities: Sequence[float]) -> list[tuple[float | None, str]]:
    """(probability, band) per candidate under ``calibration``; (None, "") without one."""
    if calibration is None:
        return [(None, "")] * len(similarities)
    params = Params.from_json(calibration.params)
    bands = Bands.from_json(calibration.bands)
    return [(round(p, 4), band_for(p, bands)) for p in probabilities(similarities, params)]
