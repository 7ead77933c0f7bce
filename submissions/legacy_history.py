"""The old system's uploads as unlabelled past submissions, for staff to review later.

The old bucket kept every X-ray it received: ``clientes/{email_id}/`` (Jotform), ``uploads/``
(direct uploads) and ``raiox-imagens/`` (older images). Each object becomes one Submission through
the normal intake service (validated, stored under our keys, queued for matching) with no dentist,
no e-mail and no patient: the old folder name may hold the e-mail, so it is never copied; the
object key is kept only as a hash (the external id), which makes a re-run create nothing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import PurePosixPath

from kernel.errors import ApplicationError
from kernel.storage_keys import SAFE_EXTENSIONS
from submissions.fields import IntakeRecord
from submissions.models import Source, Submission
from submissions.services.intake import submission_create

PREFIXES = {"clientes/": Source.JOTFORM, "uploads/": Source.UPLOAD, "raiox-imagens/": Source.UPLOAD}


@dataclass(frozen=True)
class HistoryOutcome:
    ref: str  # the key's hash, never the key (it may contain an e-mail)
    status: str  # created | unchanged | skipped
    reason: str = ""


def external_id_for(key: str) -> str:
    return "legado-" + hashlib.sha256(key.encode()).hexdigest()[:32]


def history_keys(client, bucket: str) -> list[tuple[str, str]]:
    """(key, source) of every image object under the old upload folders."""
    found = []
    for prefix, source in PREFIXES.items():
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                if PurePosixPath(obj["Key"]).suffix.lower() in SAFE_EXTENSIONS:
                    found.append((obj["Key"], source))
    return found


def import_history(client, bucket: str, keys: list[tuple[str, str]], *, dry_run: bool) -> Iterator[HistoryOutcome]:
    for key, source in keys:
        external_id = external_id_for(key)
        ref = external_id[7:19]
        if Submission.objects.filter(source=source, external_id=external_id).exists():
            yield HistoryOutcome(ref, "unchanged")
            continue
        if dry_run:
            yield HistoryOutcome(ref, "created (simulação)")
            continue
        data = client.get_object(Bucket=bucket, Key=key)["Body"].read()
        try:
            _, created = submission_create(
                intake=IntakeRecord(
                    source=source,
                    image_bytes=data,
                    filename="imagem" + PurePosixPath(key).suffix,
                    external_id=external_id,
                )
            )
        except ApplicationError as exc:
            yield HistoryOutcome(ref, "skipped", exc.message)
            continue
        yield HistoryOutcome(ref, "created" if created else "unchanged")
