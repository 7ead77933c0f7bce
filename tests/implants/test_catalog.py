from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.db import connection
from PIL import Image

from implants.models import Implant, Manufacturer, ReferenceImage
from tests.builders.storage import storage_keys

pytestmark = pytest.mark.django_db


def test_migrations_enable_pgvector_and_an_hnsw_cosine_index():
    with connection.cursor() as cursor:
        cursor.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
        assert cursor.fetchone() is not None
        cursor.execute(
            "SELECT indexdef FROM pg_indexes WHERE tablename = 'implants_referenceimage' AND indexdef ILIKE '%hnsw%'"
        )
        (indexdef,) = cursor.fetchone()
    assert "vector_cosine_ops" in indexdef
    assert connection.vendor == "postgresql"


def test_seed_catalog_loads_32_implants_of_4_manufacturers_with_images(catalog):
    assert sorted(Manufacturer.objects.values_list("name", flat=True)) == [
        "Neodent",
        "Nobel Biocare",
        "Straumann",
        "Zimmer",
    ]
    assert Implant.objects.count() == 32
    for manufacturer in Manufacturer.objects.all():
        assert manufacturer.implants.count() == 8
    assert ReferenceImage.objects.count() == 32
    keys = storage_keys()
    assert len(keys) == 32 and all(k.startswith("referencia/") for k in keys)
    # The pictures are real, readable greyscale images.
    ref = ReferenceImage.objects.first()
    with ref.image.open("rb") as fh:
        img = Image.open(io.BytesIO(fh.read()))
        assert img.size[0] >= 256 and img.mode == "L"


def test_seed_catalog_is_idempotent(catalog):
    before = {
        "implants": list(Implant.objects.order_by("pk").values_list("pk", "updated_at")),
        "images": list(ReferenceImage.objects.order_by("pk").values_list("pk", "image", "updated_at")),
        "keys": storage_keys(),
    }
    call_command("seed_catalog", verbosity=0)
    after = {
        "implants": list(Implant.objects.order_by("pk").values_list("pk", "updated_at")),
        "images": list(ReferenceImage.objects.order_by("pk").values_list("pk", "image", "updated_at")),
        "keys": storage_keys(),
    }
    assert after == before


def test_seed_images_are_deterministic_and_differ_between_implants():
    from implants.catalog import CATALOG
    from implants.synthetic import Silhouette, render_png

    first, second = CATALOG["Neodent"][0], CATALOG["Neodent"][3]
    a1 = render_png(Silhouette(**first["drawing"]), seed_name="x")
    a2 = render_png(Silhouette(**first["drawing"]), seed_name="x")
    b = render_png(Silhouette(**second["drawing"]), seed_name="x")
    assert a1 == a2
    assert a1 != b


def test_the_seeded_catalogue_is_the_seed_file_as_the_import_reads_it(catalog, tmp_path):
    """implants/fixtures/seed_catalogue.csv is in the import_catalog format, and seed_catalog
    loads exactly what it says: exported again, every row reads back the same."""
    from implants.catalog import SEED_CATALOGUE
    from implants.catalog_io import parse_row, read_records

    exported = tmp_path / "export.csv"
    call_command("export_catalog", str(exported), stdout=io.StringIO())

    def rows(path):
        parsed = [parse_row(where, record, None) for where, record in read_records(path)]
        assert [errors for _row, errors in parsed if errors] == []
        return sorted(
            ((row.manufacturer, row.name, row.features) for row, _ in parsed),
            key=lambda item: (item[0]["name"], item[1]),
        )

    assert len(rows(SEED_CATALOGUE)) == 32
    assert rows(exported) == rows(SEED_CATALOGUE)


def test_seed_catalog_says_what_it_loaded_and_then_that_nothing_is_new(db):
    first, second = io.StringIO(), io.StringIO()
    call_command("seed_catalog", stdout=first)
    call_command("seed_catalog", stdout=second)
    assert "Catálogo pronto: 32 implantes e 32 imagens novos (32 implantes no catálogo)." in first.getvalue()
    assert "Catálogo pronto: 0 implantes e 0 imagens novos (32 implantes no catálogo)." in second.getvalue()


def test_seed_catalog_goes_through_the_import_and_keeps_what_staff_changed(catalog):
    """The seed is loaded by the catalogue import (implants.seed): run again, it neither undoes
    staff's edits of an implant nor draws a picture beside one that staff uploaded instead."""
    from implants import services
    from implants.models import ReferenceSource
    from implants.synthetic import Silhouette, render_png

    implant = Implant.objects.get(manufacturer__name="Neodent", name="Titamax CM")
    implant.notes = "Conferido pela equipe."
    implant.screwdriver = "Chave da equipe"
    services.implant_save(implant=implant)
    generated = implant.reference_images.get(source=ReferenceSource.CATALOG)
    services.reference_image_delete(reference=generated)
    drawing = Silhouette(
        taper=0.5,
        thread_pitch=18,
        thread_depth=8,
        thread_shape="v",
        apex="flat",
        collar_height=10,
        connection="morse_taper",
        tissue_level=False,
    )
    uploaded = services.reference_image_create(
        implant=implant, image_bytes=render_png(drawing, seed_name="equipe"), filename="foto.png"
    )

    out = io.StringIO()
    call_command("seed_catalog", stdout=out)

    implant.refresh_from_db()
    assert (implant.notes, implant.screwdriver) == ("Conferido pela equipe.", "Chave da equipe")
    assert list(implant.reference_images.values_list("pk", flat=True)) == [uploaded.pk]
    assert "0 implantes e 0 imagens novos" in out.getvalue()
