"""A panoramic with three implants, in a real browser: the worker finds three fixtures and makes
one region per fixture; the film's page draws the three numbered boxes and lists one result per
implant with its suggested quadrant, and no whole-film answer (desktop and phone screenshots
under var/shots/, looked at by a person).

The worker runs in this process on the live server's database, with the finder scripted to the
three boxes drawn (what the real finder makes of generated films: tests/matching/
test_real_finder_answers.py)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.storage import default_storage
from PIL import Image
from playwright.sync_api import expect

from implants.models import ReferenceImage
from matching import fixtures as finder
from matching import tasks
from matching.fixtures import Fixture, FixtureReport, as_grey
from submissions.models import Status
from submissions.services import IntakeRecord, submission_create
from testkit.films import PANORAMIC_SCREWS, PANORAMIC_SIZE, film
from testkit.images import encode

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

SHOTS = Path(settings.BASE_DIR) / "var" / "shots"


def _panoramic() -> tuple[Image.Image, list[tuple[int, int, int, int]]]:
    """Three catalogue pictures pasted where the three screws of ``PANORAMIC_SCREWS`` lie (the
    upper one turned apex up, as in the upper jaw); their boxes."""
    picture = film(PANORAMIC_SIZE)
    boxes = []
    for reference, screw in zip(ReferenceImage.objects.order_by("id")[:3], PANORAMIC_SCREWS, strict=True):
        with default_storage.open(reference.image.name, "rb") as fh:
            part = Image.open(io.BytesIO(fh.read())).convert("L").resize((screw.breadth * 2, screw.length))
        if screw.apex == "up":
            part = part.rotate(180)
        x0, y0 = screw.cx - part.width // 2, screw.cy - part.height // 2
        picture.paste(part, (x0, y0))
        boxes.append((x0, y0, x0 + part.width, y0 + part.height))
    return picture, boxes


def test_a_panoramic_with_three_implants_shows_three_numbered_results(
    browser,
    live_server,
    embedded_catalog,
    monkeypatch,
):
    picture, boxes = _panoramic()
    apexes = [s.apex for s in PANORAMIC_SCREWS]

    def find(image):
        grey = as_grey(image)
        h, w = grey.shape
        if (w, h) == PANORAMIC_SIZE:
            found = [Fixture(box=b, axis_deg=0.0, apex=a, score=0.9) for b, a in zip(boxes, apexes, strict=True)]
        else:  # a region cut around one of them: the fixture in its middle
            found = [Fixture(box=(w // 5, h // 8, 4 * w // 5, 7 * h // 8), axis_deg=0.0, apex="down", score=0.8)]
        return FixtureReport(fixtures=found, width=w, height=h, quality={"problems": []})

    monkeypatch.setattr(finder, "find_fixtures", find)
    panoramic, _ = submission_create(
        intake=IntakeRecord(
            source="upload", image_bytes=encode(picture), filename="panoramica.png", dentist_email="ana@example.com"
        )
    )
    assert tasks.process_submission(panoramic.pk) == "done"
    children = list(panoramic.crops.order_by("pk"))
    assert len(children) == 3
    for child in children:
        tasks.process_submission(child.pk)
        child.refresh_from_db()
        assert child.status == Status.DONE

    SHOTS.mkdir(parents=True, exist_ok=True)
    for name, viewport, extra in (
        ("desktop", {"width": 1280, "height": 900}, {}),
        ("phone", {"width": 390, "height": 844}, {"device_scale_factor": 2, "is_mobile": True, "has_touch": True}),
    ):
        context = browser.new_context(viewport=viewport, locale="pt-BR", **extra)
        page = context.new_page()
        page.goto(f"{live_server.url}/r/{panoramic.token}/")
        expect(page.locator("[data-testid=region]")).to_have_count(3)
        blocks = page.locator("[data-testid=region]")
        for i in range(3):
            expect(blocks.nth(i)).to_be_visible()
            assert blocks.nth(i).get_attribute("data-region") == str(i + 1)
        assert [blocks.nth(i).locator("[data-testid=region-suggestion]").inner_text() for i in range(3)] == [
            "Sugestão: quadrante 1",
            "Sugestão: quadrante 4",
            "Sugestão: quadrante 3",
        ]
        expect(page.locator("[data-testid=region-candidate]")).to_have_count(9)
        expect(page.locator("[data-testid=region-mark]")).to_have_count(3)
        expect(page.locator("svg.region-overlay")).to_be_visible()
        assert [t.strip() for t in page.locator("svg.region-overlay text").all_text_contents()] == ["1", "2", "3"]
        expect(page.get_by_text("Encontramos 3 implantes nesta radiografia")).to_be_visible()
        expect(page.get_by_text("Implantes mais parecidos")).to_have_count(0)
        if name == "phone":
            assert page.evaluate("document.documentElement.scrollWidth") <= 390
        page.screenshot(path=str(SHOTS / f"panoramic-three-{name}.png"), full_page=True)
        context.close()
