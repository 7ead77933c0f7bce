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
