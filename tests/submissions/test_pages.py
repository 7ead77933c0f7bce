"""The dentist's pages over HTTP: upload form, result page, status endpoint, refine, feedback,
crop, and the Jotform thank-you redirect."""

from __future__ import annotations

import functools
import io
import uuid
from datetime import timedelta

import pytest
from django.core.cache import caches
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from PIL import Image

from implants.models import Connection, Implant
from kernel.errors import ApplicationError
from submissions.intake.crop import crop_create
from submissions.models import DentistFeedback, Source, Status, Submission, Verdict
from submissions.services import (
    PROCESS_TASK,
    submission_prepare_image,
    submission_record_feedback,
    submission_refine,
)
from testkit.images import plain_image
from tests.builders.submissions import (
    UNTRAINED_MODEL,
    jotform_submission,
    queued,
    reference_candidates,
    reference_png,
    submission_finished,
    submission_received,
)

pytestmark = pytest.mark.django_db

# The page tests' dentist, with a plain grey film unless a test needs a picture (real services).
make_submission = functools.partial(
    submission_received,
    patient="Maria Souza",
    dentist_email="dra.ana@example.com",
    image=plain_image((200, 300), 128),
    filename="rx.png",
)


def finish(submission, similarities=(0.95, 0.90, 0.88, 0.80), model_id=UNTRAINED_MODEL, calibrated=None):
    """The worker took the task, recorded its own state (which model, untrained or not) and the
    result: the first reference images with these similarities (``reference_candidates``)."""
    return submission_finished(
        submission,
        candidates=reference_candidates(similarities, calibrated),
        model_id=model_id,
        embedding=0.01,
        worker_untrained=model_id == UNTRAINED_MODEL,
        task_taken=True,
    )


@pytest.fixture(autouse=True)
def _clear_shared_cache():
    caches["shared"].clear()
    yield


def result_url(submission) -> str:
    return reverse("submissions:result", args=[submission.token])


# --- Upload page ---------------------------------------------------------------------------


def test_upload_page_has_the_jotform_fields_camera_capture_and_no_external_resources(client):
    response = client.get("/")
    html = response.content.decode()
    assert response.status_code == 200
    for name in ("nome", "email", "paciente", "dente", "file"):
        assert f'name="{name}"' in html
    assert 'accept="image/*' in html and 'capture="environment"' in html
    assert "Qual implante é este?" in html
    assert "http://" not in html.replace("http://testserver", "") and "https://" not in html
    assert client.get("/enviar/").status_code == 200


def test_upload_without_javascript_creates_the_submission_and_redirects_to_its_result(client, catalog):
    data = {"nome": "Dra. Ana", "email": "Ana@Example.com", "paciente": "João", "dente": "36"}
    upload = io.BytesIO(reference_png(0))
    upload.name = "rx.png"
    response = client.post("/enviar/", {**data, "file": upload})
    submission = Submission.objects.get()
    assert response.status_code == 302 and response["Location"] == result_url(submission)
    assert submission.source == Source.UPLOAD and submission.dentist_email == "ana@example.com"
    assert submission.tooth == "36" and submission.image


def test_upload_with_javascript_gets_json_redirect(client, catalog):
    upload = io.BytesIO(reference_png(1))
    upload.name = "rx.png"
    data = {"nome": "Dra. Ana", "email": "ana@example.com", "paciente": "João", "dente": "11", "file": upload}
    response = client.post("/enviar/", data, HTTP_ACCEPT="application/json")
    assert response.status_code == 201
    assert response.json() == {"redirect": result_url(Submission.objects.get())}


def test_form_errors_are_shown_next_to_the_field_in_portuguese_and_nothing_is_kept(client):
    upload = io.BytesIO(b"%PDF-1.4 this is not an X-ray")
    upload.name = "laudo.pdf"
    response = client.post(
        "/enviar/", {"nome": "", "email": "nao-e-email", "paciente": "P", "dente": "19", "file": upload}
    )
    html = response.content.decode()
    assert response.status_code == 400
    # The intake specification's messages, the same as every other route answers.
    assert "Campo obrigatório não informado: nome." in html
    assert "E-mail inválido." in html
    assert "Dente inválido: use a notação FDI" in html
    assert Submission.objects.count() == 0


def test_a_file_that_is_not_an_image_is_refused_on_the_file_field(client):
    upload = io.BytesIO(b"%PDF-1.4 this is not an X-ray")
    upload.name = "rx.png"
    data = {"nome": "Dra. Ana", "email": "ana@example.com", "paciente": "P", "dente": "36", "file": upload}
    response = client.post("/enviar/", data, HTTP_ACCEPT="application/json")
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert list(errors) == ["file"]
    assert errors["file"][0].startswith("O arquivo não é uma imagem reconhecida.")
    assert Submission.objects.count() == 0


# --- Result page --------------------------------------------------------------------------


def test_wrong_or_malformed_token_is_404(client):
    assert client.get(f"/r/{uuid.uuid4()}/").status_code == 404
    assert client.get("/r/not-a-token/").status_code == 404
    assert client.get("/r/1/status.json").status_code == 404
    assert client.post(f"/r/{uuid.uuid4()}/recortar/", {"x": 1, "y": 1, "width": 90, "height": 90}).status_code == 404


def test_processing_page_says_so_refreshes_without_js_and_polls_with_js(client):
    submission = make_submission()
    html = client.get(result_url(submission)).content.decode()
    assert "Analisando a radiografia" in html
    assert '<noscript><meta http-equiv="refresh"' in html
    assert reverse("submissions:result-status", args=[submission.token]) in html
    status = client.get(reverse("submissions:result-status", args=[submission.token])).json()
    assert status["status"] == "received" and status["is_pending"] and not status["is_done"]
    assert "Analisando" in status["html"]


def test_status_json_follows_the_xray_to_the_file_the_worker_decoded(client, django_capture_on_commit_callbacks):
    # Intake keeps the file as sent; the worker stores its decoded PNG and deletes the original. A
    # page opened before that must switch to the new file (static/js/result.js reads image_url),
    # or the X-ray shown — and the crop drawn on it — would point at a file that is gone.
    submission = make_submission()
    status_url = reverse("submissions:result-status", args=[submission.token])
    before = client.get(status_url).json()["image_url"]
    assert before and client.get(before).status_code == 200
    with django_capture_on_commit_callbacks(execute=True):  # the original is deleted on commit
        submission_prepare_image(submission_id=submission.pk)
    after = client.get(status_url).json()["image_url"]
    assert after != before
    assert client.get(after).status_code == 200
    assert client.get(before).status_code == 404


def test_done_page_shows_three_cards_with_what_the_dentist_needs(client, catalog):
    submission = make_submission()
    finish(submission)
    response = client.get(result_url(submission))
    html = response.content.decode()
    cards = [m for m in submission.matches.order_by("rank")[:3]]
    assert html.count('data-testid="candidate"') == 3
    for match in cards:
        implant = match.implant
        assert implant.name in html and implant.manufacturer.name in html
        assert implant.screwdriver in html
        assert str(implant.get_connection_display())[0].upper() + str(implant.get_connection_display())[1:] in html
    # The model that answered has no calibration: no percentage, and the page says why.
    assert 'data-testid="probability"' not in html and "Probabilidade estimada" not in html
    assert html.count("Modelo ainda não calibrado") == 3
    assert "95%" not in html and "semelhança" not in html  # the raw similarity is not the headline
    assert "Modelo de teste, sem treinamento." in html
    assert '<noscript><meta http-equiv="refresh"' not in html
    assert "Enviar outra radiografia" in html
    status = client.get(reverse("submissions:result-status", args=[submission.token])).json()
    assert status["is_done"] and status["html"].count('data-testid="candidate"') == 3
    assert "Maria Souza" not in status["html"]  # the status fragment carries no patient data


def test_a_calibrated_result_shows_the_estimated_probability_and_its_band(client, catalog):
    submission = make_submission()
    finish(submission, calibrated=[(0.93, "alta"), (0.62, "media"), (0.03, "baixa"), (0.01, "baixa")])
    html = client.get(result_url(submission)).content.decode()
    assert html.count("Probabilidade estimada:") == 3
    assert 'data-testid="probability">93&nbsp;%' in html and 'data-testid="probability">62&nbsp;%' in html
    assert "Confiança alta" in html and "Confiança média" in html and "Confiança baixa" in html
    assert "Modelo ainda não calibrado" not in html and "95%" not in html
    status = client.get(reverse("submissions:result-status", args=[submission.token])).json()
    assert [(c["probability_percent"], c["level"]) for c in status["candidates"]] == [
        (93, "alta"),
        (62, "media"),
        (3, "baixa"),
    ]


def test_no_convincing_match_is_said_plainly(client, catalog, settings):
    settings.RAIOX_MIN_SIMILARITY = 0.75  # a model not calibrated yet: the similarity cut-off
    submission = make_submission()
    finish(submission, similarities=(0.60, 0.58, 0.50))
    html = client.get(result_url(submission)).content.decode()
    assert "Nenhum implante do catálogo é parecido o bastante" in html
    assert "Modelo ainda não calibrado" in html


def test_a_calibrated_no_convincing_match_comes_from_the_calibration_not_the_similarity(client, catalog, settings):
    settings.RAIOX_MIN_SIMILARITY = 0.75
    submission = make_submission()
    # Similarities that read "high" but a probability under the calibration's cut-off.
    finish(submission, similarities=(0.99, 0.98, 0.97), calibrated=[(0.05, "nenhuma")] * 3)
    html = client.get(result_url(submission)).content.decode()
    assert "Nenhum implante do catálogo é parecido o bastante" in html and "Confiança baixa" in html
    other = make_submission(image=plain_image((200, 300), 60))
    finish(other, similarities=(0.60, 0.58, 0.50), calibrated=[(0.7, "media"), (0.1, "baixa"), (0.05, "baixa")])
    assert "Nenhum implante do catálogo é parecido o bastante" not in client.get(result_url(other)).content.decode()


def test_trained_model_shows_no_untrained_banner(client, catalog):
    submission = make_submission()
    finish(submission, model_id="ViT-B-32/laion2b_s34b_b79k")
    assert "sem treinamento" not in client.get(result_url(submission)).content.decode()


def test_failed_page_says_what_happened_and_what_to_do_never_a_trace(client):
    from submissions.services import submission_fail

    submission = make_submission()
    submission_fail(submission_id=submission.pk, reason="Não foi possível ler a imagem enviada.")
    html = client.get(result_url(submission)).content.decode()
    assert "Não conseguimos analisar esta radiografia" in html
    assert "Não foi possível ler a imagem enviada." in html
    assert "envie uma imagem mais nítida" in html and "recorte a região do implante" in html
    assert "Traceback" not in html


def test_pages_never_show_another_submissions_data(client, catalog):
    mine = make_submission(patient="Paciente Alfa", dentist_email="alfa@example.com")
    other = make_submission(
        patient="Paciente Beta", dentist_email="beta@example.com", image=plain_image((200, 300), 40)
    )
    finish(mine)
    finish(other, similarities=(0.70, 0.69, 0.68, 0.60))
    html = client.get(result_url(mine)).content.decode()
    assert "Paciente Alfa" in html
    assert "Paciente Beta" not in html and str(other.token) not in html and other.image.url not in html
    status = client.get(reverse("submissions:result-status", args=[mine.token])).content.decode()
    assert str(other.token) not in status and "Paciente Beta" not in status


def test_refine_stores_filters_and_requeues_the_rerank(client, catalog, django_capture_on_commit_callbacks):
    submission = make_submission()
    finish(submission)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("submissions:refine", args=[submission.token]),
            {"connection": Connection.MORSE_TAPER, "body_shape": "", "level": "bone", "thread_shape": ""},
        )
    assert response.status_code == 302 and response["Location"] == result_url(submission)
    submission.refresh_from_db()
    assert submission.refine_filters == {"connection": "morse_taper", "level": "bone"}
    assert submission.status == Status.RECEIVED
    assert queued(PROCESS_TASK) == [(submission.pk,)]
    page = client.get(result_url(submission)).content.decode()
    assert "Buscando de novo com as características escolhidas" in page


def test_refine_refuses_unknown_values_and_waits_for_a_first_result(catalog):
    submission = make_submission()
    with pytest.raises(ApplicationError, match="Aguarde o primeiro resultado"):
        submission_refine(submission=submission, filters={"connection": "morse_taper"})
    finish(submission)
    with pytest.raises(ApplicationError) as exc:
        submission_refine(submission=submission, filters={"connection": "parafuso"})
    assert exc.value.field == "connection"
    with pytest.raises(ApplicationError):
        submission_refine(submission=submission, filters={"cor": "azul"})
    submission.refresh_from_db()
    assert submission.refine_filters == {} and submission.status == Status.DONE


def test_not_this_is_recorded_once_per_implant_and_requeues(client, catalog, django_capture_on_commit_callbacks):
    submission = make_submission()
    finish(submission)
    second = submission.matches.get(rank=2).implant_id
    url = reverse("submissions:feedback", args=[submission.token])
    with django_capture_on_commit_callbacks(execute=True):
        client.post(url, {"implant_id": second, "verdict": "not_this"})
        client.post(url, {"implant_id": second, "verdict": "not_this"})
    assert DentistFeedback.objects.filter(submission=submission).count() == 1
    assert DentistFeedback.objects.get().verdict == Verdict.NOT_THIS
    submission.refresh_from_db()
    assert submission.status == Status.RECEIVED
    assert queued(PROCESS_TASK) == [(submission.pk,), (submission.pk,)]


def test_is_this_is_recorded_exclusive_and_shown_without_requeue(client, catalog, django_capture_on_commit_callbacks):
    submission = make_submission()
    finish(submission)
    first, second = (submission.matches.get(rank=r).implant_id for r in (1, 2))
    url = reverse("submissions:feedback", args=[submission.token])
    with django_capture_on_commit_callbacks(execute=True):
        client.post(url, {"implant_id": first, "verdict": "is_this"})
        response = client.post(url, {"implant_id": second, "verdict": "is_this"}, follow=True)
    assert list(DentistFeedback.objects.values_list("implant_id", "verdict")) == [(second, "is_this")]
    assert queued(PROCESS_TASK) == []
    html = response.content.decode()
    assert "Você indicou que é este" in html and "Sua resposta foi registrada" in html


def test_feedback_only_on_this_submissions_candidates(catalog):
    submission = make_submission()
    finish(submission)
    outsider = Implant.objects.exclude(pk__in=submission.matches.values("implant_id")).first()
    with pytest.raises(ApplicationError, match="não está entre os candidatos"):
        submission_record_feedback(submission=submission, implant_id=outsider.pk, verdict="is_this")
    with pytest.raises(ApplicationError):
        submission_record_feedback(
            submission=submission, implant_id=submission.matches.first().implant_id, verdict="talvez"
        )
    assert DentistFeedback.objects.count() == 0


# --- Crop and re-match --------------------------------------------------------------------


def test_crop_creates_a_linked_submission_from_the_region_and_opens_its_page(
    client, catalog, django_capture_on_commit_callbacks
):
    original = make_submission(image=plain_image((400, 300), 128))
    finish(original)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("submissions:crop", args=[original.token]), {"x": 50, "y": 20, "width": 120, "height": 200}
        )
    child = Submission.objects.get(parent=original)
    assert response.status_code == 302 and response["Location"] == result_url(child)
    # The one-region case: the rectangle, its number on the film and the film's size.
    assert child.crop_box == {
        "x": 50,
        "y": 20,
        "width": 120,
        "height": 200,
        "region": 1,
        "image_width": 400,
        "image_height": 300,
    }
    assert (child.patient, child.tooth, child.dentist_email, child.source) == (
        original.patient,
        original.tooth,
        original.dentist_email,
        original.source,
    )
    assert queued(PROCESS_TASK) == [(child.pk,)]
    assert child.status == Status.RECEIVED
    # The worker cuts the region from the stored film (the web process decodes no pixels).
    assert not child.image
    child = submission_prepare_image(submission_id=child.pk)
    with child.image.open("rb") as fh:
        assert Image.open(fh).size == (120, 200)


def test_crop_is_clamped_to_the_image_and_refuses_a_tiny_box(catalog):
    original = make_submission(image=plain_image((400, 300), 128))
    child = crop_create(original, {"x": 300, "y": 200, "width": 500, "height": 500})
    # The one-region case: the rectangle, its number on the film and the film's size.
    assert child.crop_box == {
        "x": 300,
        "y": 200,
        "width": 100,
        "height": 100,
        "region": 1,
        "image_width": 400,
        "image_height": 300,
    }
    with pytest.raises(ApplicationError, match="Recorte pequeno demais") as exc:
        crop_create(original, {"x": 0, "y": 0, "width": 10, "height": 10})
    assert exc.value.field == "box"
    assert Submission.objects.filter(parent=original).count() == 1


def test_crop_errors_come_back_on_the_page(client, catalog):
    original = make_submission()
    response = client.post(
        reverse("submissions:crop", args=[original.token]), {"x": 0, "y": 0, "width": 5, "height": 5}, follow=True
    )
    assert "Recorte pequeno demais" in response.content.decode()
    response = client.post(reverse("submissions:crop", args=[original.token]), {"x": "a"}, follow=True)
    assert "Desenhe um retângulo" in response.content.decode()
    assert Submission.objects.filter(parent=original).count() == 0


# --- Jotform thank-you redirect ------------------------------------------------------------


THANKS = "/jotform/obrigado/"


def test_thank_you_waits_for_the_webhook_then_opens_the_result():
    dentist = Client()
    response = dentist.get(THANKS, {"sid": "5801234567890123456"})
    assert response.status_code == 200
    assert "Recebido, analisando" in response.content.decode()
    assert '<meta http-equiv="refresh"' in response.content.decode()
    submission = jotform_submission("5801234567890123456")
    response = dentist.get(THANKS, {"sid": "5801234567890123456"})
    assert response.status_code == 302 and response["Location"] == result_url(submission)


def test_guessing_another_submission_id_reveals_nothing():
    submission = jotform_submission("5801234567890123456")
    dentist, guesser = Client(), Client()
    assert dentist.get(THANKS, {"sid": "5801234567890123456"})["Location"] == result_url(submission)
    response = guesser.get(THANKS, {"sid": "5801234567890123456"})
    html = response.content.decode()
    assert response.status_code == 200
    assert str(submission.token) not in html and "Paciente Jotform" not in html
    assert "enviaremos o link do resultado para o seu e-mail" in html


def test_a_guesser_who_asks_first_claims_nothing():
    guesser, dentist = Client(), Client()
    guesser.get(THANKS, {"sid": "5801234567890123457"})  # predicted a future id: no claim for it
    submission = jotform_submission("5801234567890123457")
    assert dentist.get(THANKS, {"sid": "5801234567890123457"})["Location"] == result_url(submission)
    for client in (guesser, dentist):  # a second browser contests it: nobody is redirected again
        response = client.get(THANKS, {"sid": "5801234567890123457"})
        assert response.status_code == 200
        assert str(submission.token) not in response.content.decode()


def test_old_submissions_are_never_redirected_and_bad_ids_reveal_nothing():
    old = jotform_submission("5700000000000000001", received_at=timezone.now() - timedelta(hours=2))
    response = Client().get(THANKS, {"sid": "5700000000000000001"})
    assert response.status_code == 200 and str(old.token) not in response.content.decode()
    # Arabic-Indic and full-width digits, a trailing newline, a NUL: only ASCII digits are an id.
    for sid in ("", "abc", "1 OR 1=1", "9" * 40, "٥٧٠٠", "５７００", "5700000000000000001\n0", "57\x00"):
        response = Client().get(THANKS, {"sid": sid})
        assert response.status_code == 200
        assert "Recebido, analisando" not in response.content.decode()


def test_thank_you_lookups_are_rate_limited_per_address(settings):
    settings.RAIOX_THANKYOU_RATE_LIMIT = 5
    client = Client()
    codes = [client.get(THANKS, {"sid": str(5800000000000000000 + i)}).status_code for i in range(7)]
    assert codes == [200] * 5 + [429, 429]


def test_web_pages_never_import_torch():
    import subprocess
    import sys

    from django.conf import settings

    code = (
        "import django, sys; django.setup(); "
        "import raiox.urls, submissions.views, submissions.results.page, submissions.results.answer, "
        "submissions.results.export, matching.context_processors; "
        "bad = [m for m in ('torch', 'open_clip', 'matching.embedder', 'matching.tasks', 'matching.services', "
        "'matching.pipeline', 'matching.workers') "
        "if m in sys.modules]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=settings.BASE_DIR,
        env={**__import__("os").environ, "DJANGO_SETTINGS_MODULE": "raiox.settings"},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
