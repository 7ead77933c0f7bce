"""A film with three marked implants, in a real browser: sent through the generic webhook with
three regions, the worker matches each one; the page shows three blocks with the right teeth and
the film with the three numbered regions (desktop and phone screenshots)."""

from __future__ import annotations

import base64
import json

import pytest
import requests
from django.core.files.storage import default_storage
from playwright.sync_api import expect

from implants.models import ReferenceImage
from submissions.models import Submission
from testkit.images import encode

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

WAIT_MS = 600_000  # hang guard for the worker, not a speed requirement


def _film() -> bytes:
    """Three catalogue X-rays side by side: one film, three implants."""
    import io

    from PIL import Image

    parts = []
    for reference in ReferenceImage.objects.order_by("id")[:3]:
        with default_storage.open(reference.image.name, "rb") as fh:
            parts.append(Image.open(io.BytesIO(fh.read())).convert("L").resize((200, 300)))
    film = Image.new("L", (640, 320), 20)
    for i, part in enumerate(parts):
        film.paste(part, (10 + i * 210, 10))
    return encode(film)


def test_three_regions_give_three_blocks_with_their_teeth(browser, live_server, worker, screenshot, settings):
    settings.RAIOX_WEBHOOK_TOKEN = ""
    regions = [
        {"x": 10 + i * 210, "y": 10, "width": 200, "height": 300, "tooth": tooth}
        for i, tooth in enumerate(["36", "37", "46"])
    ]
    payload = {
        "nome": "Dra. Ana Lima",
        "email": "ana.lima@example.com",
        "dente": "36",
        "file": base64.b64encode(_film()).decode(),
        "regions": regions,
    }
    answer = requests.post(
        live_server.url + "/webhook", data=json.dumps(payload), timeout=60, headers={"Content-Type": "application/json"}
    )
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert [r["tooth"] for r in body["regions"]] == ["36", "37", "46"]

    for name, viewport, extra in (
        ("desktop", {"width": 1280, "height": 900}, {}),
        ("phone", {"width": 390, "height": 844}, {"device_scale_factor": 2, "is_mobile": True, "has_touch": True}),
    ):
        context = browser.new_context(viewport=viewport, locale="pt-BR", **extra)
        page = context.new_page()
        page.goto(body["result_url"].replace(settings.SITE_URL, live_server.url))
        # The page polls until every region is analysed (no script evaluation: the CSP forbids it).
        expect(page.locator("[data-testid=region] [data-testid=region-candidate]")).to_have_count(9, timeout=WAIT_MS)
        blocks = page.locator("[data-testid=region]")
        assert blocks.count() == 3
        assert [blocks.nth(i).get_attribute("data-tooth") for i in range(3)] == ["36", "37", "46"]
        assert "Dente 37" in blocks.nth(1).inner_text()
        assert page.locator("[data-testid=region-mark]").count() == 3
        assert page.locator("svg.region-overlay").is_visible()
        if name == "phone":
            assert page.evaluate("document.documentElement.scrollWidth") <= 390
        screenshot(page, f"regions-{name}")
        context.close()
    film = Submission.objects.get(token=body["token"])
    assert film.crops.count() == 3
