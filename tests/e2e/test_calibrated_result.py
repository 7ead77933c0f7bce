"""The result page in a real browser once the running model has an active calibration: the card's
headline is the estimated probability with its band, never the raw similarity. Screenshot in
var/screenshots/calibrated-result.png."""

from __future__ import annotations

import re

import pytest

from submissions.models import Submission
from tests.calibrations import active_calibration
from tests.e2e.test_dentist_pages import WAIT_MS, fill_upload, xray_file

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_the_card_headline_is_the_estimated_probability_with_its_band(
    browser, live_server, worker, tmp_path, screenshot
):
    # Activated while the worker runs: it is read per job, no restart. Cut-offs that the untrained
    # model's answers reach, so that a band label shows beside the figure.
    active_calibration(temperature=0.01, rest=0.0, high=0.9, medium=0.3, no_match=0.0)
    path, _reference = xray_file(tmp_path)
    page = browser.new_context(viewport={"width": 1280, "height": 900}, locale="pt-BR").new_page()
    page.goto(live_server.url + "/")
    fill_upload(page, path)
    page.click("#upload-submit")
    page.wait_for_url("**/r/*/")
    page.wait_for_selector("[data-testid=candidate]", timeout=WAIT_MS)

    submission = Submission.objects.get()
    matches = list(submission.matches.order_by("rank")[:3])
    assert all(m.probability is not None for m in matches)
    cards = page.locator("[data-testid=candidate]")
    first = cards.first.inner_text()
    assert re.search(r"Probabilidade estimada:\s*\d+\s%", first)
    assert f"{round(matches[0].probability * 100)}\u00a0%" in first
    assert re.search(r"Confiança (alta|média|baixa)", first) and "semelhança" not in first
    assert "Modelo ainda não calibrado" not in page.locator("#result-body").inner_text()
    shot = screenshot(page, "calibrated-result")
    assert shot.stat().st_size > 10_000
