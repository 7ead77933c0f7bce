"""The dashboard and the review page in a real browser (Debian's Chromium via Playwright), with
seeded data; screenshots go to var/screenshots/ for people to look at."""

from __future__ import annotations

import datetime as dt
import os
import random
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.test import Client
from django.utils import timezone

from implants.models import Implant, ReferenceImage
from matching import tasks
from submissions.models import Status
from submissions.services import IntakeRecord, submission_confirm, submission_create
from testkit.images import xray_png
from tests.builders.submissions import submission_row

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

SCREENSHOTS = Path(django_settings.BASE_DIR) / "var" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
FAILURES = [
    "Não foi possível ler a imagem enviada. Envie o arquivo original da radiografia.",
    "Não foi possível baixar a imagem do Jotform.",
]


def _seed(admin_user) -> int:
    for reference_id in ReferenceImage.objects.values_list("pk", flat=True):
        tasks.embed_reference_image(reference_id)
    rng = random.Random(6)
    implants = list(Implant.objects.order_by("id"))
    now = timezone.now()
    sources = ["jotform"] * 5 + ["upload"] * 3 + ["webhook", "api"]
    for day in range(30):
        for _ in range(rng.randint(1, 6) + (day < 10) * 2):
            when = now - dt.timedelta(days=day, minutes=rng.randint(0, 600))
            picks = rng.sample(implants[:6] * 3 + implants[6:24], 3)
            if len({i.pk for i in picks}) < 3:
                continue
            failed = rng.random() < 0.08
            confirmed = None
            if not failed and rng.random() < 0.35:
                # About 70 % of confirmed cases were the top match.
                confirmed = picks[0] if rng.random() < 0.7 else rng.choice([picks[1], picks[2], implants[20]])
            submission_row(
                received_at=when,
                seconds=rng.lognormvariate(1.2, 0.5),
                source=rng.choice(sources),
                status=Status.FAILED if failed else Status.DONE,
                failure_reason=rng.choice(FAILURES) if failed else "",
                matches=[] if failed else picks,
                confirmed=confirmed,
                model_id="ViT-B-32/untrained-seed0",
                dentist=rng.choice(["Dra. Ana Souza", "Dr. Bruno Lima", "Dra. Carla Dias"]),
            )
    # One real case, processed by the real model, confirmed by staff.
    submission, _ = submission_create(
        intake=IntakeRecord(
            source="jotform",
            dentist_name="Dra. Ana Souza",
            dentist_email="ana@example.com",
            patient="Maria Paciente",
            tooth="36",
            image_bytes=xray_png(seed=42, size=(512, 384)),
            filename="rx.png",
        )
    )
    tasks.process_submission(submission.pk)
    first = submission.matches.order_by("rank").first()
    submission_confirm(submission=submission, implant=first.implant, user=admin_user)
    return submission.pk


def test_dashboard_and_review_screens(live_server, admin_user, catalog):
    submission_id = _seed(admin_user)
    client = Client()
    client.force_login(admin_user)
    session_cookie = client.cookies[django_settings.SESSION_COOKIE_NAME].value

    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"  # Playwright's sync API runs an event loop
    from playwright.sync_api import sync_playwright

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking"],
        )
        context = browser.new_context(viewport={"width": 1600, "height": 1000}, locale="pt-BR")
        context.add_cookies([{"name": "sessionid", "value": session_cookie, "url": live_server.url}])
        page = context.new_page()
        errors: list[str] = []
        # Every resource must load (the browser asks for /favicon.ico on its own: not ours).
        page.on(
            "response",
            lambda r: errors.append(f"{r.status} {r.url}") if r.status >= 400 and "favicon" not in r.url else None,
        )
        requests_out: list[str] = []
        page.on("request", lambda r: requests_out.append(r.url))

        page.goto(f"{live_server.url}/admin/")
        page.click("text=Painel")
        page.wait_for_url("**/admin/dashboard/")
        assert page.locator("svg.chart").count() >= 5
        assert page.locator("#fig-top1").inner_text().endswith("%")
        assert "modelo sem treinamento" in page.content()
        page.screenshot(path=str(SCREENSHOTS / "dashboard.png"), full_page=True)

        page.goto(f"{live_server.url}/admin/submissions/submission/?confirmed=yes")
        assert page.locator("#result_list tbody tr").count() > 5
        page.screenshot(path=str(SCREENSHOTS / "review-list.png"), full_page=True)

        page.goto(f"{live_server.url}/admin/submissions/submission/{submission_id}/change/")
        xray = page.locator("img.rx-xray")
        assert xray.evaluate("img => img.complete && img.naturalWidth") == 512
        thumbs = page.locator("table.rx-matches img")
        assert thumbs.count() == 3
        assert all(thumbs.nth(i).evaluate("img => img.naturalWidth > 0") for i in range(3))
        assert "Maria Paciente" in page.content()
        page.screenshot(path=str(SCREENSHOTS / "review-detail.png"), full_page=True)

        page.goto(f"{live_server.url}/admin/submissions/submission/{submission_id}/confirmar/")
        page.screenshot(path=str(SCREENSHOTS / "review-confirm.png"), full_page=True)

        page.goto(f"{live_server.url}/docs")
        page.wait_for_selector(".swagger-ui .opblock", timeout=15000)
        page.screenshot(path=str(SCREENSHOTS / "docs.png"))
        browser.close()
    assert not errors, errors
    assert all(url.startswith(live_server.url) for url in requests_out), "no request may leave the site"
