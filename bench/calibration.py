"""Issue 21's table from two ``evaluate_matching`` reports: ``python -m bench.calibration FIT MEASURE``.

FIT: the ``report.json`` of the run that fitted the calibration (``--fit-calibration``); MEASURE:
the ``report.json`` of a run on another set with that calibration active (its ``calibrated``
section names it). Per condition of the generated films: top-1 / top-3; the raw similarity read as
a probability (ECE) and the pre-calibration similarity labels (how many "alta" / "media", share
right); the calibrated probability (ECE, mean first-candidate probability, answers per band).
Also, for comparison only (not what the product runs): isotonic regression of the first
candidate's similarity fitted on FIT (pool-adjacent-violators), its ECE on each set.
Everything is computed from the reports' per-query rows: nothing is embedded again.
"""

from __future__ import annotations

import argparse
import json
import os

import numpy as np


def _isotonic(x: list[float], y: list[bool]) -> list[tuple[float, float]]:
    """(lowest similarity of the block, share right) per block, by pool-adjacent-violators."""
    order = np.argsort(x)
    blocks: list[list[float]] = []
    for i in order:
        blocks.append([float(y[i]), 1.0, float(x[i])])
        while len(blocks) > 1 and blocks[-2][0] / blocks[-2][1] > blocks[-1][0] / blocks[-1][1]:
            last, before = blocks.pop(), blocks.pop()
            blocks.append([before[0] + last[0], before[1] + last[1], before[2]])
    return [(b[2], b[0] / b[1]) for b in blocks]


def _iso_probability(steps: list[tuple[float, float]], s: float) -> float:
    starts = [lo for lo, _ in steps]
    return steps[max(0, int(np.searchsorted(starts, s, side="right")) - 1)][1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("fit")
    parser.add_argument("measure")
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "raiox.settings")
    import django

    django.setup()
    from matching import calibration as c
    from matching.evaluation.figures import observations, similarity_label
    from matching.evaluation.summary import Summary

    with open(args.fit, encoding="utf-8") as fh:
        fit = Summary.from_json(json.load(fh)["models"][0])
    with open(args.measure, encoding="utf-8") as fh:
        measure = Summary.from_json(json.load(fh)["models"][0])
    used = measure.calibrated
    if used is None:
        raise SystemExit(f"{args.measure}: no active calibration was measured in this report")
    params, bands = c.Params.from_json(used.params), c.Bands.from_json(used.cutoffs)
    print(f"calibração #{used.calibration_id} ({used.fitted_on}): {used.params} cortes {used.cutoffs}")
    fitted = [r for r in fit.results if r.hits]
    steps = _isotonic([r.hits[0][1] for r in fitted], [r.rank == 1 for r in fitted])

    def label(r) -> str:
        h = r.hits
        return similarity_label(h[0][1], None, h[1][1] if len(h) > 1 else None)

    def share(oks: list[bool]) -> str:
        return f"{len(oks)} ({sum(oks) / len(oks) * 100:.0f} % certos)" if oks else "0"

    print(
        "| set | condition | queries | top-1 | top-3 | similarity ECE | similarity labels alta / média "
        "| calibrated ECE | mean calibrated p | calibrated alta / média | nenhuma | isotonic ECE |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for name, report in (("fit", fit), ("held out", measure)):
        rows = report.results
        for condition in [*sorted({r.condition for r in rows}), "all"]:
            rs = [r for r in rows if condition in ("all", r.condition)]
            answered = [r for r in rs if r.hits]
            labels = [(label(r), r.rank == 1) for r in answered]
            figures = c.assess(observations(rs), params, bands)
            top1 = sum(r.rank == 1 for r in rs) / len(rs)
            top3 = sum(1 for r in rs if r.rank and r.rank <= 3) / len(rs)
            sim_ece = c.ece([(r.hits[0][1], r.rank == 1) for r in answered])
            iso_ece = c.ece([(_iso_probability(steps, r.hits[0][1]), r.rank == 1) for r in answered])
            b = figures["bands"]
            alta = share([ok for lv, ok in labels if lv == "alta"])
            media = share([ok for lv, ok in labels if lv == "media"])
            print(
                f"| {name} | {condition} | {len(rs)} | {top1 * 100:.1f} % | {top3 * 100:.1f} % | {sim_ece:.3f} "
                f"| {alta} / {media} "
                f"| {figures['ece']:.3f} | {figures['mean_probability'] * 100:.1f} % "
                f"| {b['alta']['queries']} / {b['media']['queries']} | {b['nenhuma']['queries']} | {iso_ece:.3f} |"
            )


if __name__ == "__main__":
    main()
