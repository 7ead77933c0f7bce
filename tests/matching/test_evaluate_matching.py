"""evaluate_matching on a small generated catalogue with the real (untrained) model and search."""

from __future__ import annotations

import io
import json
import re

import pytest
from django.core.management import CommandError, call_command

from matching.canonical import PREPROCESS_VERSION
from matching.evaluation.summary import Summary, stored_summaries
from matching.models import EvaluationReport
from tests.builders.worker import embed_catalog

pytestmark = pytest.mark.django_db


@pytest.fixture
def small_catalogue(tmp_path):
    from implants.synthetic_catalog import write_catalog

    csv_path, _, copies = write_catalog(tmp_path / "gen", implants=4, images=2, heldout=2)
    call_command(
        "import_catalog",
        str(csv_path),
        "--images-dir",
        str(tmp_path / "gen" / "imagens"),
        stdout=io.StringIO(),
        stderr=io.StringIO(),
    )
    embed_catalog()
    return {"heldout": tmp_path / "gen" / "heldout", "copies": copies}


def _evaluate(*args: str) -> str:
    out = io.StringIO()
    call_command("evaluate_matching", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_folder_evaluation_writes_report_json_and_html_labelled_untrained(small_catalogue, tmp_path, admin_client):
    printed = _evaluate("--folder", str(small_catalogue["heldout"]), "--out", str(tmp_path / "rep"))
    assert "MODELO NÃO TREINADO" in printed and "top-1" in printed and "sugerido:" in printed

    report = json.loads((tmp_path / "rep" / "report.json").read_text())
    main = report["models"][0]
    assert main["untrained"] is True and main["model_id"] == f"ViT-B-32/untrained-seed0+{PREPROCESS_VERSION}"
    assert main["queries"] == small_catalogue["copies"] == 8 and main["implants"] == 4
    assert 0.0 <= main["top1"] <= main["top3"] <= main["top5"] <= 1.0
    # With 4 implants in the catalogue every right answer is among the first five.
    assert main["top5"] == 1.0
    ranks = [r["rank"] for r in main["results"]]
    assert main["top1"] == sum(r == 1 for r in ranks) / 8
    assert set(main["per_manufacturer"]) == {"Fabricante A", "Fabricante B", "Fabricante C", "Fabricante D"}
    assert sum(v["queries"] for v in main["confidence_labels"].values()) == 8
    assert set(main["suggested"]) >= {"min_similarity", "high", "medium"}
    assert main["latency_ms"]["search_p50"] > 0

    html = (tmp_path / "rep" / "report.html").read_text()
    assert "<script" not in html and "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")
    figures = re.findall(r"<svg.*?</svg>", html, flags=re.S)
    assert len(figures) >= 4
    assert all("MODELO NÃO TREINADO" in svg for svg in figures)
    assert "<title>Avaliação da identificação — Raiox AI (MODELO NÃO TREINADO)</title>" in html

    # report.json reads back into the typed summary and writes out unchanged; the stored row is it
    # without the per-query rows.
    summary = Summary.from_json(main)
    assert summary.as_json() == main and summary.results[0].rank == ranks[0]

    stored = EvaluationReport.objects.get()
    assert stored.untrained and stored.queries == 8
    assert stored_summaries(stored.summary) == [Summary.from_json(main | {"results": []})]
    page = admin_client.get("/admin/matching/evaluationreport/latest/")
    assert page.status_code == 200
    body = page.content.decode()
    assert "Atenção: modelo sem treinamento" in body and body.count('class="rx-eval-figure"') == len(figures)
    assert ' style="' not in body.split('id="content-main"')[1]  # CSP: no inline style in the report
    assert admin_client.get(f"/admin/matching/evaluationreport/{stored.pk}/change/").status_code == 200


def test_leave_one_out_uses_the_other_reference_images(small_catalogue, tmp_path):
    _evaluate("--leave-one-out", "--out", str(tmp_path / "loo"), "--no-save")
    main = json.loads((tmp_path / "loo" / "report.json").read_text())["models"][0]
    assert main["queries"] == 8  # every reference image, each against the seven others
    # The queried image itself is never its own answer: no similarity of exactly 1.
    assert all(r["hits"][0][1] < 0.99999 for r in main["results"])
    assert not EvaluationReport.objects.exists()


def test_empty_labelled_set_is_refused(db, tmp_path):
    (tmp_path / "vazio").mkdir()
    with pytest.raises(CommandError, match="Nenhuma consulta"):
        _evaluate("--folder", str(tmp_path / "vazio"))


def test_fit_calibration_stores_it_with_its_report_inactive_and_staff_activate_it_from_the_report(
    small_catalogue, tmp_path, admin_client
):
    from matching.models import Calibration

    printed = _evaluate(
        "--folder",
        str(small_catalogue["heldout"]),
        "--fit-calibration",
        "--calibration",
        "softmax",
        "--out",
        str(tmp_path / "r"),
    )
    assert "probabilidade calibrada: modelo ainda não calibrado" in printed  # none active before
    calibration = Calibration.objects.get()
    report = EvaluationReport.objects.get()
    assert calibration.report == report and not calibration.is_active
    assert calibration.model_id == f"ViT-B-32/untrained-seed0+{PREPROCESS_VERSION}"
    assert calibration.preprocess_version == PREPROCESS_VERSION and calibration.queries == 8
    assert f"Calibração #{calibration.pk} ajustada" in printed and "inativa" in printed
    assert calibration.method == "softmax-temperature" and "(softmax-temperature, 8 consultas)" in printed
    assert {"temperature", "rest", "k"} <= set(calibration.params)
    assert {"high", "medium", "no_match"} <= set(calibration.bands)

    page = admin_client.get(f"/admin/matching/evaluationreport/{report.pk}/change/").content.decode()
    assert 'data-testid="report-calibrations"' in page and "Ativar" in page
    response = admin_client.post(
        f"/admin/matching/calibration/{calibration.pk}/activate/",
        {"next": f"/admin/matching/evaluationreport/{report.pk}/change/"},
    )
    assert response.status_code == 302 and response["Location"].endswith(f"/evaluationreport/{report.pk}/change/")
    calibration.refresh_from_db()
    assert calibration.is_active and calibration.activated_by.username == "admin"

    # The next evaluation measures the active calibration beside the similarity labels.
    again = json.loads(
        (tmp_path / "r2" / "report.json").read_text()
        if _evaluate("--folder", str(small_catalogue["heldout"]), "--no-save", "--out", str(tmp_path / "r2"))
        else ""
    )["models"][0]
    assert again["calibrated"]["calibration_id"] == calibration.pk and again["calibrated"]["queries"] == 8
    assert again["similarity_as_probability"]["ece"] is not None
    assert "Modelo ainda não calibrado" in (tmp_path / "r" / "report.html").read_text()
    assert f"Calibração #{calibration.pk} (ajustada em" in (tmp_path / "r2" / "report.html").read_text()

    # The other method, by name: stored with it, printed with its own parameters.
    printed = _evaluate(
        "--folder",
        str(small_catalogue["heldout"]),
        "--no-save",
        "--fit-calibration",
        "--calibration",
        "isotonic",
        "--out",
        str(tmp_path / "r3"),
    )
    assert "(isotonic-margin, 8 consultas): peso da margem" in printed
    assert Calibration.objects.filter(method="isotonic-margin", is_active=False).count() == 1
