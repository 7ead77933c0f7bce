"""An old system's names are matched to ours (issue 23, item 1): an old table of the seed's shape,
spelled as old tables spell it (other letter case, trailing spaces, "Zimmer Biomet" for "Zimmer",
"Brånemark Mk III" for "Brånemark System Mk III") against a catalogue that already holds the 32
seed implants, in a real PostgreSQL database with its images in a bucket on moto's S3."""

from __future__ import annotations

import io
import uuid
from contextlib import contextmanager

import psycopg
import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils.text import slugify

from implants.catalog import CATALOG
from implants.models import Implant, Manufacturer, ReferenceImage, ReferenceSource
from implants.synthetic import Silhouette, render_png
from tests.builders.legacy import OLD_TABLE, run_import_legacy, server_url, vector
from tests.builders.storage import storage_keys

pytestmark = pytest.mark.django_db(transaction=True)

# How the old table spells our manufacturers: by turns, so that every spelling is used.
MAKER_SPELLINGS = {
    "Nobel Biocare": ["nobel biocare", "Nobel", "NOBEL BIOCARE  "],
    "Straumann": ["straumann", "Straumann ", "STRAUMANN"],
    "Neodent": ["NEODENT", "neodent  ", "Neodent"],
    "Zimmer": ["Zimmer Biomet", "zimmer", "ZIMMER BIOMET "],
}
# And some implant names: the near name, punctuation and spacing, letter case.
NAME_SPELLINGS = {
    "Brånemark System Mk III": "Brånemark Mk III",
    "Screw-Vent": "screw vent",
    "NobelActive": "Nobel Active",
    "Bone Level Tapered (BLT)": "BONE LEVEL TAPERED (BLT) ",
    "Titamax CM": "titamax cm",
    "T3 Tapered": "T3 tapered  ",
}


@contextmanager
def old_database(rows: list[tuple]):
    """The old ``implants`` table with these rows, in its own database on the embedded server."""
    dbname = f"raiox_old_{uuid.uuid4().hex[:8]}"
    admin_url = server_url(connection.settings_dict["NAME"])
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{dbname}"')
    url = server_url(dbname)
    try:
        with psycopg.connect(url) as conn:
            conn.execute(OLD_TABLE)
            with conn.cursor() as cursor:
                cursor.executemany(
                    "INSERT INTO implants (id, name, manufacturer, type, image_url, embedding) "
                    "VALUES (%s,%s,%s,%s,%s,%s)",
                    rows,
                )
        yield url
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE "{dbname}" WITH (FORCE)')


def _put(old_bucket, key: str, body: bytes) -> str:
    old_bucket["client"].put_object(Bucket=old_bucket["bucket"], Key=key, Body=body)
    return f"{old_bucket['endpoint']}/{old_bucket['bucket']}/{key}"


@pytest.fixture
def misspelt_table(old_bucket):
    """35 rows: the 32 seed implants as an old table spells them, a 404, an HTML file, no image."""
    rows = []
    n = 0
    for manufacturer, items in CATALOG.items():
        for i, item in enumerate(items):
            n += 1
            png = render_png(Silhouette(**item["drawing"]), seed_name=f"old {manufacturer} {item['name']}")
            url = _put(old_bucket, f"referencia/{slugify(item['name'])}.png", png)
            spelled_maker = MAKER_SPELLINGS[manufacturer][i % 3]
            spelled_name = NAME_SPELLINGS.get(item["name"], item["name"] + (" " if i % 2 else ""))
            rows.append((n, spelled_name, spelled_maker, "Cone Morse", url, vector(n)))
    html = _put(old_bucket, "referencia/pagina.png", b"<!DOCTYPE html><html><body>Not Found</body></html>")
    missing = f"{old_bucket['endpoint']}/{old_bucket['bucket']}/referencia/sumiu.png"
    rows += [
        (101, "Imagem Sumida", "NEODENT", "Cone Morse", missing, None),
        (102, "Página HTML", "zimmer", "", html, None),
        (103, "Sem Imagem", "Straumann", "", "", None),
    ]
    with old_database(rows) as url:
        yield {"url": url, "rows": rows, **old_bucket}


def _state() -> dict:
    return {
        "manufacturers": list(Manufacturer.objects.order_by("pk").values_list("pk", "name", "updated_at")),
        "implants": list(Implant.objects.order_by("pk").values_list("pk", "name", "legacy_id", "updated_at")),
        "images": list(ReferenceImage.objects.order_by("pk").values_list("pk", "image", "source", "updated_at")),
        "keys": storage_keys(),
    }


def test_misspelt_old_table_links_every_good_row_to_the_seed_and_a_second_run_changes_nothing(catalog, misspelt_table):
    seeded = _state()
    assert len(seeded["implants"]) == 32 and len(seeded["manufacturers"]) == 4

    # The dry run says what the import will do, and writes nothing.
    simulated = run_import_legacy(misspelt_table, "--dry-run")
    assert _state() == seeded
    assert "Resultado da simulação" in simulated
    assert "32 linked" in simulated and "0 created" in simulated and "3 skipped" in simulated

    report = run_import_legacy(misspelt_table)
    # Every good row found its implant: no new manufacturer ("Zimmer Biomet" is our "Zimmer"),
    # no new implant ("Brånemark Mk III" is our "Brånemark System Mk III").
    assert Manufacturer.objects.count() == 4 and Implant.objects.count() == 32
    assert sorted(Manufacturer.objects.values_list("name", flat=True)) == sorted(CATALOG)
    assert sorted(Implant.objects.values_list("legacy_id", flat=True)) == list(range(1, 33))
    for row in misspelt_table["rows"][:32]:
        implant = Implant.objects.get(legacy_id=row[0])
        assert implant.reference_images.filter(source=ReferenceSource.IMPORTED).count() == 1
    assert Implant.objects.get(legacy_id=5).name == "Brånemark System Mk III"
    assert "32 linked" in report and "0 created" in report and "3 skipped" in report
    # The near name and the alias are reported with both names.
    assert "nome próximo: «Brånemark Mk III» = «Brånemark System Mk III»" in report
    assert "fabricante «Zimmer Biomet» = «Zimmer»" in report
    # The bad rows say why, in Portuguese, and no model message leaks.
    assert "id 101:" in report and "404" in report
    assert "id 102:" in report and "não é uma imagem válida" in report
    assert "id 103:" in report and "sem image_url" in report
    assert "Slug" not in report and "já existe" not in report
    assert "35 linhas lidas, 3 ignoradas, 0 a conferir" in report
    assert not Implant.objects.filter(name__in=["Imagem Sumida", "Página HTML", "Sem Imagem"]).exists()

    before = _state()
    again = run_import_legacy(misspelt_table)
    assert _state() == before
    assert "32 unchanged" in again and "0 created" in again and "0 linked" not in again


@pytest.fixture
def ambiguous_table(old_bucket):
    def png(seed: str) -> bytes:
        return render_png(Silhouette(**CATALOG["Neodent"][0]["drawing"]), seed_name=seed)

    rows = [
        (1, "Titamax", "Neodent", "Cone Morse", _put(old_bucket, "referencia/titamax.png", png("a")), None),
        (2, "BLX", "Institut Straumann", "", _put(old_bucket, "referencia/blx.png", png("b")), None),
    ]
    with old_database(rows) as url:
        yield {"url": url, **old_bucket}


def test_an_ambiguous_name_is_listed_to_check_never_a_new_implant_and_an_alias_settles_it(catalog, ambiguous_table):
    report = run_import_legacy(ambiguous_table, "--alias", "Institut Straumann=Straumann")
    assert Implant.objects.count() == 32 and Manufacturer.objects.count() == 4
    assert "1 conferir" in report and "1 linked" in report
    line = next(line for line in report.splitlines() if "id 1:" in line)
    assert "conferir" in line and "«Titamax CM», «Titamax EX», «Titamax GM»" in line
    assert '--alias "Neodent: Titamax=Titamax CM"' in line
    assert Implant.objects.get(legacy_id=2).name == "BLX"
    assert not Implant.objects.filter(legacy_id=1).exists()

    settled = run_import_legacy(
        ambiguous_table, "--alias", "Institut Straumann=Straumann", "--alias", "Neodent: Titamax=Titamax GM"
    )
    assert "1 linked" in settled and "1 unchanged" in settled and "0 conferir" not in settled
    assert Implant.objects.get(legacy_id=1).name == "Titamax GM" and Implant.objects.count() == 32

    with pytest.raises(CommandError, match="--alias"):
        run_import_legacy(ambiguous_table, "--alias", "sem sinal de igual")


def test_import_catalog_matches_names_the_same_way(catalog, tmp_path):
    path = tmp_path / "catalogo.csv"
    path.write_text(
        "manufacturer,name,connection,body_shape,thread_shape\n"
        "NEODENT ,titamax cm,morse_taper,parallel,v\n"
        "Zimmer Biomet,Screw Vent,internal_hex,parallel,v\n"
        "nobel,Brånemark Mk III,external_hex,parallel,v\n"
        "Neodent,Titamax,morse_taper,parallel,v\n"
    )
    before = _state()
    simulated = io.StringIO()
    call_command("import_catalog", str(path), "--dry-run", stdout=simulated, stderr=io.StringIO())
    assert _state() == before
    assert "0 created" in simulated.getvalue() and "1 conferir" in simulated.getvalue()

    out = io.StringIO()
    call_command("import_catalog", str(path), stdout=out, stderr=io.StringIO())
    assert Implant.objects.count() == 32 and Manufacturer.objects.count() == 4
    assert "0 created" in out.getvalue() and "1 conferir" in out.getvalue()
    assert "«Titamax» parece «Titamax CM», «Titamax EX», «Titamax GM»" in out.getvalue()
    assert Implant.objects.get(manufacturer__name="Nobel Biocare", name="Brånemark System Mk III").connection == (
        "external_hex"
    )


@pytest.mark.parametrize("name", ["i\x91\x14Ä", "Nobel\x00", "Zimmer\u202e", "a\x1bb"])
def test_catalogue_api_refuses_control_characters_in_names(client, people, catalog, name):
    headers = people["admin"].headers
    names_before = sorted(Manufacturer.objects.values_list("name", flat=True))
    implants_before = sorted(Implant.objects.values_list("name", flat=True))
    created = client.post("/api/manufacturers/", {"name": name}, content_type="application/json", **headers)
    assert created.status_code == 400, created.content
    assert "caracteres de controle" in created.content.decode()
    zimmer = Manufacturer.objects.get(name="Zimmer")
    renamed = client.put(f"/api/manufacturers/{zimmer.pk}/", {"name": name}, content_type="application/json", **headers)
    assert renamed.status_code == 400
    implant = Implant.objects.filter(manufacturer=zimmer).first()
    patched = client.patch(f"/api/implants/{implant.pk}/", {"name": name}, content_type="application/json", **headers)
    assert patched.status_code == 400
    assert sorted(Manufacturer.objects.values_list("name", flat=True)) == names_before
    assert sorted(Implant.objects.values_list("name", flat=True)) == implants_before


def test_catalogue_api_keeps_letters_and_trims_names(client, people, db):
    headers = people["admin"].headers
    created = client.post("/api/manufacturers/", {"name": " ÿ Brånemark "}, content_type="application/json", **headers)
    assert created.status_code == 201, created.content
    assert Manufacturer.objects.get().name == "ÿ Brånemark"


@pytest.mark.parametrize(
    ("maker", "old", "kind", "ours"),
    [
        ("NEODENT ", "titamax  CM", "exact", "Titamax CM"),
        ("Zimmer Biomet", "Screw Vent", "exact", "Screw-Vent"),
        ("Nobel", "Brånemark Mk IV", "near", "Brånemark System Mk IV"),
        ("neodent", "Alvim", "near", "Alvim CM"),
        ("Straumann", "Standard", "conferir", "Standard (TL), Standard Plus (TL)"),
        ("Neodent", "Drive CM Acqua", "conferir", "Drive CM"),  # a longer name may be another product
        ("Neodent", "Linha Nova", "new", "Linha Nova"),
    ],
)
def test_how_an_old_name_matches_ours(catalog, maker, old, kind, ours):
    from implants.names import CatalogueNames

    match = CatalogueNames().implant(maker, old)
    assert match.kind == kind
    assert (", ".join(match.resembles) if kind == "conferir" else match.name) == ours


def test_a_near_name_is_not_linked_to_an_implant_another_row_names(catalog):
    from implants.names import CatalogueNames, name_key

    names = CatalogueNames()
    assert names.implant("Neodent", "Alvim").kind == "near"
    taken = names.implant("Neodent", "Alvim", named_exactly={name_key("Alvim CM")})
    assert (taken.kind, taken.resembles) == ("conferir", ("Alvim CM",))
