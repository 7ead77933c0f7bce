"""Issue 21's table from two ``evaluate_matching`` reports: ``python -m bench.calibration FIT MEASURE``.

FIT: the ``report.json`` of a run on the set to fit on; MEASURE: the ``report.json`` of a run on
another (held-out) set. Both calibration methods of ``matching.calibration`` are fitted on FIT's
per-query rows exactly as ``evaluate_matching --fit-calibration`` fits them (``calibrating.fit``,
``k = RAIOX_TOP_K``) and measured on both sets, per condition of the generated films: top-1 / top-3;
the raw similarity read as a probability (ECE) and the pre-calibration similarity labels (how many
"alta" / "media", share right); per method, ECE, mean first-candidate probability, "alta" answers
(share right) and "nenhuma". Also each method's held-out ECE on FIT by two halves by film
(``cross_fitted``: what ``--fit-calibration`` without ``--calibration`` picks the method by).
Everything is computed from the reports' rows: nothing is embedded again.
"""

from __future__ import annotations

import argparse
import json
import os


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("fit")
    parser.add_argument("measure")
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "raiox.settings")
    import django

    django.setup()
    from django.conf import settings

    from matching import calibration as c
    from matching.evaluation.figures import film_of, observations, similarity_label
    from matching.evaluation.summary import Summary

    with open(args.fit, encoding="utf-8") as fh:
        fit = Summary.from_json(json.load(fh)["models"][0])
    with open(args.measure, encoding="utf-8") as fh:
        measure = Summary.from_json(json.load(fh)["models"][0])
    k = settings.RAIOX_TOP_K

    def label(r) -> str:
        h = r.hits
        return similarity_label(h[0][1], None, h[1][1] if len(h) > 1 else None)

    def share(oks: list[bool]) -> str:
        return f"{len(oks)} ({sum(oks) / len(oks) * 100:.0f} % right)" if oks else "0"

    fitted = {m: c.fit(observations(fit.results), k, m) for m in c.METHODS}
    picked, heldout = c.pick_method(observations(fit.results), [film_of(r) for r in fit.results], k)
    for m, f in fitted.items():
        print(f"{m}: {f.params.as_json() if m == c.SOFTMAX else {'weight': f.params.weight}} cortes {f.bands}")
        print(f"  ECE no próprio ajuste {f.ece_fit}; 2 metades por filme: {heldout[m]}")
    print(f"default (menor ECE fora do ajuste): {picked}")

    print(
        "| set | condition | queries | top-1 | top-3 | similarity ECE | similarity labels alta / média "
        "| softmax ECE | softmax mean p | softmax alta | softmax nenhuma "
        "| isotonic ECE | isotonic mean p | isotonic alta | isotonic nenhuma |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for name, report in (("fit", fit), ("held out", measure)):
        rows = report.results
        for condition in [*sorted({r.condition for r in rows}), "all"]:
            rs = [r for r in rows if condition in ("all", r.condition)]
            answered = [r for r in rs if r.hits]
            labels = [(label(r), r.rank == 1) for r in answered]
            top1 = sum(r.rank == 1 for r in rs) / len(rs)
            top3 = sum(1 for r in rs if r.rank and r.rank <= 3) / len(rs)
            sim_ece = c.ece([(r.hits[0][1], r.rank == 1) for r in answered])
            cells = []
            for m in c.METHODS:
                figures = c.assess(observations(rs), fitted[m].params, fitted[m].bands)
                b = figures["bands"]
                alta = f"{b['alta']['queries']}" + (
                    f" ({b['alta']['right'] * 100:.0f} % right)" if b["alta"]["queries"] else ""
                )
                mean = figures["mean_probability"] * 100
                cells.append(f"{figures['ece']:.3f} | {mean:.1f} % | {alta} | {b['nenhuma']['queries']}")
            alta = share([ok for lv, ok in labels if lv == "alta"])
            media = share([ok for lv, ok in labels if lv == "media"])
            print(
                f"| {name} | {condition} | {len(rs)} | {top1 * 100:.1f} % | {top3 * 100:.1f} % | {sim_ece:.3f} "
                f"| {alta} / {media} | " + " | ".join(cells) + " |"
            )


if __name__ == "__main__":
    main()
