"""The kit shared by the bulk imports (old system: ``implants.legacy``; catalogue files:
``implants.catalog_io``): where the images are read from (a folder, a bucket), each image decoded
once, embeddings queued in full batches, the per-row report and refusals in an operator's words.
Every write still goes through ``implants.services``."""

from __future__ import annotations

import tempfile
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath

from django.core.exceptions import ValidationError

from implants import services
from kernel.imaging import ValidatedImage, decode_image

CREATED = "created"
UPDATED = "updated"
LINKED = "linked"
UNCHANGED = "unchanged"
CONFERIR = "conferir"  # resembles one of ours but not surely: nothing written (implants.names)
SKIPPED = "skipped"
STATUSES = (CREATED, UPDATED, LINKED, UNCHANGED, CONFERIR, SKIPPED)

# What the operator can do about a refused field, by the model's error code.
_FIELD_LABELS = {"name": "nome", "slug": "nome (slug)", "manufacturer": "fabricante", "website": "site"}


class RowSkipped(Exception):
    """A row that cannot be imported; the message is the reason shown in the report."""


@dataclass
class RowOutcome:
    key: str  # what identifies the row to the operator: line number, legacy id
    label: str  # manufacturer and name
    status: str
    reason: str = ""
    images: int = 0

    def line_text(self) -> str:
        return f"{self.key}: {self.label} — {self.status}" + (f" ({self.reason})" if self.reason else "")


@dataclass
class ImportReport:
    outcomes: list[RowOutcome] = field(default_factory=list)
    queued_batches: int = 0

    def add(self, outcome: RowOutcome) -> None:
        self.outcomes.append(outcome)

    def counts(self) -> dict[str, int]:
        counted = Counter(o.status for o in self.outcomes)
        return {status: counted.get(status, 0) for status in STATUSES}

    def lines(self, *, dry_run: bool = False) -> list[str]:
        """One line per row, then the summary. In a dry run the statuses are what the real run
        would do (nothing was written)."""
        out = [f"  {o.line_text()}" for o in self.outcomes]
        counts = self.counts()
        head = "Resultado da simulação (o que seria feito; nada foi gravado): " if dry_run else "Resultado: "
        out.append(
            head
            + ", ".join(f"{n} {status}" for status, n in counts.items() if n or status in (CREATED, SKIPPED))
            + f"; {sum(o.images for o in self.outcomes)} imagens novas"
        )
        return out


def refusal(exc: ValidationError) -> str:
    """A catalogue refusal in words an operator can act on (never the model's bare message)."""
    parts = []
    by_field = exc.error_dict if hasattr(exc, "error_dict") else {"": exc.error_list}
    for field_name, errors in by_field.items():
        label = _FIELD_LABELS.get(field_name, field_name or "linha")
        for error in errors:
            code = error.code or ""
            if code == "unique":
                parts.append(
                    f"já existe outro com o mesmo {label} mas escrito de outro jeito: "
                    'use --alias "Nome antigo=Nome nosso" para dizer que são o mesmo'
                )
            elif code == "max_length":
                parts.append(
                    f"{label} longo demais (máximo {error.params['limit_value']} caracteres): encurte-o na origem"
                )
            elif code == "control_characters":
                parts.append(f"{label} com caracteres de controle invisíveis: corrija o texto na origem")
            else:
                message = error.message % error.params if error.params else error.message
                parts.append(f"{label}: {message} — corrija a linha na origem e rode de novo")
    return "recusado pelo catálogo: " + "; ".join(parts)


def bucket_problem(bucket: str, exc: Exception) -> str:
    """Why a bucket cannot be read, in one line with what to do (the commands' CommandError)."""
    code = getattr(exc, "response", {}).get("Error", {}).get("Code", "") if hasattr(exc, "response") else ""
    if code in ("NoSuchBucket", "404", "NotFound"):
        why = "não existe nesse endpoint"
    elif code in ("AccessDenied", "403", "InvalidAccessKeyId", "SignatureDoesNotMatch"):
        why = "acesso negado"
    elif type(exc).__name__ in ("NoCredentialsError", "PartialCredentialsError"):
        why = "sem credenciais"
    else:
        why = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}".rstrip(": ")
    return (
        f"Não foi possível ler o bucket {bucket} ({why}): confira o nome do bucket, --endpoint-url e as "
        "variáveis AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_DEFAULT_REGION."
    )


# --- where the images are -------------------------------------------------------------------------


class UnsafeKey(ValueError):
    """An image path that could leave its folder or bucket prefix."""


def safe_key(key: str) -> str:
    """A relative path inside a folder or a bucket prefix: never absolute, never climbing out."""
    if not key or key.startswith("/") or ".." in PurePosixPath(key).parts:
        raise UnsafeKey(f"caminho de imagem inválido: {key!r}")
    return key


class FolderFiles:
    """Images in a local folder (copied from a bucket, or unpacked next to a catalogue file)."""

    def __init__(self, folder: Path):
        self.folder = folder.resolve()

    def find(self, relative: str) -> Path | None:
        """The file at ``relative`` (already ``safe_key``) inside the folder, or None: missing, or a
        link that leads out of it."""
        resolved = (self.folder / relative).resolve()
        return resolved if resolved.is_relative_to(self.folder) and resolved.is_file() else None


class BucketFiles:
    """Images in a bucket through the S3 API (DigitalOcean Spaces or any S3). Credentials come from
    the usual AWS variables (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION)."""

    def __init__(self, bucket: str, endpoint_url: str | None):
        import boto3

        self.bucket = bucket
        self.client = boto3.client("s3", endpoint_url=endpoint_url or None)

    def check(self) -> None:
        """Raises (botocore) when the bucket cannot be read: before any row is read."""
        self.client.head_bucket(Bucket=self.bucket)

    def keys(self, prefix: str) -> list[str]:
        found: list[str] = []
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
            found.extend(obj["Key"] for obj in page.get("Contents", []))
        return found

    def get(self, key: str) -> bytes:
        """The object's bytes; ``FileNotFoundError`` when there is none under ``key``."""
        from botocore.exceptions import ClientError

        try:
            return self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code", "") in ("NoSuchKey", "404", "NotFound"):
                raise FileNotFoundError(key) from exc
            raise


class DecodedImages:
    """Each image of an import decoded once, although the import reads it twice: when the file is
    checked (is it an image, which pixels: ``content_hash``) and when its row is written.

    The decoded PNGs wait in one anonymous temporary file, not in memory: a catalogue's pictures
    are checked all before any is written, and thousands of them would not fit."""

    def __init__(self) -> None:
        self._spill = None
        self._where: dict[str, tuple[int, int, ValidatedImage]] = {}

    def get(self, key: str, read: Callable[[], bytes]) -> ValidatedImage:
        """The image under ``key``, decoded the first time (``read`` gives its bytes; it and
        ``decode_image`` raise as they do), from the spill file afterwards."""
        if key in self._where:
            offset, length, shape = self._where[key]
            self._spill.seek(offset)  # type: ignore[union-attr]
            return replace(shape, content=self._spill.read(length))  # type: ignore[union-attr]
        image = decode_image(read(), field="image")
        if self._spill is None:
            self._spill = tempfile.TemporaryFile()
        offset = self._spill.seek(0, 2)
        self._spill.write(image.content)
        self._where[key] = (offset, len(image.content), replace(image, content=b""))
        return image


class EmbeddingBatches:
    """The new reference images' embeddings, queued while the import runs: each full batch at once
    (the worker embeds it in one forward pass), the rest at the end (``flush``)."""

    def __init__(self, batch_size: int):
        self.batch_size = batch_size
        self.pending: list[int] = []

    def add(self, reference_ids: Iterable[int]) -> None:
        self.pending += reference_ids
        while len(self.pending) >= self.batch_size:
            services.reference_images_queue_embedding(
                reference_ids=self.pending[: self.batch_size], batch_size=self.batch_size
            )
            self.pending = self.pending[self.batch_size :]

    def flush(self) -> None:
        if self.pending:
            services.reference_images_queue_embedding(reference_ids=self.pending, batch_size=self.batch_size)
            self.pending = []
