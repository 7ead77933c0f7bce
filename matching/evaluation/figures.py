"""Every figure of a run, from its ``QueryResult`` rows: top-k, per manufacturer and condition,
confusions, the similarity labels and the calibrated probability, hubness, the "no convincing
match" cut-off, latency, the calibration bins and the thresholds suggested (``summarise``)."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence

import numpy as np
from django.conf import settings

from implants.models import Implant
from matching import calibration as calibrating
from matching.evaluation.summary import (
    Assessment,
    CalibratedFigures,
    ConditionFigures,
    ConfusedPair,
    Hubness,
    Latency,
    ManufacturerFigures,
    NoMatchFigures,
    QueryResult,
    Share,
    SimilarityBin,
    SimilarityFigures,
    Suggested,
    Summary,
    ThresholdChoice,
    Thresholds,
)

HIGH_PRECISION_TARGET = 0.95
MEDIUM_PRECISION_TARGET = 0.80
MARGINS = (0.0, 0.002, 0.005, 0.01, 0.02, 0.03, 0.05, 0.08)


def _rate(hits: int, total: int) -> float:
    return round(hits / total, 4) if total else 0.0


def _percentile(values: list[float], q: float) -> float:
    return round(float(np.percentile(values, q)), 2) if values else 0.0


def similarity_label(similarity: float, *neighbours: float | None) -> str:
    """The label the result page gave before issue 21 (kept as the baseline the calibration is
    measured against): "alta" from a similarity and a lead over the closest neighbour above the
    fixed ``RAIOX_CONFIDENCE_HIGH_*`` thresholds, "media" above the ``MEDIUM_*`` ones."""
    gaps = [abs(similarity - n) for n in neighbours if n is not None]
    margin = min(gaps) if gaps else 1.0
    if similarity >= settings.RAIOX_CONFIDENCE_HIGH_SIMILARITY and margin >= settings.RAIOX_CONFIDENCE_HIGH_MARGIN:
        return "alta"
    if similarity >= settings.RAIOX_CONFIDENCE_MEDIUM_SIMILARITY and margin >= settings.RAIOX_CONFIDENCE_MEDIUM_MARGIN:
        return "media"
    return "baixa"


def _label(result: QueryResult) -> str:
    if not result.hits:
        return "baixa"
    following = result.hits[1][1] if len(result.hits) > 1 else None
    return similarity_label(result.hits[0][1], None, following)


def observations(results: Sequence[QueryResult]) -> list[calibrating.Observation]:
    """The queries as the calibration sees them: the candidates' similarities and where the right
    implant is among them (a finder miss has no candidates: no answer to calibrate)."""
    return [
        calibrating.Observation(tuple(s for _, s in r.hits), (r.rank - 1) if r.rank is not None else None)
        for r in results
    ]


def film_of(result: QueryResult) -> str:
    """The film a query came from (two implants of one panoramic are one film)."""
    return result.source.split("#", 1)[0]


def similarity_figures(results: Sequence[QueryResult]) -> SimilarityFigures:
    """Today's (pre-calibration) reading: the raw similarity taken as the probability, its ECE,
    and the share right per similarity label."""
    scored = [(r.hits[0][1], r.rank == 1) for r in results if r.hits]
    bands = calibrating.band_figures([(_label(r), r.rank == 1) for r in results if r.hits])
    return SimilarityFigures(ece=calibrating.ece(scored), bands=_shares(bands))


def _shares(bands: dict) -> dict[str, Share]:
    return {band: Share(queries=v["queries"], right=v["right"]) for band, v in bands.items()}


def _assessment(figures: dict) -> Assessment:
    return Assessment(
        queries=figures["queries"],
        ece=figures["ece"],
        mean_probability=figures["mean_probability"],
        top1=figures["top1"],
        bands=_shares(figures["bands"]),
    )


def calibrated(results: Sequence[QueryResult], calibration) -> CalibratedFigures | None:
    """The figures of a stored ``matching.Calibration`` on these results (None: none given)."""
    if calibration is None:
        return None
    params = calibrating.params_from(calibration.method, calibration.params)
    bands = calibrating.Bands.from_json(calibration.bands)
    figures = _assessment(calibrating.assess(observations(results), params, bands))
    per_condition = {}
    for condition in sorted({r.condition for r in results if r.condition}):
        rows = [r for r in results if r.condition == condition]
        per_condition[condition] = _assessment(calibrating.assess(observations(rows), params, bands))
    return CalibratedFigures(
        calibration_id=calibration.pk,
        fitted_on=calibration.dataset,
        params=calibration.params,
        cutoffs=calibration.bands,
        queries=figures.queries,
        ece=figures.ece,
        mean_probability=figures.mean_probability,
        top1=figures.top1,
        bands=figures.bands,
        per_condition=per_condition,
        method=calibration.method,
    )


def _margin(result: QueryResult) -> float:
    return result.hits[0][1] - result.hits[1][1] if len(result.hits) > 1 else 1.0


def hubness(first_answers: Sequence[int], catalogue_size: int) -> Hubness:
    """How unevenly the first answers spread over the catalogue: the share taken by the most
    frequent implant (1/n when even) and the skewness of the first-answer counts N1 over every
    implant (Radovanović et al.'s measure; near 0 when even, large when a few "hubs" take most)."""
    if not first_answers or catalogue_size < 2:
        return Hubness(top_share=0.0, skewness=0.0, implants_never_first=0)
    counts = Counter(first_answers)
    n1 = np.array([counts.get(pk, 0) for pk in counts] + [0] * max(0, catalogue_size - len(counts)), dtype=float)
    spread = n1.std()
    skew = float(((n1 - n1.mean()) ** 3).mean() / spread**3) if spread > 0 else 0.0
    return Hubness(
        top_share=_rate(max(counts.values()), len(first_answers)),
        skewness=round(skew, 2),
        implants_never_first=int((n1 == 0).sum()),
    )


def suggest_thresholds(results: Sequence[QueryResult]) -> Suggested:
    """Cut-offs read from the measured calibration (top-1 similarity and margin vs. correctness).

    - ``RAIOX_MIN_SIMILARITY``: the similarity that best separates right from wrong first
      candidates (Youden's J: share of right answers kept minus share of wrong ones kept);
    - ``RAIOX_CONFIDENCE_HIGH_*`` / ``MEDIUM_*``: the (similarity, margin) pair that labels the most
      answers while keeping their precision at 95 % / 80 %.
    """
    scored = [(r.hits[0][1], _margin(r), r.rank == 1) for r in results if r.hits]
    right = [s for s, _, ok in scored if ok]
    wrong = [s for s, _, ok in scored if not ok]
    min_similarity, note = None, ""
    if not right or not wrong:
        note = "todas as respostas certas ou todas erradas: sem base para um corte"
    else:
        best = max(
            sorted({s for s, _, _ in scored}),
            key=lambda t: sum(s >= t for s in right) / len(right) - sum(s >= t for s in wrong) / len(wrong),
        )
        min_similarity = round(best, 3)
    candidates = sorted({round(s, 3) for s, _, _ in scored})
    choices: dict[str, ThresholdChoice | None] = {}
    for name, target in (("high", HIGH_PRECISION_TARGET), ("medium", MEDIUM_PRECISION_TARGET)):
        best_choice = None
        for t in candidates:
            for m in MARGINS:
                kept = [ok for s, mg, ok in scored if s >= t and mg >= m]
                if len(kept) < 3:
                    continue
                precision = sum(kept) / len(kept)
                if precision >= target and (best_choice is None or len(kept) > best_choice[2]):
                    best_choice = (t, m, len(kept), precision)
        if best_choice is None:
            choices[name] = None
        else:
            t, m, n, precision = best_choice
            choices[name] = ThresholdChoice(
                similarity=t, margin=m, coverage=_rate(n, len(scored)), precision=round(precision, 4)
            )
    return Suggested(
        basis=len(scored), min_similarity=min_similarity, note=note, high=choices["high"], medium=choices["medium"]
    )


def summarise(
    results: list[QueryResult], *, model_id: str, untrained: bool, dataset: str, active_calibration=None
) -> Summary:
    """Every figure of a run. ``active_calibration``: a stored ``matching.Calibration`` of this model (the
    active one) whose probability and bands are measured on these results beside the similarity
    labels."""
    implants = {
        i.pk: (i.manufacturer.name, i.name) for i in Implant.objects.select_related("manufacturer").order_by("pk")
    }

    def name(pk: int) -> str:
        manufacturer, implant = implants.get(pk, ("?", f"#{pk}"))
        return f"{manufacturer} {implant}"

    n = len(results)
    ranks = [r.rank for r in results]
    topk = {k: _rate(sum(1 for x in ranks if x is not None and x <= k), n) for k in (1, 3, 5)}
    per_manufacturer: dict[str, ManufacturerFigures] = {}
    grouped: dict[str, list[QueryResult]] = defaultdict(list)
    for r in results:
        grouped[implants.get(r.truth_id, ("?", ""))[0]].append(r)
    for manufacturer, rows in sorted(grouped.items()):
        per_manufacturer[manufacturer] = ManufacturerFigures(
            queries=len(rows),
            top1=_rate(sum(r.rank == 1 for r in rows), len(rows)),
            top5=_rate(sum(r.rank is not None for r in rows), len(rows)),
        )
    confusions = Counter(
        (r.truth_id, r.top1[0]) for r in results if r.top1 is not None and r.top1[0] != r.truth_id
    ).most_common(10)
    labels: dict[str, Share] = {}
    for level in ("alta", "media", "baixa"):
        rows = [r for r in results if _label(r) == level]
        labels[level] = Share(queries=len(rows), right=_rate(sum(r.rank == 1 for r in rows), len(rows)))
    cut = settings.RAIOX_MIN_SIMILARITY
    hidden = [r for r in results if not r.hits or r.hits[0][1] < cut]
    calibration = []
    sims = [r.hits[0][1] for r in results if r.hits]
    if sims:
        low, high = min(sims), max(sims)
        width = (high - low) / 10 or 1.0
        for b in range(10):
            lo, hi = low + b * width, low + (b + 1) * width
            rows = [r for r in results if r.hits and (lo <= r.hits[0][1] < hi or (b == 9 and r.hits[0][1] == hi))]
            calibration.append(
                SimilarityBin(
                    low=round(lo, 4),
                    high=round(hi, 4),
                    queries=len(rows),
                    right=_rate(sum(r.rank == 1 for r in rows), len(rows)),
                )
            )
    embed = [r.embed_ms for r in results]
    search = [r.search_ms for r in results]
    per_condition = {}
    for condition in sorted({r.condition for r in results if r.condition}):
        rows = [r for r in results if r.condition == condition]
        per_condition[condition] = ConditionFigures(
            queries=len(rows),
            fixture_found=_rate(sum(r.found for r in rows), len(rows)),
            top1=_rate(sum(r.rank == 1 for r in rows), len(rows)),
            top3=_rate(sum(r.rank is not None and r.rank <= 3 for r in rows), len(rows)),
            hubness=hubness([r.top1[0] for r in rows if r.top1 is not None], len(implants)),
        )
    return Summary(
        model_id=model_id,
        untrained=untrained,
        dataset=dataset,
        queries=n,
        implants=len({r.truth_id for r in results}),
        top1=topk[1],
        top3=topk[3],
        top5=topk[5],
        per_manufacturer=per_manufacturer,
        per_condition=per_condition,
        hubness=hubness([r.top1[0] for r in results if r.top1 is not None], len(implants)),
        confused_pairs=tuple(ConfusedPair(truth=name(a), predicted=name(b), count=c) for (a, b), c in confusions),
        confidence_labels=labels,
        similarity_as_probability=similarity_figures(results),
        calibrated=calibrated(results, active_calibration),
        no_convincing_match=NoMatchFigures(
            min_similarity=cut,
            queries=len(hidden),
            share=_rate(len(hidden), n),
            hid_right_top1=sum(r.rank == 1 for r in hidden),
            hid_right_in_top5=sum(r.rank is not None for r in hidden),
        ),
        latency_ms=Latency(
            embed_p50=_percentile(embed, 50),
            embed_p95=_percentile(embed, 95),
            search_p50=_percentile(search, 50),
            search_p95=_percentile(search, 95),
            total_p50=_percentile([a + b for a, b in zip(embed, search, strict=True)], 50),
        ),
        calibration=tuple(calibration),
        similarity_right=tuple(round(r.hits[0][1], 4) for r in results if r.hits and r.rank == 1),
        similarity_wrong=tuple(round(r.hits[0][1], 4) for r in results if r.hits and r.rank != 1),
        suggested=suggest_thresholds(results),
        current=Thresholds(
            min_similarity=cut,
            high_similarity=settings.RAIOX_CONFIDENCE_HIGH_SIMILARITY,
            high_margin=settings.RAIOX_CONFIDENCE_HIGH_MARGIN,
            medium_similarity=settings.RAIOX_CONFIDENCE_MEDIUM_SIMILARITY,
            medium_margin=settings.RAIOX_CONFIDENCE_MEDIUM_MARGIN,
        ),
        results=tuple(results),
    )
