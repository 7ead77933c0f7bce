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

A second method, ``isotonic-margin``: isotonic regression (pool-adjacent-violators, in numpy) of
whether the first candidate was right on one score, its similarity plus ``w`` times its lead over
the second (``w`` from a small grid, least Brier score on the set); each step stands on at least
``MIN_BAND_COUNT`` answers. The candidates after the first share the rest, ``1 - p_1``, as often as
the right implant was at their rank in the set. ``evaluate_matching --calibration`` picks one; by
default the one with the lower held-out ECE (``cross_fitted``). The method is stored with the
calibration and ``probabilities`` follows it (``params_from``).

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

SOFTMAX = "softmax-temperature"
ISOTONIC = "isotonic-margin"
METHOD = SOFTMAX  # the first method, and the default when no held-out comparison can be made
METHODS = (SOFTMAX, ISOTONIC)
HIGH, MEDIUM, LOW, NONE = "alta", "media", "baixa", "nenhuma"
HIGH_PRECISION = 0.90
MEDIUM_PRECISION = 0.60
MIN_BAND_COUNT = 5
ECE_BINS = 10
# The grid of the fit: temperatures on a log scale (similarities of one query differ by 1e-4..1e-1),
# the "rest" similarity around the observed ones.
TEMPERATURES = np.logspace(-4.5, 0, 91)
REST_STEPS = 121
# The weights of the margin in the isotonic score (similarities differ by 1e-4..1e-1, margins too).
MARGIN_WEIGHTS = (0.0, 0.5, 1.0, 2.0, 4.0, 8.0)


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
class IsotonicParams:
    """The isotonic steps of the first candidate's score (``xs`` non-decreasing, ``ys`` the
    probability at each, linear in between, flat outside), the margin's weight, and the share of the
    rest each later rank takes (``shares[0]``: the second candidate)."""

    weight: float
    xs: tuple[float, ...]
    ys: tuple[float, ...]
    shares: tuple[float, ...]
    k: int

    def as_json(self) -> dict:
        return {
            "weight": self.weight,
            "xs": list(self.xs),
            "ys": list(self.ys),
            "shares": list(self.shares),
            "k": self.k,
        }

    @classmethod
    def from_json(cls, data: dict) -> IsotonicParams:
        return cls(
            float(data["weight"]),
            tuple(float(v) for v in data["xs"]),
            tuple(float(v) for v in data["ys"]),
            tuple(float(v) for v in data["shares"]),
            int(data["k"]),
        )


def params_from(method: str, data: dict) -> Params | IsotonicParams:
    """The parameters a stored calibration's ``method`` and ``params`` describe."""
    if method == ISOTONIC:
        return IsotonicParams.from_json(data)
    if method == SOFTMAX:
        return Params.from_json(data)
    raise ValueError(f"método de calibração desconhecido: {method!r}")


def method_of(params: Params | IsotonicParams) -> str:
    return ISOTONIC if isinstance(params, IsotonicParams) else SOFTMAX


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


def probabilities(similarities: Sequence[float], params: Params | IsotonicParams) -> list[float]:
    """The probability that each candidate is the right implant, by the calibration's method
    (softmax: candidates past ``k`` are scored against the same denominator, so they never outrank
    those before them)."""
    if not similarities:
        return []
    if isinstance(params, IsotonicParams):
        return _isotonic_probabilities(similarities, params)
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


# --- isotonic regression on the first candidate's similarity and margin ----------------------------


def _score(similarities: Sequence[float], weight: float) -> float:
    margin = similarities[0] - similarities[1] if len(similarities) > 1 else 0.0
    return float(similarities[0]) + weight * float(margin)


def _pav(x: Sequence[float], y: Sequence[bool]) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Isotonic (non-decreasing) fit of y on x by pool-adjacent-violators, equal x pooled first and
    every step on at least ``MIN_BAND_COUNT`` answers; as (x, y) points, two per step (its lowest
    and highest x), for linear interpolation between the steps."""
    values: dict[float, list[float]] = {}
    for xi, yi in zip(x, y, strict=True):
        row = values.setdefault(float(xi), [0.0, 0.0])
        row[0] += float(yi)
        row[1] += 1.0
    blocks: list[list[float]] = []  # [sum right, count, lowest x, highest x]
    for xi in sorted(values):
        blocks.append([values[xi][0], values[xi][1], xi, xi])
        while len(blocks) > 1 and blocks[-2][0] / blocks[-2][1] >= blocks[-1][0] / blocks[-1][1]:
            last = blocks.pop()
            blocks[-1] = [blocks[-1][0] + last[0], blocks[-1][1] + last[1], blocks[-1][2], last[3]]
    # Merging neighbours keeps the steps non-decreasing; a step on one or two answers would state 0 or 1.
    while len(blocks) > 1 and min(b[1] for b in blocks) < MIN_BAND_COUNT:
        i = min(range(len(blocks)), key=lambda j: blocks[j][1])
        j = i - 1 if i == len(blocks) - 1 or (i > 0 and blocks[i - 1][1] <= blocks[i + 1][1]) else i + 1
        a, b = sorted((i, j))
        blocks[a : b + 1] = [[blocks[a][0] + blocks[b][0], blocks[a][1] + blocks[b][1], blocks[a][2], blocks[b][3]]]
    xs = tuple(v for b in blocks for v in (b[2], b[3]))
    ys = tuple(b[0] / b[1] for b in blocks for _ in (0, 1))
    return xs, ys


def _brier(xs: Sequence[float], ys: Sequence[float], x: Sequence[float], y: Sequence[bool]) -> float:
    p = np.interp(np.asarray(x, dtype=np.float64), xs, ys)
    return float(np.mean((p - np.asarray(y, dtype=np.float64)) ** 2))


def fit_isotonic(observations: Sequence[Observation], k: int) -> IsotonicParams:
    """The margin weight of least Brier score, its isotonic steps, and the later ranks' shares."""
    usable = [o for o in observations if o.similarities]
    if not usable:
        raise ValueError("sem consultas com candidatos: nada para calibrar")
    right = [o.truth == 0 for o in usable]
    best: tuple[float, float, tuple, tuple] | None = None
    for weight in MARGIN_WEIGHTS:
        x = [_score(o.similarities, weight) for o in usable]
        xs, ys = _pav(x, right)
        brier = _brier(xs, ys, x, right)
        if best is None or brier < best[0] - 1e-12:
            best = (brier, weight, xs, ys)
    assert best is not None
    _, weight, xs, ys = best
    longest = max(len(o.similarities) for o in usable)
    wrong = sum(1 for ok in right if not ok)
    shares = tuple(sum(1 for o in usable if o.truth == r) / wrong if wrong else 0.0 for r in range(1, longest))
    return IsotonicParams(weight, xs, ys, shares, k)


def _isotonic_probabilities(similarities: Sequence[float], params: IsotonicParams) -> list[float]:
    first = float(np.interp(_score(similarities, params.weight), params.xs, params.ys))
    out = [first]
    for rank in range(1, len(similarities)):
        share = params.shares[rank - 1] if rank - 1 < len(params.shares) else 0.0
        out.append(min(out[-1], (1.0 - first) * share))  # never above the candidate before it
    return out


def _first(observations: Sequence[Observation], params: Params | IsotonicParams) -> list[tuple[float, bool]]:
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
    params: Params | IsotonicParams
    bands: Bands
    ece_fit: float | None
    queries: int

    @property
    def method(self) -> str:
        return method_of(self.params)


def fit(observations: Sequence[Observation], k: int, method: str = SOFTMAX) -> Fitted:
    if method not in METHODS:
        raise ValueError(f"método de calibração desconhecido: {method!r}")
    params = fit_isotonic(observations, k) if method == ISOTONIC else fit_params(observations, k)
    scored = _first(observations, params)
    return Fitted(params, fit_bands(scored), ece(scored), len(scored))


def assess(observations: Sequence[Observation], params: Params | IsotonicParams, bands: Bands) -> dict:
    """The figures of a calibration on a set: ECE, mean first-candidate probability, per band."""
    scored = _first(observations, params)
    return {
        "queries": len(scored),
        "ece": ece(scored),
        "mean_probability": round(float(np.mean([p for p, _ in scored])), 4) if scored else None,
        "top1": round(sum(ok for _, ok in scored) / len(scored), 4) if scored else None,
        "bands": band_figures([(band_for(p, bands), ok) for p, ok in scored]),
    }


def cross_fitted(
    observations: Sequence[Observation], groups: Sequence[str], k: int, method: str = SOFTMAX
) -> dict | None:
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
        fitted = fit(train, k, method)
        part = _first(test, fitted.params)
        scored += part
        banded += [(band_for(p, fitted.bands), ok) for p, ok in part]
    return {
        "method": method,
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


def pick_method(
    observations: Sequence[Observation], groups: Sequence[str] | None, k: int
) -> tuple[str, dict[str, dict | None]]:
    """The method of lower held-out ECE on this set (two halves by film, ``cross_fitted``) and
    each method's held-out figures; the softmax when they tie or the set is too small to say."""
    heldout = {m: cross_fitted(observations, groups, k, m) if groups is not None else None for m in METHODS}
    eces = {m: (h or {}).get("ece") for m, h in heldout.items()}
    if all(v is not None for v in eces.values()):
        return min(METHODS, key=lambda m: (eces[m], METHODS.index(m))), heldout
    return SOFTMAX, heldout


def calibration_fit(
    *,
    model_id: str,
    observations: Sequence[Observation],
    dataset: str,
    k: int | None = None,
    groups: Sequence[str] | None = None,
    report: EvaluationReport | None = None,
    preprocess_version: str | None = None,
    method: str | None = None,
) -> Calibration:
    """Fit a calibration on labelled queries of ``model_id`` and store it, inactive (staff activate
    it in the admin). ``groups``: the film of each query, for the held-out figures (two halves by
    film); ``k``: how many candidates the softmax spans (default: the ``RAIOX_TOP_K`` the workers
    store); ``method``: ``SOFTMAX`` or ``ISOTONIC``, default the one of lower held-out ECE
    (``pick_method``; the other's held-out figures are kept beside, under ``compared``)."""
    k = k or settings.RAIOX_TOP_K
    if method is None:
        method, every = pick_method(observations, groups, k)
        heldout = every[method]
        others = {m: h for m, h in every.items() if m != method and h is not None}
        if heldout is not None and others:
            heldout = {**heldout, "compared": others}
    else:
        if method not in METHODS:
            raise ApplicationError(f"Método de calibração desconhecido: {method}.")
        heldout = cross_fitted(observations, groups, k, method) if groups is not None else None
    fitted = fit(observations, k, method)
    with transaction.atomic():
        calibration = Calibration(
            model_id=model_id[:200],
            preprocess_version=preprocess_version or _running_preprocess(),
            method=fitted.method,
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
    params = params_from(calibration.method, calibration.params)
    bands = Bands.from_json(calibration.bands)
    return [(round(p, 4), band_for(p, bands)) for p in probabilities(similarities, params)]
