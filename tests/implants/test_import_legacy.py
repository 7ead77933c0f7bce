"""import_legacy against the old system as it really is: its table in a real PostgreSQL database
(another database on the embedded server) and its referencia/ images in a bucket on moto's S3."""

from __future__ import annotations

import io
import json
import uuid

import numpy as np
import psycopg
import pytest
from django.core.management import call_command
from django.db import connection
from django.utils.text import slugify
from django_q.models import OrmQ

from implants.catalog import CATALOG
from implants.models import Implant, Manufacturer, ReferenceImage, ReferenceSource
from implants.seed import seed_features
from implants.synthetic import Silhouette, render_png
from matching.canonical import PREPROCESS_VERSION
from tests.builders.legacy import OLD_TABLE, run_import_legacy, server_url, vector
from tests.builders.storage import storage_keys

pytestmark = pytest.mark.django_db(transaction=True)

# The old vectors are kept only under the running model id (weights + preprocessing version).
RUNNING_MODEL = f"ViT-B-32/untrained-seed0+{PREPROCESS_VERSION}"
BAD = {"sem imagem": 9001, "404": 9002, "não imagem": 9003, "duplicado": 9004, "fora do bucket": 9005}

TYPE_WORDS = {"morse_taper": "Cone Morse", "external_hex": "Hexágono Externo", "internal_hex": "Hexágono Interno"}


@pytest.fixture
def old_system(old_bucket):
    """The old table with the 32 implants (bucket images, old embeddings) and five bad rows."""
    bucket, client, endpoint = old_bucket["bucket"], old_bucket["client"], old_bucket["endpoint"]
    rows = []
    n = 0
    for manufacturer, items in CATALOG.items():
        for item in items:
            n += 1
            key = f"referencia/{slugify(item['name'])}.png"
            png = render_png(Silhouette(**item["drawing"]), seed_name=f"old {manufacturer} {item['name']}")
            client.put_object(Bucket=bucket, Key=key, Body=png)
            # The old system linked images both ways: path style on the endpoint and the CDN name.
            url = f"{endpoint}/{bucket}/{key}" if n % 2 else f"https://{bucket}.nyc3.digitaloceanspaces.com/{key}"
            kind = TYPE_WORDS.get(seed_features()[(manufacturer, item["name"])]["connection"], "Outro")
            rows.append((n, item["name"], manufacturer, kind, url, vector(n)))
    client.put_object(Bucket=bucket, Key="referencia/leia-me.png", Body=b"this is not an image at all")
    base = f"{endpoint}/{bucket}/referencia"
    rows += [
        (BAD["sem imagem"], "Sem Imagem", "Neodent", "Cone Morse", "", vector(1)),
        (BAD["404"], "Imagem Sumida", "Neodent", "Cone Morse", f"{base}/sumiu.png", None),
        (BAD["não imagem"], "Arquivo Texto", "Zimmer", "", f"{base}/leia-me.png", None),
        (BAD["duplicado"], "Titamax CM", "Neodent", "Cone Morse", f"{base}/titamax-cm.png", None),
        (BAD["fora do bucket"], "Externo", "Zimmer", "", "https://example.com/referencia/titamax-cm.png", None),
    ]
    dbname = f"raiox_old_{uuid.uuid4().hex[:8]}"
    admin_url = server_url(connection.settings_dict["NAME"])
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{dbname}"')
    url = server_url(dbname)
    with psycopg.connect(url) as conn:
        conn.execute(OLD_TABLE)
        with conn.cursor() as cursor:
            cursor.executemany(
                "INSERT INTO implants (id, name, manufacturer, type, image_url, embedding) VALUES (%s,%s,%s,%s,%s,%s)",
                rows,
            )
    yield {"url": url, "bucket": bucket, "endpoint": endpoint, "rows": rows}
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE "{dbname}" WITH (FORCE)')


def _state() -> dict:
    return {
        "implants": list(Implant.objects.order_by("pk").values_list("pk", "legacy_id", "updated_at")),
        "images": list(ReferenceImage.objects.order_by("pk").values_list("pk", "image", "updated_at")),
        "keys": storage_keys(),
    }


def test_import_legacy_imports_the_32_rows_reports_bad_ones_and_a_rerun_changes_nothing(old_system):
    report = run_import_legacy(old_system, "--legacy-model", RUNNING_MODEL)

    assert Implant.objects.count() == 32
    assert sorted(Manufacturer.objects.values_list("name", flat=True)) == list(sorted(CATALOG))
    refs = ReferenceImage.objects.all()
    assert refs.count() == 32 and all(r.source == ReferenceSource.IMPORTED for r in refs)
    assert len(storage_keys()) == 32 and all(k.startswith("referencia/") for k in storage_keys())
    # Known lines get their real features; the old type is kept beside them.
    drive = Implant.objects.get(name="Drive GM")
    assert (drive.connection, drive.body_shape, drive.legacy_type) == ("morse_taper", "tapered", "Cone Morse")
    # The old embedding is kept, under the model id the operator named.
    first = ReferenceImage.objects.get(implant__legacy_id=1)
    assert first.embedding_model == RUNNING_MODEL
    assert np.allclose(np.array(first.embedding), np.array(json.loads(vector(1))), atol=1e-5)
    # Embeddings queued in batches, not one task per image.
    assert 1 <= OrmQ.objects.count() <= 2

    for name, legacy_id in BAD.items():
        assert f"id {legacy_id}:" in report, name
    assert "sem image_url" in report
    assert "404" in report
    assert "não é uma imagem válida" in report
    assert "nome duplicado (igual ao id" in report
    assert "imagem fora do bucket" in report
    assert "32 created" in report and "5 skipped" in report
    assert not Implant.objects.filter(legacy_id__in=BAD.values()).exists()
    assert not Implant.objects.filter(name__in=["Sem Imagem", "Imagem Sumida", "Arquivo Texto", "Externo"]).exists()

    before = _state()
    again = run_import_legacy(old_system, "--legacy-model", RUNNING_MODEL)
    assert _state() == before
    assert "32 unchanged" in again and "0 created" in again


def test_dry_run_writes_nothing(old_system):
    report = run_import_legacy(old_system, "--dry-run")
    assert "nada foi gravado" in report
    assert Implant.objects.count() == 0 and Manufacturer.objects.count() == 0 and storage_keys() == []


def test_old_embedding_of_another_model_is_not_searched_and_the_worker_embeds_again(old_bucket, tmp_path):
    """From a CSV export and a folder copy: an embedding kept under ViT-B-32/openai is not used by
    the running (untrained) model, and the queued batch task replaces it."""
    from matching.batch import embed_reference_images
    from matching.search import nearest_implants

    images = tmp_path / "copia" / "referencia"
    images.mkdir(parents=True)
    item = CATALOG["Straumann"][5]
    (images / "blx.png").write_bytes(render_png(Silhouette(**item["drawing"]), seed_name="csv"))
    csv_path = tmp_path / "implants.csv"
    csv_path.write_text(
        "id,name,manufacturer,type,image_url,embedding\n"
        f'7,BLX,Straumann,Cone Morse,https://raiox-images.nyc3.digitaloceanspaces.com/referencia/blx.png,"{vector(7)}"\n'
    )
    out = io.StringIO()
    call_command(
        "import_legacy",
        "--csv",
        str(csv_path),
        "--images-dir",
        str(tmp_path / "copia"),
        "--legacy-model",
        "ViT-B-32/openai",
        stdout=out,
        stderr=io.StringIO(),
    )
    ref = ReferenceImage.objects.get()
    assert ref.embedding_model == "ViT-B-32/openai"
    assert nearest_implants(list(ref.embedding), model_id=RUNNING_MODEL, k=1) == []

    assert embed_reference_images([ref.pk]) == 1
    ref.refresh_from_db()
    assert ref.embedding_model == RUNNING_MODEL
    assert not np.allclose(np.array(ref.embedding), np.array(json.loads(vector(7))), atol=1e-3)
    assert [h.implant_id for h in nearest_implants(list(ref.embedding), model_id=RUNNING_MODEL, k=1)] == [
        ref.implant_id
    ]


def test_history_imports_old_uploads_as_unlabelled_submissions_without_emails(old_bucket, tmp_path):
    from submissions.models import Submission
    from testkit.images import xray_png

    bucket, client, endpoint = old_bucket["bucket"], old_bucket["client"], old_bucket["endpoint"]
    client.put_object(Bucket=bucket, Key="referencia/blx.png", Body=xray_png(9))
    client.put_object(Bucket=bucket, Key="clientes/dentista@example.com/raiox1.png", Body=xray_png(1))
    client.put_object(Bucket=bucket, Key="uploads/abc.png", Body=xray_png(2))
    client.put_object(Bucket=bucket, Key="raiox-imagens/antiga.png", Body=xray_png(3))
    client.put_object(Bucket=bucket, Key="uploads/quebrada.png", Body=b"not an image")
    csv_path = tmp_path / "implants.csv"
    csv_path.write_text(
        "id,name,manufacturer,type,image_url,embedding\n"
        f"7,BLX,Straumann,Cone Morse,{endpoint}/{bucket}/referencia/blx.png,\n"
    )
    args = ["--csv", str(csv_path), "--bucket", bucket, "--endpoint-url", endpoint, "--history"]
    out = io.StringIO()
    call_command("import_legacy", *args, stdout=out, stderr=io.StringIO())
    assert "3 created" in out.getvalue() and "1 skipped" in out.getvalue()
    subs = list(Submission.objects.all())
    assert len(subs) == 3
    assert all(s.dentist_email == "" and s.patient == "" and s.confirmed_implant_id is None for s in subs)
    keys = storage_keys()
    assert not any("dentista" in k or "example.com" in k or "raiox1" in k for k in keys)
    assert "dentista" not in out.getvalue()

    again = io.StringIO()
    call_command("import_legacy", *args, stdout=again, stderr=io.StringIO())
    assert Submission.objects.count() == 3 and "3 unchanged" in again.getvalue()


def test_each_old_picture_is_decoded_once(old_system, monkeypatch):
    """Checked (is it an image) and stored from the same decode, never decoded again to store it."""

    def not_again(*args, **kwargs):
        raise AssertionError("decoded a second time when stored")

    monkeypatch.setattr("implants.services.decode_image", not_again)
    report = run_import_legacy(old_system)
    assert "32 created" in report and ReferenceImage.objects.count() == 32
