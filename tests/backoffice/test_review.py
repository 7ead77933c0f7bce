"""Submission review: confirming teaches the matcher, un-confirming forgets; actions, CSV, queries."""

from __future__ import annotations

import csv
import io

import pytest
from django.core.files.storage import default_storage

from implants.models import Implant, ReferenceImage, ReferenceSource
from matching import tasks
from matching.embedder import get_embedder
from matching.search import nearest_implants
from submissions.models import Status, Submission
from submissions.services import IntakeRecord, submission_confirm, submission_create, submission_unconfirm
from testkit.images import xray_png
from tests.builders.storage import storage_keys
from tests.builders.submissions import queued, submission_row

pytestmark = pytest.mark.django_db


@pytest.fixture
def embedded_catalog(catalog):
    for reference_id in ReferenceImage.objects.values_list("pk", flat=True):
        tasks.embed_reference_image(reference_id)
    assert not ReferenceImage.objects.filter(embedding__isnull=True).exists()


def _processed(data: bytes, django_capture_on_commit_callbacks) -> Submission:
    with django_capture_on_commit_callbacks(execute=False):
        submission, _ = submission_create(intake=IntakeRecord(source="upload", image_bytes=data, filename="rx.png"))
    assert tasks.process_submission(submission.pk) == "done"
    submission.refresh_from_db()
    return submission


def test_confirming_teaches_the_matcher_and_unconfirming_forgets(
    embedded_catalog, admin_user, django_capture_on_commit_callbacks
):
    embedder = get_embedder()
    xray = xray_png(seed=7)
    submission = _processed(xray, django_capture_on_commit_callbacks)
    ranked = list(submission.matches.order_by("rank").values_list("implant_id", flat=True))
    # Staff confirm an implant the matcher did NOT put first.
    truth = Implant.objects.exclude(pk=ranked[0]).order_by("-id").first()

    near_duplicate = embedder.embed_bytes(xray_png(seed=7, brightness=3))
    before = nearest_implants(near_duplicate, model_id=embedder.model_id)
    assert before[0].implant_id != truth.pk

    with django_capture_on_commit_callbacks(execute=True):
        submission = submission_confirm(submission=submission, implant=truth, user=admin_user)
    reference = submission.confirmed_reference_image
    assert submission.confirmed_implant == truth and submission.confirmed_by == admin_user
    assert reference.implant == truth and reference.source == ReferenceSource.CONFIRMED_CASE
    assert reference.embedding is None  # the worker computes it: it was queued
    assert (reference.pk,) in queued("matching.tasks.embed_reference_image")
    assert default_storage.exists(reference.image.name) and reference.image.name.startswith("referencia/")

    tasks.embed_reference_image(reference.pk)  # what the worker does
    after = nearest_implants(near_duplicate, model_id=embedder.model_id)
    assert after[0].implant_id == truth.pk and after[0].reference_image_id == reference.pk
    assert after[0].similarity > before[0].similarity

    with django_capture_on_commit_callbacks(execute=True):
        submission_unconfirm(submission=submission)
    submission.refresh_from_db()
    assert submission.confirmed_implant is None and submission.confirmed_reference_image is None
    assert not ReferenceImage.objects.filter(pk=reference.pk).exists()
    assert not default_storage.exists(reference.image.name)
    gone = nearest_implants(near_duplicate, model_id=embedder.model_id)
    assert gone[0].implant_id != truth.pk
    assert [h.implant_id for h in gone] == [h.implant_id for h in before]


def test_confirm_through_the_admin_page(admin_client, catalog, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False):
        submission, _ = submission_create(
            intake=IntakeRecord(source="upload", image_bytes=xray_png(3), filename="rx.png", patient="João")
        )
    implants = list(Implant.objects.order_by("id")[:3])
    url = f"/admin/submissions/submission/{submission.pk}/confirmar/"
    page = admin_client.get(url)
    assert page.status_code == 200 and "Ou qualquer implante do catálogo" in page.content.decode()

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(url, {"implant": implants[2].pk})
    assert response.status_code == 302
    submission.refresh_from_db()
    assert submission.confirmed_implant == implants[2]
    assert submission.confirmed_reference_image.source == ReferenceSource.CONFIRMED_CASE

    # Confirming another implant replaces the earlier reference image.
    first_reference = submission.confirmed_reference_image
    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(url, {"implant": implants[1].pk})
    submission.refresh_from_db()
    assert submission.confirmed_implant == implants[1]
    assert not ReferenceImage.objects.filter(pk=first_reference.pk).exists()
    assert ReferenceImage.objects.filter(source=ReferenceSource.CONFIRMED_CASE).count() == 1

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(url, {"unconfirm": "1"})
    submission.refresh_from_db()
    assert submission.confirmed_implant is None
    assert not ReferenceImage.objects.filter(source=ReferenceSource.CONFIRMED_CASE).exists()
    # Nothing left behind: the submission's X-ray and the 32 catalogue images only.
    assert len([k for k in storage_keys() if k.startswith("referencia/")]) == 32


def test_confirming_an_inactive_implant_is_refused(admin_client, catalog, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False):
        submission, _ = submission_create(intake=IntakeRecord(source="upload", image_bytes=xray_png(4)))
    implant = Implant.objects.first()
    implant.is_active = False
    implant.save()
    with pytest.raises(Exception, match="inativo"):
        submission_confirm(submission=submission, implant=implant, user=None)
    assert not ReferenceImage.objects.filter(source=ReferenceSource.CONFIRMED_CASE).exists()


def test_reprocess_action_queues_again(admin_client, catalog, django_capture_on_commit_callbacks):
    failed = submission_row(status=Status.FAILED, failure_reason="x")
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            "/admin/submissions/submission/", {"action": "reprocess", "_selected_action": [failed.pk]}
        )
    assert response.status_code == 302
    failed.refresh_from_db()
    assert failed.status == Status.RECEIVED and failed.failure_reason == ""
    assert (failed.pk,) in queued("matching.tasks.process_submission")


def _csv(client, ids) -> list[list[str]]:
    response = client.post("/admin/submissions/submission/", {"action": "export_csv", "_selected_action": ids})
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    return list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))


def test_csv_export_hides_patients_without_permission(client, people, catalog):
    a, b, c = Implant.objects.order_by("id")[:3]
    ids = [submission_row(matches=[a, b, c], confirmed=a).pk, submission_row(dentist="=HYPERLINK()").pk]

    client.force_login(people["reviewer"].user)
    rows = _csv(client, ids)
    assert "paciente" in rows[0] and "Maria Paciente" in str(rows)
    assert len(rows) == 3
    assert rows[1][rows[0].index("candidato_1")] == str(a)
    assert "'=HYPERLINK()" in str(rows)  # no formula injection into spreadsheets

    client.force_login(people["viewer"].user)
    # The viewer may list but not change: export needs only the view permission.
    rows = _csv(client, ids)
    assert "paciente" not in rows[0] and "Maria Paciente" not in str(rows)


def test_review_list_filters_and_search(admin_client, catalog):
    a, b, c = Implant.objects.order_by("id")[:3]
    other = Implant.objects.exclude(manufacturer=a.manufacturer).first()
    mine = submission_row(matches=[a, b], dentist="Dr. Zebedeu")
    theirs = submission_row(matches=[other, a], confirmed=other, dentist="Dra. Outra")
    failed = submission_row(status=Status.FAILED, source="jotform")

    def ids(query: str) -> set[int]:
        response = admin_client.get(f"/admin/submissions/submission/{query}")
        assert response.status_code == 200
        return {s.pk for s in response.context["cl"].result_list}

    assert ids(f"?top_manufacturer={a.manufacturer_id}") == {mine.pk}
    assert ids("?confirmed=yes") == {theirs.pk}
    assert ids("?confirmed=no") == {mine.pk, failed.pk}
    assert ids("?status__exact=failed") == {failed.pk}
    assert ids("?source__exact=jotform") == {failed.pk}
    assert ids("?q=zebedeu") == {mine.pk}
    assert ids("?q=Maria") == set()  # the patient is not searchable


def test_review_list_and_detail_query_counts(admin_client, catalog, django_assert_max_num_queries):
    implants = list(Implant.objects.order_by("id")[:3])
    for _ in range(40):
        submission_row(matches=implants, confirmed=implants[0])
    with django_assert_max_num_queries(16):
        response = admin_client.get("/admin/submissions/submission/")
    assert response.status_code == 200 and "40 envios" in response.content.decode()
    submission = Submission.objects.first()
    with django_assert_max_num_queries(20):
        page = admin_client.get(f"/admin/submissions/submission/{submission.pk}/change/")
    html = page.content.decode()
    table = html[html.index('class="rx-matches"') : html.index("</table>", html.index('class="rx-matches"'))]
    assert table.count("<tr>") == 1 + 3  # the header and the three candidates
    assert all(implant.name in table for implant in implants)
    assert "linha do tempo" in html.lower()


def test_detail_shows_the_xray_through_a_signed_url_on_s3(
    client, people, s3_storage, catalog, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False):
        submission, _ = submission_create(intake=IntakeRecord(source="upload", image_bytes=xray_png(5)))
    client.force_login(people["reviewer"].user)
    html = client.get(f"/admin/submissions/submission/{submission.pk}/change/").content.decode()
    assert 'class="rx-xray"' in html and "X-Amz-Signature" in html and "X-Amz-Expires=300" in html
