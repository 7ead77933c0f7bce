"""Catalogue editing keeps embeddings right; deactivation removes an implant from results at once."""

from __future__ import annotations

import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django_q.models import OrmQ

from implants.models import IMPLANT_DESCRIPTION_FIELDS, Implant, ReferenceImage
from matching import tasks
from matching.embedder import get_embedder
from matching.search import nearest_implants
from testkit.images import xray_png

pytestmark = pytest.mark.django_db

EMBED = "matching.tasks.embed_reference_image"


def _queued_embeddings() -> list[int]:
    return [row.task["args"][0] for row in OrmQ.objects.all() if row.task.get("func") == EMBED]


def test_admin_add_and_replace_reference_image_queue_embeddings(
    admin_client, catalog, django_capture_on_commit_callbacks
):
    implant = Implant.objects.first()
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            "/admin/implants/referenceimage/add/",
            {"implant": implant.pk, "image": SimpleUploadedFile("nova.png", xray_png(1), "image/png")},
        )
    assert response.status_code == 302, response.content.decode()[:2000]
    reference = ReferenceImage.objects.latest("id")
    assert reference.implant == implant and reference.embedding is None
    assert reference.pk in _queued_embeddings()

    tasks.embed_reference_image(reference.pk)
    reference.refresh_from_db()
    assert reference.embedding is not None
    old_file = reference.image.name

    OrmQ.objects.all().delete()
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            f"/admin/implants/referenceimage/{reference.pk}/change/",
            {"implant": implant.pk, "image": SimpleUploadedFile("outra.png", xray_png(2), "image/png")},
        )
    assert response.status_code == 302
    reference.refresh_from_db()
    # The new picture's embedding is not the old one's: cleared and queued again.
    assert reference.embedding is None and reference.embedding_model == ""
    assert _queued_embeddings() == [reference.pk]
    assert reference.image.name != old_file and not default_storage.exists(old_file)


def _as_form(implant: Implant) -> dict:
    """The implant's description fields as its admin form posts them, unchanged (an unticked box
    is not sent)."""
    data: dict = {}
    for key in IMPLANT_DESCRIPTION_FIELDS:
        value = getattr(implant, key)
        if isinstance(value, bool):
            if value:
                data[key] = "on"
        elif isinstance(value, list):
            data[key] = ",".join(str(v) for v in value)
        else:
            data[key] = value
    return data


def test_admin_inline_upload_goes_through_the_service(admin_client, catalog, django_capture_on_commit_callbacks):
    implant = Implant.objects.prefetch_related("reference_images").first()
    existing = list(implant.reference_images.all())
    data = {
        "manufacturer": implant.manufacturer_id,
        "name": implant.name,
        **_as_form(implant),
        "reference_images-TOTAL_FORMS": str(len(existing) + 1),
        "reference_images-INITIAL_FORMS": str(len(existing)),
        "reference_images-MIN_NUM_FORMS": "0",
        "reference_images-MAX_NUM_FORMS": "1000",
    }
    for i, ref in enumerate(existing):
        data[f"reference_images-{i}-id"] = ref.pk
        data[f"reference_images-{i}-implant"] = implant.pk
    n = len(existing)
    data[f"reference_images-{n}-implant"] = implant.pk
    data[f"reference_images-{n}-image"] = SimpleUploadedFile("inline.png", xray_png(9), "image/png")
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(f"/admin/implants/implant/{implant.pk}/change/", data)
    assert response.status_code == 302, response.context["errors"] if response.context else response
    new = implant.reference_images.exclude(pk__in=[r.pk for r in existing]).get()
    assert new.embedding is None and new.pk in _queued_embeddings()
    assert new.content_hash  # set by the service, not by the form


def test_deactivating_removes_an_implant_from_results_at_once(admin_client, catalog):
    for reference_id in ReferenceImage.objects.values_list("pk", flat=True):
        tasks.embed_reference_image(reference_id)
    embedder = get_embedder()
    query = embedder.embed_bytes(xray_png(21))
    first = nearest_implants(query, model_id=embedder.model_id)[0].implant_id

    response = admin_client.post("/admin/implants/implant/", {"action": "deactivate", "_selected_action": [first]})
    assert response.status_code == 302
    assert Implant.objects.get(pk=first).is_active is False
    hits = nearest_implants(query, model_id=embedder.model_id)
    assert first not in [h.implant_id for h in hits] and len(hits) == 3

    admin_client.post("/admin/implants/implant/", {"action": "activate", "_selected_action": [first]})
    assert nearest_implants(query, model_id=embedder.model_id)[0].implant_id == first


def test_api_reference_image_upload_and_deactivation(client, people, catalog, django_capture_on_commit_callbacks):
    implant = Implant.objects.first()
    headers = people["editor"].headers
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/api/reference-images/",
            {"implant": implant.pk, "file": SimpleUploadedFile("r.png", xray_png(30), "image/png")},
            **headers,
        )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["implant"] == implant.pk and body["embedded"] is False and body["source"] == "catalog"
    assert body["id"] in _queued_embeddings()

    bad = client.post(
        "/api/reference-images/",
        {"implant": implant.pk, "file": SimpleUploadedFile("r.png", b"not an image", "image/png")},
        **headers,
    )
    assert bad.status_code == 400 and bad.json()["field"] == "file"
    assert ReferenceImage.objects.filter(implant=implant).count() == 2  # nothing left by the bad one

    denied = client.post(
        "/api/reference-images/",
        {"implant": implant.pk, "file": SimpleUploadedFile("r.png", xray_png(31), "image/png")},
        **people["plain"].headers,
    )
    assert denied.status_code == 403

    response = client.patch(
        f"/api/implants/{implant.pk}/", {"is_active": False}, content_type="application/json", **headers
    )
    assert response.status_code == 200 and response.json()["is_active"] is False
    assert Implant.objects.get(pk=implant.pk).is_active is False
    images = client.get(f"/api/implants/{implant.pk}/images/", **headers).json()
    assert len(images) == 2 and images[0]["image_url"].startswith("http://testserver/media/referencia/")
