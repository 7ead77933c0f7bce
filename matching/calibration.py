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

Pure numpy, no torch: the admin and the evaluation import it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

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
