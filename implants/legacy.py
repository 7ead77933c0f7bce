"""Import of the old Raiox AI: its ``implants`` table and the ``referencia/`` images of its bucket.

The old table is ``implants (id, name, manufacturer, type, image_url, embedding vector(512))``.
Every row becomes (or finds again, by ``Implant.legacy_id``) one implant with one reference image
of source "imported". A row is imported whole or not at all: its image is fetched and validated
before anything is written, and a failure after that rolls back the row and deletes its file.

Images are read only from the bucket the operator names (S3 API, the usual AWS variables) or from a
local folder: an ``image_url`` that points anywhere else is refused, never fetched.
"""

from __future__ import annotations

import csv
import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urlparse

from django.db import IntegrityError
from django.utils.text import slugify

from implants import services
from implants.bulk import CREATED, LINKED, SKIPPED, UNCHANGED, RowOutcome, RowSkipped, all_or_nothing
from implants.catalog import CATALOG
from implants.models import EMBEDDING_DIMENSIONS, Implant, ReferenceSource
from kernel.errors import ApplicationError
from kernel.imaging import decode_image

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


def _safe_key(key: str) -> str:
    parts = PurePosixPath(key).parts
    if not key or ".." in parts or key.startswith("/"):
        raise RowSkipped("caminho da imagem inválido")
    return key


class BucketImages:
    """The old bucket through the S3 API (DigitalOcean Spaces or any S3). Credentials come from the
    usual AWS variables (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION)."""

    def __init__(self, bucket: str, endpoint_url: str | None):
        import boto3

        self.bucket = bucket
        self.endpoint_host = urlparse(endpoint_url).hostname if endpoint_url else None
        self.client = boto3.client("s3", endpoint_url=endpoint_url or None)

    def key_for(self, url: str) -> str:
        parsed = urlparse(url)
        path = unquote(parsed.path).lstrip("/")
        if parsed.scheme == "s3":
            if parsed.netloc != self.bucket:
                raise RowSkipped(f"imagem fora do bucket {self.bucket}")
            return _safe_key(path)
        if parsed.scheme in ("http", "https"):
            host = (parsed.hostname or "").lower()
            # Virtual-hosted style and the CDN name: <bucket>.<region>.digitaloceanspaces.com
            if host.startswith(f"{self.bucket.lower()}."):
                return _safe_key(path)
            # Path style on the endpoint: <endpoint>/<bucket>/<key>
            if self.endpoint_host and host == self.endpoint_host.lower() and path.startswith(f"{self.bucket}/"):
                return _safe_key(path[len(self.bucket) + 1 :])
            raise RowSkipped(f"imagem fora do bucket {self.bucket} ({host or 'sem host'})")
        if not parsed.scheme and not parsed.netloc:
            return _safe_key(path)
        raise RowSkipped("endereço da imagem não reconhecido")

    def read(self, url: str) -> bytes:
        from botocore.exceptions import ClientError

        key = self.key_for(url)
        try:
            return self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in ("NoSuchKey", "404", "NotFound"):
                raise RowSkipped(f"imagem não encontrada no bucket (404): {key}") from exc
            raise


class FolderImages:
    """Images copied from the bucket to a folder: ``image_url``'s path (``referencia/x.png``), or
    only its file name, under the folder."""

    def __init__(self, folder: Path):
        self.folder = folder.resolve()

    def read(self, url: str) -> bytes:
        path = _safe_key(unquote(urlparse(url).path).lstrip("/"))
        for candidate in (self.folder / path, self.folder / PurePosixPath(path).name):
            resolved = candidate.resolve()
            if resolved.is_relative_to(self.folder) and resolved.is_file():
                return resolved.read_bytes()
        raise RowSkipped(f"imagem não encontrada na pasta (404): {path}")


# --- the old free-text type -> our feature fields --------------------------------------------------


def _plain(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()


_KNOWN = {
    (_plain(manufacturer), _plain(item["name"])): item["features"]
    for manufacturer, items in CATALOG.items()
    for item in items
}

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
    known = _KNOWN.get((_plain(manufacturer), _plain(name)))
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


def _validated(read: Callable[[str], bytes], row: LegacyRow) -> bytes:
    if not row.image_url:
        raise RowSkipped("sem image_url (sem imagem)")
    data = read(row.image_url)
    try:
        decode_image(data, field="image")
    except ApplicationError as exc:
        raise RowSkipped(f"não é uma imagem válida: {exc.message}") from exc
    return data


def import_legacy_rows(
    rows: Iterable[LegacyRow],
    read: Callable[[str], bytes],
    *,
    legacy_model: str = "",
    dry_run: bool = False,
    batch_size: int = 32,
) -> Iterator[RowOutcome]:
    """Import each row (yielding its outcome as it goes, for the progress bar)."""
    rows = list(rows)
    # Duplicate names in the old table: the first row wins, the others are reported.
    first_of: dict[tuple[str, str], int] = {}
    for row in rows:
        first_of.setdefault((row.manufacturer.lower(), row.name.lower()), row.legacy_id)
    new_refs: list[int] = []
    for row in rows:
        key, label = f"id {row.legacy_id}", f"{row.manufacturer} {row.name}".strip()
        try:
            if not row.name or not row.manufacturer:
                raise RowSkipped("sem nome ou sem fabricante")
            if first_of[(row.manufacturer.lower(), row.name.lower())] != row.legacy_id:
                first = first_of[(row.manufacturer.lower(), row.name.lower())]
                raise RowSkipped(f"nome duplicado (igual ao id {first})")
            existing = Implant.objects.filter(legacy_id=row.legacy_id).first()
            if existing is not None and existing.reference_images.filter(source=ReferenceSource.IMPORTED).exists():
                yield RowOutcome(key, label, UNCHANGED)
                continue
            data = _validated(read, row)
            if dry_run:
                yield RowOutcome(key, label, f"{CREATED} (simulação)")
                continue
            status, reference_id = _write_row(row, data, existing, legacy_model)
            new_refs.append(reference_id)
            yield RowOutcome(key, label, status, images=1)
        except RowSkipped as exc:
            yield RowOutcome(key, label, SKIPPED, str(exc))
        except (IntegrityError, ApplicationError) as exc:
            yield RowOutcome(key, label, SKIPPED, f"recusado pelo catálogo: {exc}")
        while len(new_refs) >= batch_size:  # full batches now, the rest with the next rows
            services.reference_images_queue_embedding(reference_ids=new_refs[:batch_size], batch_size=batch_size)
            new_refs = new_refs[batch_size:]
    if new_refs:
        services.reference_images_queue_embedding(reference_ids=new_refs, batch_size=batch_size)


def _write_row(row: LegacyRow, data: bytes, existing: Implant | None, legacy_model: str) -> tuple[str, int]:
    from django.core.exceptions import ValidationError

    features, _certain = features_for(row.manufacturer, row.name, row.type)
    try:
        with all_or_nothing() as stored:
            status = CREATED
            implant = existing
            if implant is None:
                manufacturer, _ = services.manufacturer_get_or_create(name=row.manufacturer)
                implant = Implant.objects.filter(manufacturer=manufacturer, name=row.name).first()
                if implant is not None:  # already here (e.g. seed_catalog): remember the old id
                    if implant.legacy_id is not None:
                        raise RowSkipped(f"nome duplicado (implante já importado do id {implant.legacy_id})")
                    services.implant_link_legacy(implant=implant, legacy_id=row.legacy_id, legacy_type=row.type)
                    status = LINKED
                else:
                    implant, _ = services.implant_get_or_create(
                        manufacturer=manufacturer,
                        name=row.name,
                        legacy_id=row.legacy_id,
                        legacy_type=row.type,
                        **features,
                    )
            reference = services.reference_image_create(
                implant=implant,
                image_bytes=data,
                filename=f"{slugify(row.name) or 'imagem'}.png",
                source=ReferenceSource.IMPORTED,
                queue=False,
            )
            stored.append(reference.image.name)
            if row.embedding is not None and legacy_model:
                # Kept under the model id the operator vouches for: the search compares it only
                # with queries of that model, and the worker replaces it when another one runs.
                services.reference_image_set_embedding(
                    reference_id=reference.pk, embedding=row.embedding, model_id=legacy_model
                )
            return status, reference.pk
    except ValidationError as exc:
        raise RowSkipped(f"recusado pelo catálogo: {'; '.join(exc.messages)}") from exc
