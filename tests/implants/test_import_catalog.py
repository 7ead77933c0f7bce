"""import_catalog / export_catalog on files an operator would write, with real images."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import CommandError, call_command
from django_q.models import OrmQ

from implants.models import Implant, Manufacturer, ReferenceImage
from implants.synthetic_catalog import write_catalog
from tests.builders.storage import storage_keys

pytestmark = pytest.mark.django_db


def _import(*args: str) -> str:
    out = io.StringIO()
    call_command("import_catalog", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


@pytest.fixture
def generated(tmp_path):
    csv_path, images, _ = write_catalog(tmp_path / "gen", implants=4, images=2)
    return {"csv": csv_path, "images": tmp_path / "gen" / "imagens", "count": images}


def test_import_catalog_imports_rows_and_images_queues_batches_and_is_idempotent(
    generated, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        out = _import(str(generated["csv"]), "--images-dir", str(generated["images"]), "--batch-size", "3")
    assert "4 created" in out and "8 imagens novas" in out
    assert Implant.objects.count() == 4 and Manufacturer.objects.count() == 4
    assert ReferenceImage.objects.count() == 8 and len(storage_keys()) == 8
    implant = Implant.objects.get(name="Linha 001")
    assert implant.reference_images.count() == 2 and implant.diameters_mm
    assert OrmQ.objects.count() == 3  # 8 images in tasks of 3

    before = list(ReferenceImage.objects.order_by("pk").values_list("pk", "image", "updated_at"))
    with django_capture_on_commit_callbacks(execute=True):
        again = _import(str(generated["csv"]), "--images-dir", str(generated["images"]))
    assert "4 unchanged" in again and "0 imagens novas" in again
    assert list(ReferenceImage.objects.order_by("pk").values_list("pk", "image", "updated_at")) == before
    assert OrmQ.objects.count() == 3


def test_three_bad_rows_are_refused_with_their_line_numbers_and_nothing_is_written(generated):
    lines = generated["csv"].read_text().splitlines()
    header, rows = lines[0], lines[1:]
    rows[1] = rows[1].replace(",morse_taper,", ",hexagono,").replace(",external_hex,", ",hexagono,")
    rows[1] = rows[1].replace(",internal_hex,", ",hexagono,").replace(",other,", ",hexagono,")
    rows[2] = rows[2].replace(",8;10;11.5;13,", ",8;dez;13,")
    rows[3] = rows[3][: rows[3].rindex(",")] + ",nao-existe.png"
    bad = generated["csv"].with_name("ruim.csv")
    bad.write_text("\n".join([header, *rows]) + "\n")

    with pytest.raises(CommandError) as excinfo:
        _import(str(bad), "--images-dir", str(generated["images"]))
    message = str(excinfo.value)
    assert "linha 3" in message and "linha 4" in message and "linha 5" in message
    assert "linha 2" not in message
    assert Implant.objects.count() == 0 and Manufacturer.objects.count() == 0 and storage_keys() == []

    out = _import(str(bad), "--images-dir", str(generated["images"]), "--skip-invalid", "-v", "2")
    assert Implant.objects.count() == 1 and "1 created" in out and "3 skipped" in out
    assert "número inválido" in out and "nao-existe.png" in out and "connection" in out


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_export_then_import_round_trips(generated, tmp_path, fmt):
    _import(str(generated["csv"]), "--images-dir", str(generated["images"]))
    exported, pictures = tmp_path / f"export.{fmt}", tmp_path / "export-imagens"
    call_command("export_catalog", str(exported), "--images-dir", str(pictures), stdout=io.StringIO())

    def snapshot():
        implants = sorted(
            (
                i.manufacturer.name,
                i.name,
                i.connection,
                i.body_shape,
                i.level,
                i.thread_shape,
                i.apex,
                i.collar,
                i.platform_switching,
                tuple(str(d) for d in i.diameters_mm),
                tuple(str(v) for v in i.lengths_mm),
                i.screwdriver,
                i.is_active,
                tuple(sorted(i.reference_images.values_list("content_hash", flat=True))),
            )
            for i in Implant.objects.select_related("manufacturer")
        )
        return implants

    before = snapshot()
    if fmt == "json":
        assert json.loads(exported.read_text())[0]["images"]
    ReferenceImage.objects.all().delete()
    Implant.objects.all().delete()
    Manufacturer.objects.all().delete()

    out = _import(str(exported), "--images-dir", str(pictures))
    assert "4 created" in out
    assert snapshot() == before
    again = tmp_path / f"again.{fmt}"
    call_command("export_catalog", str(again), stdout=io.StringIO())
    call_command("export_catalog", str(exported.with_name(f"noimg.{fmt}")), stdout=io.StringIO())
    assert again.read_text() == exported.with_name(f"noimg.{fmt}").read_text()


def test_each_image_is_decoded_once_checked_then_stored_as_decoded(generated, monkeypatch):
    """The check decodes each picture (is it an image, which pixels); the write stores that result
    instead of decoding the file again (implants.bulk.DecodedImages)."""
    import kernel.imaging

    decoded: list[int] = []

    def counting(data: bytes, **kwargs):
        decoded.append(len(data))
        return kernel.imaging.decode_image(data, **kwargs)

    def not_again(*args, **kwargs):
        raise AssertionError("decoded a second time when stored")

    monkeypatch.setattr("implants.bulk.decode_image", counting)
    monkeypatch.setattr("implants.services.decode_image", not_again)
    out = _import(str(generated["csv"]), "--images-dir", str(generated["images"]))
    assert "8 imagens novas" in out and ReferenceImage.objects.count() == 8
    assert len(decoded) == generated["count"] == 8
