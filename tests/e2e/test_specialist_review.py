"""Ask a specialist, in a real browser: the dentist asks from an unconvincing result, a reviewer
answers in the admin, the dentist's page shows the answer, and one e-mail went out (written by the
real worker through Django's file e-mail backend). Desktop and phone screenshots."""

from __future__ import annotations

import time
from email import message_from_bytes, policy

import pytest
from django.contrib.auth.models import User

from submissions.models import ReviewRequest, Status, Submission
from testkit.images import xray_file

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

WAIT_MS = 600_000  # hang guard for the worker, not a speed requirement
MAIL_PATIENCE_S = 300


def _review_mails(folder) -> list:
    messages = []
    for path in sorted(folder.glob("*.log")) if folder.exists() else []:
        # The file backend writes each message followed by a line of dashes.
        for chunk in path.read_bytes().split(b"-" * 79):
            if chunk.strip():
                msg = message_from_bytes(chunk.strip(), policy=policy.default)
                if "especialista" in str(msg["Subject"]):
                    messages.append(msg)
    return messages


def test_dentist_asks_staff_answers_page_shows_it_and_one_email(
    browser, live_server, worker, tmp_path, screenshot, settings
):
    # Nothing in the catalogue convinces: the page offers the specialist prominently.
    settings.RAIOX_MIN_SIMILARITY = 0.9999
    xray = tmp_path / "radiografia.png"
    xray.write_bytes(xray_file(size=(640, 480), seed=5))
    User.objects.create_superuser("chefe", "chefe@example.com", "x-pass-123")

    dentist = browser.new_context(viewport={"width": 1280, "height": 900}, locale="pt-BR")
    page = dentist.new_page()
    page.goto(live_server.url + "/")
    page.fill("input[name=nome]", "Dra. Ana Lima")
    page.fill("input[name=email]", "ana.lima@example.com")
    page.fill("input[name=paciente]", "Carlos Pereira")
    page.fill("input[name=dente]", "36")
    page.set_input_files("input[type=file]", str(xray))
    page.click("#upload-submit")
    page.wait_for_url("**/r/*/")
    page.wait_for_selector("[data-testid=candidate]", timeout=WAIT_MS)
    submission = Submission.objects.get()
    assert submission.status == Status.DONE
    assert page.locator("[data-testid=no-match]").is_visible()
    offer = page.locator("[data-testid=review-offer]")
    assert offer.is_visible() and "Resultado incerto?" in offer.inner_text()
    screenshot(page, "review-01-offer")
    page.fill("#review-note", "Implante de 2012, paciente não lembra a marca.")
    page.click("#review-submit")
    page.wait_for_selector("[data-testid=review-pending]")
    assert "Pedido enviado!" in page.content()
    assert ReviewRequest.objects.get().note == "Implante de 2012, paciente não lembra a marca."
    screenshot(page, "review-02-asked")

    staff = browser.new_context(viewport={"width": 1280, "height": 900}, locale="pt-BR")
    admin = staff.new_page()
    admin.goto(live_server.url + "/admin/submissions/reviewrequest/")
    admin.fill("#id_username", "chefe")
    admin.fill("#id_password", "x-pass-123")
    admin.click("input[type=submit]")
    admin.wait_for_selector("#result_list")
    screenshot(admin, "review-03-admin-queue")
    admin.click("text=Responder…")
    admin.wait_for_selector("#identify-form")
    assert "paciente não lembra a marca" in admin.locator("[data-testid=dentist-note]").inner_text()
    admin.fill("#id_answer_note", "Hexágono externo, rosca em V: confira a chave.")
    screenshot(admin, "review-04-admin-answer")
    chosen = admin.locator("button[name=candidate]").first
    implant_id = int(chosen.get_attribute("value"))
    chosen.click()
    admin.wait_for_selector("#result_list")
    assert "Resposta enviada ao dentista." in admin.content()
    review = ReviewRequest.objects.select_related("implant__manufacturer").get()
    assert review.implant_id == implant_id
    label = f"{review.implant.manufacturer.name} {review.implant.name}"

    page.reload()
    answer = page.locator("[data-testid=specialist-answer]")
    assert answer.is_visible()
    assert f"Confirmado por especialista: {label}" in answer.inner_text()
    assert "Hexágono externo" in answer.inner_text()
    # Above the automatic candidates.
    assert answer.bounding_box()["y"] < page.locator("[data-testid=candidate]").first.bounding_box()["y"]
    screenshot(page, "review-05-answered")

    phone = browser.new_context(
        viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True, has_touch=True, locale="pt-BR"
    )
    mobile = phone.new_page()
    mobile.goto(page.url)
    assert mobile.locator("[data-testid=specialist-answer]").is_visible()
    assert mobile.evaluate("document.documentElement.scrollWidth") <= 390
    screenshot(mobile, "review-06-phone-answered")

    # The worker sends the answer by e-mail, once.
    deadline = time.monotonic() + MAIL_PATIENCE_S
    while not ReviewRequest.objects.filter(notified_at__isnull=False).exists():
        assert time.monotonic() < deadline, "the worker did not send the review e-mail"
        time.sleep(0.5)
    time.sleep(2)  # a duplicate task, if there were one, would have run by now
    mails = _review_mails(tmp_path / "mail")
    assert len(mails) == 1
    body = mails[0].get_content()
    assert mails[0]["To"] == "ana.lima@example.com" and label in body and str(submission.token) in body
    for ctx in (dentist, staff, phone):
        ctx.close()
