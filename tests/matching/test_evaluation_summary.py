"""The typed summary of an evaluation run (matching.evaluation.summary): what report.json and the
stored EvaluationReport hold reads back into the same Summary, old stored reports included."""

from __future__ import annotations

import json

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
    stored_summaries,
)
from matching.evaluation_report import render_fragment


def _summary(**changes) -> Summary:
    hub = Hubness(top_share=0.5, skewness=1.25, implants_never_first=2)
    bands = {"alta": Share(queries=2, right=1.0), "nenhuma": Share(queries=0, right=None)}
    fields = dict(
        model_id="ViT-B-32/untrained-seed0+fx2",
        untrained=True,
        dataset="pasta films (4 imagens)",
        queries=4,
        implants=2,
        top1=0.5,
        top3=0.75,
        top5=1.0,
        per_manufacturer={"Fabricante A": ManufacturerFigures(queries=4, top1=0.5, top5=1.0)},
        per_condition={"lower": ConditionFigures(queries=4, fixture_found=1.0, top1=0.5, top3=0.75, hubness=hub)},
        hubness=hub,
        confused_pairs=(ConfusedPair(truth="Fabricante A X", predicted="Fabricante A Y", count=2),),
        confidence_labels={"alta": Share(queries=1, right=1.0), "media": Share(queries=3, right=0.3333)},
        similarity_as_probability=SimilarityFigures(ece=0.12, bands=bands),
        calibrated=CalibratedFigures(
            calibration_id=7,
            fitted_on="pasta films (4 imagens)",
            params={"temperature": 0.01, "rest": 0.2, "k": 5},
            cutoffs={"high": 0.9, "medium": 0.6, "no_match": 0.1},
            queries=4,
            ece=0.05,
            mean_probability=0.55,
            top1=0.5,
            bands=bands,
            per_condition={
                "lower": Assessment(queries=4, ece=0.05, mean_probability=0.55, top1=0.5, bands=bands),
            },
        ),
        no_convincing_match=NoMatchFigures(
            min_similarity=0.2, queries=1, share=0.25, hid_right_top1=0, hid_right_in_top5=1
        ),
        latency_ms=Latency(embed_p50=10.0, embed_p95=12.5, search_p50=1.5, search_p95=2.0, total_p50=11.5),
        calibration=(SimilarityBin(low=0.8, high=0.81, queries=4, right=0.5),),
        similarity_right=(0.81, 0.805),
        similarity_wrong=(0.8, 0.8001),
        suggested=Suggested(
            basis=4,
            min_similarity=0.805,
            high=ThresholdChoice(similarity=0.805, margin=0.002, coverage=0.75, precision=1.0),
            medium=None,
        ),
        current=Thresholds(
            min_similarity=0.2, high_similarity=0.85, high_margin=0.03, medium_similarity=0.7, medium_margin=0.01
        ),
        results=(
            QueryResult("lower/a/1.png", 1, [(1, 0.81), (2, 0.8)], 10.0, 1.5, condition="lower"),
            QueryResult("lower/a/2.png", 1, [], 9.0, 0.0, condition="lower", found=False),
        ),
    )
    return Summary(**(fields | changes))


def test_a_summary_reads_back_equal_from_its_json_and_from_report_json_text():
    summary = _summary()
    stored = summary.as_json()
    assert Summary.from_json(stored) == summary
    assert Summary.from_json(json.loads(json.dumps(stored))) == summary
    # The stored keys are the ones report.json always had.
    assert stored["calibration"][0] == {"from": 0.8, "to": 0.81, "queries": 4, "right": 0.5}
    assert stored["current"]["RAIOX_CONFIDENCE_HIGH_MARGIN"] == 0.03
    assert stored["calibrated"]["calibration_id"] == 7 and stored["calibrated"]["ece"] == 0.05
    assert stored["results"][0] == {
        "source": "lower/a/1.png",
        "truth_id": 1,
        "hits": [[1, 0.81], [2, 0.8]],
        "embed_ms": 10.0,
        "search_ms": 1.5,
        "condition": "lower",
        "found": True,
        "rank": 1,
    }
    assert "note" not in stored["suggested"]  # stored only when there is no cut-off
    noted = _summary(suggested=Suggested(basis=4, note="sem base"))
    assert Summary.from_json(noted.as_json()) == noted and noted.as_json()["suggested"]["note"] == "sem base"


def test_the_stored_row_leaves_the_per_query_rows_out_and_reads_back():
    summary = _summary()
    row = {"models": [summary.as_json(with_results=False)]}
    assert "results" not in row["models"][0]
    (back,) = stored_summaries(json.loads(json.dumps(row)))
    assert back == _summary(results=())


# A report stored before issues 20 and 21 (no per-condition figures, no hubness, no calibrated
# probability) and with per-query rows of that time (no condition, no "found").
OLD_REPORT = {
    "models": [
        {
            "model_id": "ViT-B-32/laion2b_s34b_b79k",
            "untrained": False,
            "dataset": "leave-one-out nas referências (6)",
            "queries": 6,
            "implants": 3,
            "top1": 0.5,
            "top3": 1.0,
            "top5": 1.0,
            "per_manufacturer": {"Fabricante A": {"queries": 6, "top1": 0.5, "top5": 1.0}},
            "confused_pairs": [{"truth": "Fabricante A X", "predicted": "Fabricante A Y", "count": 3}],
            "confidence_labels": {
                "alta": {"queries": 0, "right": 0.0},
                "media": {"queries": 2, "right": 1.0},
                "baixa": {"queries": 4, "right": 0.25},
            },
            "no_convincing_match": {
                "min_similarity": 0.2,
                "queries": 0,
                "share": 0.0,
                "hid_right_top1": 0,
                "hid_right_in_top5": 0,
            },
            "latency_ms": {"embed_p50": 0.0, "embed_p95": 0.0, "search_p50": 1.2, "search_p95": 2.1, "total_p50": 1},
            "calibration": [{"from": 0.9, "to": 0.91, "queries": 6, "right": 0.5}],
            "similarity_right": [0.91, 0.905, 0.9],
            "similarity_wrong": [0.9, 0.9, 0.901],
            "suggested": {
                "basis": 6,
                "min_similarity": None,
                "note": "todas as respostas certas ou todas erradas: sem base para um corte",
                "high": None,
                "medium": {"similarity": 0.9, "margin": 0.0, "coverage": 0.5, "precision": 0.8},
            },
            "current": {
                "RAIOX_MIN_SIMILARITY": 0.2,
                "RAIOX_CONFIDENCE_HIGH_SIMILARITY": 0.85,
                "RAIOX_CONFIDENCE_HIGH_MARGIN": 0.03,
                "RAIOX_CONFIDENCE_MEDIUM_SIMILARITY": 0.7,
                "RAIOX_CONFIDENCE_MEDIUM_MARGIN": 0.01,
            },
            "results": [
                {
                    "source": "referência #1",
                    "truth_id": 1,
                    "hits": [[1, 0.91]],
                    "embed_ms": 0,
                    "search_ms": 1.2,
                    "rank": 1,
                }
            ],
        }
    ]
}


def test_a_report_stored_before_the_calibrated_probability_still_loads_and_renders():
    (old,) = stored_summaries(OLD_REPORT)
    assert old.model_id == "ViT-B-32/laion2b_s34b_b79k" and old.top1 == 0.5 and old.queries == 6
    assert old.per_condition == {} and old.hubness is None
    assert old.similarity_as_probability is None and old.calibrated is None
    assert old.per_manufacturer["Fabricante A"].top5 == 1.0
    assert old.confidence_labels["baixa"].right == 0.25
    assert old.calibration[0].low == 0.9 and old.calibration[0].high == 0.91
    assert old.suggested.min_similarity is None and old.suggested.note.startswith("todas")
    assert old.suggested.medium.precision == 0.8 and old.suggested.high is None
    assert old.current.medium_margin == 0.01
    assert old.latency_ms.total_p50 == 1.0 and isinstance(old.latency_ms.total_p50, float)
    (row,) = old.results
    assert row.condition == "" and row.found is True and row.rank == 1 and row.hits == [(1, 0.91)]
    assert old.as_json() | {"results": []} == OLD_REPORT["models"][0] | {"results": []} | {
        "per_condition": {},
        "hubness": None,
        "similarity_as_probability": None,
        "calibrated": None,
        "latency_ms": OLD_REPORT["models"][0]["latency_ms"] | {"total_p50": 1.0},
    }
    html = render_fragment([old], created="2026-11-30 10:00")
    assert "Modelo ainda não calibrado" in html and "leave-one-out nas referências (6)" in html
