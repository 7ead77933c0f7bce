"""Catalogue files: the format ``import_catalog`` reads and ``export_catalog`` writes.

One row per implant (CSV with a header, or a JSON list of objects), with the columns of ``COLUMNS``.
In a CSV, lists (diameters, lengths, images) are separated by ``;`` and decimals use a point.
Images are, in this order: the ``images`` column (paths relative to the images folder or bucket
prefix), else every image under ``<manufacturer-slug>/<implant-slug>/``.

The import validates every row first and writes nothing if any row is wrong (unless the operator
asks to skip invalid rows); then each row is written whole or not at all, through the services.
"""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path, PurePosixPath
from typing import Protocol

from django.contrib.postgres.fields import ArrayField
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import BooleanField, Prefetch
from django.utils.text import slugify

from implants import services
from implants.bulk import (
    CONFERIR,
    CREATED,
    SKIPPED,
    UNCHANGED,
    UPDATED,
    BucketFiles,
    DecodedImages,
    EmbeddingBatches,
    FolderFiles,
    RowOutcome,
    refusal,
    safe_key,
)
from implants.models import IMPLANT_DESCRIPTION_FIELDS, Implant, Manufacturer, ReferenceSource
from implants.names import CatalogueNames, name_key
from implants.selectors import catalog_images, confirmed_cases
from kernel.errors import ApplicationError
from kernel.imaging import ValidatedImage
from kernel.spreadsheet import safe_cell, unquote
from kernel.storage_keys import SAFE_EXTENSIONS

COLUMNS = [
    "manufacturer",
    "manufacturer_country",
    "manufacturer_website",
    "name",
    *IMPLANT_DESCRIPTION_FIELDS,
    "images",
]
REQUIRED = ["manufacturer", "name", "connection", "body_shape", "thread_shape"]


def _kind(name: str) -> tuple[str, object]:
    """How a description field is written in a file, read from the model: (kind, value when
    the cell is empty). Yes/no cells are "sim"/"não", number lists "3.5;4.3", the rest text."""
    model_field = Implant._meta.get_field(name)
    if isinstance(model_field, BooleanField):
        return "yes_no", model_field.default
    if isinstance(model_field, ArrayField):
        return "numbers", []
    return "text", model_field.default if model_field.has_default() else ""


_KINDS = {name: _kind(name) for name in IMPLANT_DESCRIPTION_FIELDS}
TRUE = {"1", "true", "sim", "yes", "s", "y", "x"}
FALSE = {"", "0", "false", "nao", "não", "no", "n"}


# --- image sources --------------------------------------------------------------------------------


class PictureSource(Protocol):
    """Where a catalogue's pictures come from: a folder, a bucket, or the seed's drawings
    (``implants.seed.SeedPictures``)."""

    def default_images(self, manufacturer_slug: str, implant_slug: str) -> list[str]:
        """The pictures of a row that lists none."""
        ...

    def image(self, path: str) -> ValidatedImage:
        """The picture at ``path``, decoded (``FileNotFoundError`` when there is none)."""
        ...


class FolderSource(FolderFiles):
    """A catalogue's pictures in a folder: ``<manufacturer-slug>/<implant-slug>/*`` unless a row
    lists its own."""

    def __init__(self, folder: Path):
        super().__init__(folder)
        self.decoded = DecodedImages()

    def default_images(self, manufacturer_slug: str, implant_slug: str) -> list[str]:
        base = self.folder / manufacturer_slug / implant_slug
        if not base.is_dir():
            return []
        return sorted(str(p.relative_to(self.folder)) for p in base.iterdir() if p.suffix.lower() in SAFE_EXTENSIONS)

    def read(self, path: str) -> bytes:
        found = self.find(safe_key(path))
        if found is None:
            raise FileNotFoundError(path)
        return found.read_bytes()

    def image(self, path: str) -> ValidatedImage:
        """The picture at ``path``, decoded once however often it is asked for (``DecodedImages``)."""
        return self.decoded.get(path, lambda: self.read(path))


class BucketSource(BucketFiles):
    """A catalogue's pictures under a prefix of a bucket, laid out as in a folder."""

    def __init__(self, bucket: str, prefix: str = "", endpoint_url: str | None = None):
        super().__init__(bucket, endpoint_url)
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.decoded = DecodedImages()

    def default_images(self, manufacturer_slug: str, implant_slug: str) -> list[str]:
        keys = self.keys(f"{self.prefix}{manufacturer_slug}/{implant_slug}/")
        return sorted(key[len(self.prefix) :] for key in keys if PurePosixPath(key).suffix.lower() in SAFE_EXTENSIONS)

    def read(self, path: str) -> bytes:
        try:
            return self.get(self.prefix + safe_key(path))
        except FileNotFoundError as exc:
            raise FileNotFoundError(path) from exc

    def image(self, path: str) -> ValidatedImage:
        """The picture at ``path``, decoded once however often it is asked for (``DecodedImages``)."""
        return self.decoded.get(path, lambda: self.read(path))


# --- reading and validating -----------------------------------------------------------------------


@dataclass
class CatalogRow:
    line: str  # "linha 3" (CSV) or "item 2" (JSON)
    manufacturer: dict
    name: str
    features: dict
    images: list[str]
    image_hashes: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        return f"{self.manufacturer['name']} {self.name}"


def read_records(path: Path) -> list[tuple[str, dict]]:
    """(where, record) for every row of a CSV or JSON catalogue file."""
    if path.suffix.lower() == ".json":
        data = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(data, dict):
            data = data.get("implants", [])
        if not isinstance(data, list):
            raise ValueError('o JSON deve ser uma lista de implantes (ou {"implants": [...]})')
        return [(f"item {i}", record if isinstance(record, dict) else {}) for i, record in enumerate(data, 1)]
    with path.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in REQUIRED if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"colunas obrigatórias ausentes: {', '.join(missing)}")
        # Line numbers as an editor shows them: the header is line 1.
        # Cells our export quoted against spreadsheet formulas (kernel.spreadsheet) read as written.
        return [
            (f"linha {reader.line_num}", {k: unquote(v) if isinstance(v, str) else v for k, v in record.items()})
            for record in reader
        ]


def _list(value: object) -> list[str]:
    if isinstance(value, list):
        return [str(v).strip() for v in value if str(v).strip()]
    return [part.strip() for part in str(value or "").split(";") if part.strip()]


def _numbers(value: object, column: str) -> list[Decimal]:
    """A JSON list, or a CSV cell "3.5;4.3" (a decimal comma, "3,5;4,3", is accepted too)."""
    items = [str(v) for v in value] if isinstance(value, list) else [v.replace(",", ".") for v in _list(value)]
    try:
        numbers = [Decimal(v) for v in items]
    except InvalidOperation as exc:
        raise ValueError(f"{column}: número inválido em {value!r}") from exc
    if any(not n.is_finite() or n <= 0 for n in numbers):
        raise ValueError(f"{column}: valores devem ser números positivos")
    return numbers


def _bool(value: object, column: str, default: bool) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value if value is not None else "").strip().lower()
    if text == "" and value in (None, ""):
        return default
    if text in TRUE:
        return True
    if text in FALSE:
        return False
    raise ValueError(f"{column}: use sim/não (recebido {value!r})")


def _text(record: dict, key: str) -> str:
    value = record.get(key)
    return "" if value is None else str(value).strip()


def parse_row(where: str, record: dict, source: PictureSource | None) -> tuple[CatalogRow, list[str]]:
    """One row checked as the catalogue would check it, without writing: (row, errors)."""
    errors: list[str] = []
    for key in REQUIRED:
        if not _text(record, key):
            errors.append(f"{key}: obrigatório")
    features: dict = {}
    for key in IMPLANT_DESCRIPTION_FIELDS:
        kind, default = _KINDS[key]
        try:
            if kind == "yes_no":
                features[key] = _bool(record.get(key), key, default)
            elif kind == "numbers":
                features[key] = _numbers(record.get(key), key)
            else:
                features[key] = _text(record, key) or default
        except ValueError as exc:
            errors.append(str(exc))
            if kind == "numbers":
                features[key] = []
    manufacturer = {
        "name": _text(record, "manufacturer"),
        "country": _text(record, "manufacturer_country"),
        "website": _text(record, "manufacturer_website"),
    }
    row = CatalogRow(where, manufacturer, _text(record, "name"), features, [])
    # The model's own checks (choices, lengths, decimal places), as the admin would apply them.
    candidate = Implant(name=row.name, **features)
    try:
        candidate.clean_fields(exclude=["manufacturer", *(k for k in REQUIRED if not _text(record, k))])
    except ValidationError as exc:
        errors += [f"{key}: {' '.join(messages)}" for key, messages in exc.message_dict.items()]
    try:
        Manufacturer(name=manufacturer["name"] or "x", slug="x", website=manufacturer["website"]).clean_fields(
            exclude=["name", "slug", "country"]
        )
    except ValidationError as exc:
        errors += [f"manufacturer_website: {' '.join(m)}" for m in exc.message_dict.values()]
    if source is not None and row.name and manufacturer["name"]:
        listed = _list(record.get("images"))
        try:
            row.images = listed or source.default_images(slugify(manufacturer["name"]), slugify(row.name))
        except ValueError as exc:
            errors.append(str(exc))
        for path in row.images:
            try:
                row.image_hashes.append(source.image(path).content_hash)
            except (FileNotFoundError, ValueError):
                errors.append(f"imagem não encontrada: {path}")
            except ApplicationError as exc:
                errors.append(f"imagem inválida ({path}): {exc.message}")
    return row, errors


def validate_file(
    path: Path, source: PictureSource | None, progress=None, *, names: CatalogueNames | None = None
) -> tuple[list[CatalogRow], list[tuple[str, list[str]]]]:
    """Every row, and the errors of the wrong ones with where they are. Two rows naming the same
    implant (spelled alike, ``implants.names``) are an error."""
    names = names or CatalogueNames()
    rows: list[CatalogRow] = []
    problems: list[tuple[str, list[str]]] = []
    seen: dict[tuple[str, str], str] = {}
    for where, record in read_records(path):
        row, errors = parse_row(where, record, source)
        key = (names.manufacturer_key(row.manufacturer["name"]), name_key(row.name))
        if row.name and key in seen:
            errors.append(f"implante repetido (já na {seen[key]})")
        seen.setdefault(key, where)
        if errors:
            problems.append((where, errors))
        else:
            rows.append(row)
        if progress is not None:
            progress(1)
    return rows, problems


# --- writing --------------------------------------------------------------------------------------


def _differs(implant: Implant, features: dict) -> bool:
    for key, value in features.items():
        current = getattr(implant, key)
        if key in ("diameters_mm", "lengths_mm"):
            if [Decimal(str(v)) for v in current] != [Decimal(str(v)) for v in value]:
                return True
        elif current != value:
            return True
    return False


def is_confirmed_case(content_hash: str) -> bool:
    """Whether these pixels are a confirmed case's (a patient's X-ray) in this database."""
    return confirmed_cases().filter(content_hash=content_hash).exists()


def import_rows(
    rows: list[CatalogRow],
    source: PictureSource | None,
    *,
    batch_size: int = 32,
    names: CatalogueNames | None = None,
    dry_run: bool = False,
    update: bool = True,
) -> Iterator[RowOutcome]:
    """Write each validated row whole or not at all; yields its outcome (for the progress bar).

    Manufacturers and implants are matched to ours by ``implants.names`` (spelling, aliases, near
    names); a row that only resembles some of ours is "conferir" and not written. A dry run
    yields what the real run would do, writing nothing. ``update=False``: an implant already here
    keeps its description (only the pictures it lacks are added; ``implants.seed``)."""
    names = names or CatalogueNames()
    named: dict[str, set[str]] = defaultdict(set)
    for row in rows:
        named[names.manufacturer_key(row.manufacturer["name"])].add(name_key(row.name))
    embeddings = EmbeddingBatches(batch_size)
    for row in rows:
        try:
            maker, _known = names.manufacturer(row.manufacturer["name"])
            match = names.implant(maker, row.name, named_exactly=named[name_key(maker)])
            if match.kind == CONFERIR:
                yield RowOutcome(row.line, row.label, CONFERIR, match.note(row.name, maker))
                continue
            note = match.note(row.name, maker)
            if dry_run:
                yield _planned(row, maker, match.name, note, update=update)
            else:
                yield from _write(row, source, maker, match.name, note, embeddings, update=update)
            names.remember_manufacturer(maker)
            names.remember_implant(maker, match.name)
        except ValidationError as exc:
            yield RowOutcome(row.line, row.label, SKIPPED, refusal(exc))
        except IntegrityError:
            yield RowOutcome(
                row.line,
                row.label,
                SKIPPED,
                "recusado pelo catálogo: outro registro igual foi gravado agora; rode de novo",
            )
        except ApplicationError as exc:
            yield RowOutcome(row.line, row.label, SKIPPED, f"recusado: {exc.message}")
        except FileNotFoundError as exc:
            yield RowOutcome(row.line, row.label, SKIPPED, f"imagem não encontrada: {exc}")
    embeddings.flush()


def _new_pictures(implant: Implant | None, row: CatalogRow) -> list[tuple[str, str]]:
    """(path, hash) of the row's pictures that this implant lacks; never a confirmed case's pixels
    (an old export held patients' X-rays: they are never catalogue pictures)."""
    have = set(implant.reference_images.values_list("content_hash", flat=True)) if implant is not None else set()
    new: list[tuple[str, str]] = []
    for path, content_hash in zip(row.images, row.image_hashes, strict=True):
        if content_hash in have or is_confirmed_case(content_hash):
            continue
        have.add(content_hash)
        new.append((path, content_hash))
    return new


def _planned(row: CatalogRow, maker: str, implant_name: str, note: str, *, update: bool) -> RowOutcome:
    implant = Implant.objects.filter(manufacturer__name=maker, name=implant_name).first()
    pictures = len(_new_pictures(implant, row))
    if implant is None:
        status = CREATED
    else:
        status = UPDATED if pictures or (update and _differs(implant, row.features)) else UNCHANGED
    return RowOutcome(row.line, row.label, status, note, images=pictures)


def _write(
    row: CatalogRow,
    source,
    maker: str,
    implant_name: str,
    note: str,
    embeddings: EmbeddingBatches,
    *,
    update: bool,
) -> Iterator[RowOutcome]:
    with transaction.atomic():  # one row whole: its files go with it (kernel.files)
        manufacturer, _ = services.manufacturer_get_or_create(**{**row.manufacturer, "name": maker})
        implant, created = services.implant_get_or_create(manufacturer=manufacturer, name=implant_name, **row.features)
        status = CREATED if created else UNCHANGED
        if not created and update and _differs(implant, row.features):
            for key, value in row.features.items():
                setattr(implant, key, value)
            services.implant_save(implant=implant)
            status = UPDATED
        new_ids: list[int] = []
        for path, _hash in _new_pictures(implant, row):
            reference = services.reference_image_create_decoded(
                implant=implant,
                image=source.image(path),  # type: ignore[union-attr]
                source=ReferenceSource.CATALOG,
                queue=False,
            )
            new_ids.append(reference.pk)
        if new_ids and status == UNCHANGED:
            status = UPDATED
    embeddings.add(new_ids)
    yield RowOutcome(row.line, row.label, status, note, images=len(new_ids))


# --- export ---------------------------------------------------------------------------------------


def _exported(key: str, value: object) -> object:
    """A description field as JSON holds it: number lists as exact decimal strings ("3.75")."""
    if _KINDS[key][0] == "numbers":
        return [format(Decimal(str(v)).normalize(), "f") for v in value]  # type: ignore[union-attr]
    return value


def _cell(key: str, value: object) -> object:
    """A JSON record's value as a CSV cell: lists joined with ";", yes/no in words."""
    if key == "images" or _KINDS.get(key, ("text",))[0] == "numbers":
        return ";".join(value)  # type: ignore[arg-type]
    if _KINDS.get(key, ("text",))[0] == "yes_no":
        return "sim" if value else "não"
    return value


def export_catalog(path: Path, images_dir: Path | None) -> int:
    """Write every implant in the import format; with ``images_dir``, its catalogue pictures too
    (``<manufacturer-slug>/<implant-slug>/<n>.<ext>``), listed in the ``images`` column.

    Only catalogue pictures (``implants.selectors.catalog_images``): a confirmed case is a
    patient's X-ray, for matching only; exported as a file it would leave the system, and imported
    back it would become a catalogue picture shown to every dentist. The CSV's text cells are
    quoted against spreadsheet formulas (``kernel.spreadsheet``; the import unquotes them)."""
    records: list[dict] = []
    pictures = Prefetch("reference_images", queryset=catalog_images(), to_attr="catalogue_pictures")
    implants = Implant.objects.select_related("manufacturer").prefetch_related(pictures)
    for implant in implants.order_by("manufacturer__name", "name"):
        images: list[str] = []
        if images_dir is not None:
            for n, reference in enumerate(implant.catalogue_pictures, 1):
                if not reference.image:
                    continue
                relative = (
                    f"{implant.manufacturer.slug}/{slugify(implant.name)}/{n}"
                    f"{PurePosixPath(reference.image.name).suffix or '.png'}"
                )
                target = images_dir / relative
                target.parent.mkdir(parents=True, exist_ok=True)
                with reference.image.open("rb") as fh:
                    target.write_bytes(fh.read())
                images.append(relative)
        records.append(
            {
                "manufacturer": implant.manufacturer.name,
                "manufacturer_country": implant.manufacturer.country,
                "manufacturer_website": implant.manufacturer.website,
                "name": implant.name,
                **{key: _exported(key, getattr(implant, key)) for key in IMPLANT_DESCRIPTION_FIELDS},
                "images": images,
            }
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() == ".json":
        path.write_text(json.dumps(records, ensure_ascii=False, indent=2), encoding="utf-8")
    else:
        with path.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=COLUMNS)
            writer.writeheader()
            for record in records:
                row = {key: _cell(key, value) for key, value in record.items()}
                writer.writerow({key: safe_cell(value) for key, value in row.items()})
    return len(records)
