"""Admin bulk upload: several reference images for one implant, all or none."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django_q.models import OrmQ

from implants.models import ReferenceImage
from testkit.images import xray_png
from tests.builders.storage import storage_keys

pytestmark = pytest.mark.django_db


def _files(*contents: bytes) -> list[SimpleUploadedFile]:
    return [SimpleUploadedFile(f"foto{i}.png", c, content_type="image/png") for i, c in enumerate(contents)]


def test_bulk_upload_adds_every_image_and_queues_one_batch(admin_client, catalog, django_capture_on_commit_callbacks):
    implant = ReferenceImage.objects.first().implant
    page = admin_client.get(f"/admin/implants/implant/{implant.pk}/change/").content.decode()
    assert f"/admin/implants/implant/{implant.pk}/imagens/" in page
    before_keys = len(storage_keys())
    before_tasks = OrmQ.objects.count()  # the seeded catalogue's own embedding tasks
    with django_capture_on_commit_callbacks(execute=True):
        files = _files(xray_png(1), xray_png(2), xray_png(3))
        response = admin_client.post(f"/admin/implants/implant/{implant.pk}/imagens/", {"images": files})
    assert response.status_code == 302
    assert implant.reference_images.count() == 4
    assert len(storage_keys()) == before_keys + 3
    assert OrmQ.objects.count() == before_tasks + 1  # one batch task for the three images


def test_bulk_upload_with_one_bad_file_stores_none(admin_client, catalog):
    implant = ReferenceImage.objects.first().implant
    before_keys = storage_keys()
    response = admin_client.post(
        f"/admin/implants/implant/{implant.pk}/imagens/", {"images": _files(xray_png(1), b"not an image")}
    )
    assert response.status_code == 200
    assert "Nenhuma imagem foi gravada" in response.content.decode()
    assert implant.reference_images.count() == 1 and storage_keys() == before_keys


def test_bulk_upload_needs_change_permission(client, catalog, django_user_model):
    user = django_user_model.objects.create_user("leitor", password="x", is_staff=True)
    client.force_login(user)
    implant = ReferenceImage.objects.first().implant
    response = client.post(f"/admin/implants/implant/{implant.pk}/imagens/", {"images": _files(xray_png(1))})
    assert response.status_code == 403
    assert implant.reference_images.count() == 1
