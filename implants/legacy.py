"""Import of the old Raiox AI: its ``implants`` table and the ``referencia/`` images of its bucket.

The old table is ``implants (id, name, manufacturer, type, image_url, embedding vector(512))``.
Every row becomes (or finds again, by ``Implant.legacy_id``) one implant with one reference image
of source "imported" (a catalogue picture: shown like any, ``implants.selectors``). Its
manufacturer and name are matched to ours first (``implants.names``: spelling, aliases, near
names): a row that is one of our implants is *linked* to it, one that only resembles some is
listed as "conferir" and left for the operator. A row is imported whole or not at all: its image
is fetched and validated before anything is written, and a failure after that rolls back the row
and deletes its file.

Images are read only from the bucket the operator names (S3 API, the usual AWS variables) or from a
local folder: an ``image_url`` that points anywhere else is refused, never fetched.
"""

from __future__ import annotations

import csv
import re
import unicodedata
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urlparse

from django.db import IntegrityError, transaction

from implants import services
from implants.bulk import (
    CONFERIR,
    CREATED,
    LINKED,
    SKIPPED,
    UNCHANGED,
    BucketFiles,
    EmbeddingBatches,
    FolderFiles,
    RowOutcome,
    RowSkipped,
    UnsafeKey,
    refusal,
    safe_key,
)
from implants.models import EMBEDDING_DIMENSIONS, Implant, ReferenceSource
from implants.names import Aliases, CatalogueNames, name_key
from implants.seed import seed_features
from kernel.errors import ApplicationError
from kernel.imaging import ValidatedImage, decode_image
from kernel.text import has_control

LEGACY_QUERY = "SELECT id, name, manufacturer, type, image_url, embedding::text FROM implants ORDER BY id"


@dataclass(frozen=True)
class LegacyRow:
    legacy_id: int
    name: str
    manufacturer: str
    type: str
    image_url: str
    embedding: list[float] | None


def parse_vector(text: str | None) -> list[float] | None:
    """pgvector's text form ``[0.1,0.2,...]`` (also what a CSV export holds)."""
    if not text or not text.strip():
        return None
    values = [float(v) for v in text.strip().strip("[]").split(",") if v.strip()]
    if len(values) != EMBEDDING_DIMENSIONS:
        raise ValueError(f"embedding com {len(values)} dimensões (esperado {EMBEDDING_DIMENSIONS})")
    return values


def _row(legacy_id: object, name: object, manufacturer: object, type_: object, url: object, emb: object) -> LegacyRow:
    return LegacyRow(
        legacy_id=int(legacy_id),  # type: ignore[arg-type]
        name=str(name or "").strip(),
        manufacturer=str(manufacturer or "").strip(),
        type=str(type_ or "").strip(),
        image_url=str(url or "").strip(),
        embedding=parse_vector(str(emb)) if emb else None,
    )


def rows_from_database(url: str) -> list[LegacyRow]:
    """Read the old table. The session is read-only: the old database is never written."""
    import psycopg

    with psycopg.connect(url, options="-c default_transaction_read_only=on", connect_timeout=10) as conn:
        conn.read_only = True
        with conn.cursor() as cursor:
            cursor.execute(LEGACY_QUERY)
            return [_row(*values) for values in cursor.fetchall()]


def rows_from_csv(path: Path) -> list[LegacyRow]:
    """A CSV export of the old table (``\\copy implants TO 'x.csv' CSV HEADER``)."""
    with path.open(newline="", encoding="utf-8-sig") as fh:
        return [
            _row(r["id"], r.get("name"), r.get("manufacturer"), r.get("type"), r.get("image_url"), r.get("embedding"))
            for r in csv.DictReader(fh)
        ]


# --- where the images are -------------------------------------------------------------------------


def _key(path: str) -> str:
    try:
        return safe_key(path)
    except UnsafeKey as exc:
        raise RowSkipped("caminho da imagem inválido") from exc


class BucketImages(BucketFiles):
    """The old bucket, where ``image_url`` points (an ``s3://`` address, the bucket's or its CDN's
    https name, or a path on the endpoint)."""

    def __init__(self, bucket: str, endpoint_url: str | None):
        super().__init__(bucket, endpoint_url)
        self.endpoint_host = urlparse(endpoint_url).hostname if endpoint_url else None

    def key_for(self, url: str) -> str:
        parsed = urlparse(url)
        path = unquote(parsed.path).lstrip("/")
        if parsed.scheme == "s3":
            if parsed.netloc != self.bucket:
                raise RowSkipped(f"imagem fora do bucket {self.bucket}")
            return _key(path)
        if parsed.scheme in ("http", "https"):
            host = (parsed.hostname or "").lower()
            # Virtual-hosted style and the CDN name: <bucket>.<region>.digitaloceanspaces.com
            if host.startswith(f"{self.bucket.lower()}."):
                return _key(path)
            # Path style on the endpoint: <endpoint>/<bucket>/<key>
            if self.endpoint_host and host == self.endpoint_host.lower() and path.startswith(f"{self.bucket}/"):
                return _key(path[len(self.bucket) + 1 :])
            raise RowSkipped(f"imagem fora do bucket {self.bucket} ({host or 'sem host'})")
        if not parsed.scheme and not parsed.netloc:
            return _key(path)
        raise RowSkipped("endereço da imagem não reconhecido")

    def read(self, url: str) -> bytes:
        key = self.key_for(url)
        try:
            return self.get(key)
        except FileNotFoundError as exc:
            raise RowSkipped(f"imagem não encontrada no bucket (404): {key}") from exc


class FolderImages(FolderFiles):
    """Images copied from the bucket to a folder: ``image_url``'s path (``referencia/x.png``), or
    only its file name, under the folder."""

    def read(self, url: str) -> bytes:
        path = _key(unquote(urlparse(url).path).lstrip("/"))
        for candidate in (path, PurePosixPath(path).name):
            found = self.find(candidate)
            if found is not None:
                return found.read_bytes()
        raise RowSkipped(f"imagem não encontrada na pasta (404): {path}")


# --- the old free-text type -> our feature fields --------------------------------------------------


def _plain(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()


@cache
def _known() -> dict[tuple[str, str], dict]:
    """The seed catalogue's lines by name key, with their description as the import reads it."""
    return {(name_key(maker), name_key(name)): features for (maker, name), features in seed_features().items()}


_CONNECTION = [
    (r"morse|cone|\bcm\b|\bgm\b|conica", "morse_taper"),
    (r"hex\w* ext|externa?\b|\bhe\b|\bex\b|external", "external_hex"),
    (r"hex\w* int|interna?\b|\bhi\b|internal", "internal_hex"),
]
_BODY = [(r"conic|tapered|afilad", "tapered"), (r"cilindr|parallel|paralel|reto", "parallel")]
_THREAD = [(r"buttress|trapez", "buttress"), (r"quadrad|square", "square")]


def _first(patterns: list[tuple[str, str]], text: str, default: str) -> str:
    for pattern, value in patterns:
        if re.search(pattern, text):
            return value
    return default


def features_for(manufacturer: str, name: str, legacy_type: str) -> tuple[dict, bool]:
    """Our feature fields for an old row, and whether they are certain. A line we know (the
    reference catalogue) gets its real features; otherwise they are read from ``type`` and name
    where a word says so, with neutral defaults flagged for review in ``notes``."""
    known = _known().get((name_key(manufacturer), name_key(name)))
    if known is not None:
        return dict(known), True
    text = _plain(f"{legacy_type} {name}")
    features = {
        "connection": _first(_CONNECTION, text, "other"),
        "body_shape": _first(_BODY, text, "tapered"),
        "level": "tissue" if re.search(r"tissue|tecidual|\btl\b", text) else "bone",
        "thread_shape": _first(_THREAD, text, "v"),
        "notes": f"Importado do sistema antigo (tipo: {legacy_type or '—'}). "
        "Características deduzidas do tipo e do nome: confira.",
    }
    return features, False


# --- the import -----------------------------------------------------------------------------------


def _decoded(read: Callable[[str], bytes], row: LegacyRow) -> ValidatedImage:
    """The row's picture, decoded once: to refuse a file that is not an image before anything is
    written, and then stored as it is (``reference_image_create_decoded``)."""
    if not row.image_url:
        raise RowSkipped("sem image_url (sem imagem)")
    data = read(row.image_url)
    try:
        return decode_image(data, field="image")
    except ApplicationError as exc:
        raise RowSkipped(f"não é uma imagem válida: {exc.message}") from exc


def import_legacy_rows(
    rows: Iterable[LegacyRow],
    read: Callable[[str], bytes],
    *,
    legacy_model: str = "",
    dry_run: bool = False,
    batch_size: int = 32,
    aliases: Aliases | None = None,
) -> Iterator[RowOutcome]:
    """Import each row (yielding its outcome as it goes, for the progress bar). Names are matched
    to ours by ``implants.names``; a dry run decides every row as the real run would (its outcomes
    are what would happen) and writes nothing."""
    rows = list(rows)
    names = CatalogueNames(aliases)

    def row_key(row: LegacyRow) -> tuple[str, str]:
        return names.manufacturer_key(row.manufacturer), name_key(row.name)

    # Duplicate names in the old table (spelled alike): the first row wins, the others are reported.
    first_of: dict[tuple[str, str], int] = {}
    named: dict[str, set[str]] = defaultdict(set)
    for row in rows:
        if row.name and row.manufacturer:
            first_of.setdefault(row_key(row), row.legacy_id)
            named[row_key(row)[0]].add(row_key(row)[1])
    claimed: dict[tuple[str, str], int] = {}  # our implant (maker key, name key) -> the old row that took it
    embeddings = EmbeddingBatches(batch_size)
    for row in rows:
        key, label = f"id {row.legacy_id}", f"{row.manufacturer} {row.name}".strip()
        try:
            if not row.name or not row.manufacturer:
                raise RowSkipped("sem nome ou sem fabricante: preencha-os na tabela antiga")
            if has_control(row.name) or has_control(row.manufacturer):
                raise RowSkipped("nome com caracteres de controle invisíveis: corrija-o na tabela antiga")
            if first_of[row_key(row)] != row.legacy_id:
                raise RowSkipped(f"nome duplicado (igual ao id {first_of[row_key(row)]})")
            existing = Implant.objects.filter(legacy_id=row.legacy_id).select_related("manufacturer").first()
            if existing is not None and existing.reference_images.filter(source=ReferenceSource.IMPORTED).exists():
                yield RowOutcome(key, label, UNCHANGED)
                continue
            notes: list[str] = []
            if existing is not None:
                maker, implant_name, status = existing.manufacturer.name, existing.name, CREATED
            else:
                maker, _known = names.manufacturer(row.manufacturer)
                if name_key(maker) != name_key(row.manufacturer):
                    notes.append(f"fabricante «{row.manufacturer}» = «{maker}»")
                match = names.implant(maker, row.name, named_exactly=named[name_key(maker)])
                if match.kind == CONFERIR:
                    yield RowOutcome(key, label, CONFERIR, match.note(row.name, maker))
                    continue
                implant_name = match.name
                if match.note(row.name, maker):
                    notes.append(match.note(row.name, maker))
                ours = Implant.objects.filter(manufacturer__name=maker, name=implant_name).first()
                if ours is not None and ours.legacy_id is not None:
                    raise RowSkipped(f"nome duplicado (implante já importado do id {ours.legacy_id})")
                status = LINKED if ours is not None else CREATED
            claim = (name_key(maker), name_key(implant_name))
            if claim in claimed:
                raise RowSkipped(f"nome duplicado (o mesmo implante do id {claimed[claim]})")
            image = _decoded(read, row)
            if not dry_run:
                reference_id = _write_row(row, image, existing, legacy_model, maker=maker, implant_name=implant_name)
                embeddings.add([reference_id])
            claimed[claim] = row.legacy_id
            names.remember_manufacturer(maker)
            names.remember_implant(maker, implant_name)
            yield RowOutcome(key, label, status, "; ".join(notes), images=0 if dry_run else 1)
        except RowSkipped as exc:
            yield RowOutcome(key, label, SKIPPED, str(exc))
        except IntegrityError:
            yield RowOutcome(
                key,
                label,
                SKIPPED,
                "recusado pelo catálogo: outro registro com o mesmo nome foi gravado agora; rode de novo",
            )
        except ApplicationError as exc:
            yield RowOutcome(key, label, SKIPPED, f"recusado: {exc.message}")
    embeddings.flush()


def _write_row(
    row: LegacyRow, image: ValidatedImage, existing: Implant | None, legacy_model: str, *, maker: str, implant_name: str
) -> int:
    """Write one row whole (manufacturer, implant or its link, picture, old embedding): the new
    reference image's id."""
    from django.core.exceptions import ValidationError

    try:
        with transaction.atomic():  # one row whole: its files go with it (kernel.files)
            implant = existing
            if implant is None:
                manufacturer, _ = services.manufacturer_get_or_create(name=maker)
                implant = Implant.objects.filter(manufacturer=manufacturer, name=implant_name).first()
                if implant is not None:  # already here (e.g. seed_catalog): remember the old id
                    services.implant_link_legacy(implant=implant, legacy_id=row.legacy_id, legacy_type=row.type)
                else:
                    features, _certain = features_for(maker, implant_name, row.type)
                    implant, _ = services.implant_get_or_create(
                        manufacturer=manufacturer,
                        name=implant_name,
                        legacy_id=row.legacy_id,
                        legacy_type=row.type,
                        **features,
                    )
            reference = services.reference_image_create_decoded(
                implant=implant, image=image, source=ReferenceSource.IMPORTED, queue=False
            )
            if row.embedding is not None and legacy_model:
                # Kept under the model id the operator vouches for: the search compares it only
                # with queries of that model, and the worker replaces it when another one runs.
                services.reference_image_set_embedding(
                    reference_id=reference.pk, embedding=row.embedding, model_id=legacy_model
                )
            return reference.pk
    except ValidationError as exc:
        raise RowSkipped(refusal(exc)) from exc
