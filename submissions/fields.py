"""The value rules of intake, below the services: what a name, an e-mail, a patient, a tooth, a
file name and a file are allowed to be, whichever route they arrive by, and the record every route
turns its request into (``IntakeRecord``) and the candidates the worker records (``MatchCandidate``).

Every adapter (``submissions.intake``: Jotform, the old plain form, the webhook, the upload page,
``/upload``, ``/api/match/``, crop & re-match) maps its request to the spec's names — the model's
field names (``dentist_name``, ``dentist_email``, ``patient``, ``tooth``, ``external_id``) and
``file`` — and calls ``intake_record``. Errors are ``ApplicationError`` with a Portuguese message
that never names a wire field, so that the same bad value gets the same message and code on every
route; the adapter then renames ``field`` back to what its client sent
(``submissions.intake.fields.client_names``). The services apply the same rules (a review's note is
``text``), which is why they live here and not in the adapter layer.

Decisions taken here, once:
- text with control or bidirectional-override characters is *refused*, not silently cleaned: the
  sender learns the value was not what they meant, and nothing invisible reaches the e-mail or
  the admin (the rule is ``kernel.text``'s, shared with the catalogue's names);
- a value longer than the model's column is refused, never cut;
- the sender's file name is only *sanitised* (directories, control characters dropped): it is
  shown to staff and never reaches a storage key, so a hostile name is harmless and no X-ray is
  refused over what the sender's computer called it.
"""

from __future__ import annotations

import posixpath
import unicodedata
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

import idna
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from kernel.errors import ApplicationError
from kernel.imaging import file_too_large
from kernel.text import has_control, plain, without_controls
from submissions.messages import SEND_THE_IMAGE
from submissions.models import Source, Submission
from submissions.validators import FDI_TOOTH_MESSAGE, is_fdi_tooth


@dataclass(frozen=True)
class IntakeRecord:
    """What every intake adapter turns its request into, through ``intake_record``: values here are
    already checked and cleaned (``submissions.services.submission_create`` stores it)."""

    source: str
    dentist_name: str = ""
    dentist_email: str = ""
    patient: str = ""
    tooth: str = ""
    image_bytes: bytes | None = None
    filename: str = ""
    # When the sender gave only a URL (Jotform keeps uploads on its servers), the worker fetches it.
    remote_image_url: str = ""
    external_id: str = ""
    parent_id: int | None = None
    crop_box: dict | None = None
    # The API user sending it (``POST /api/match/``) or the film's owner for its regions.
    owner_id: int | None = None


@dataclass(frozen=True)
class MatchCandidate:
    """One ranked candidate of the worker's answer (``submissions.services.submission_record_result``)."""

    implant_id: int
    reference_image_id: int | None
    similarity: float
    # From the active calibration of the model that answered (None / "": none yet).
    probability: float | None = None
    band: str = ""


def allowed_hosts_for(source: str) -> list[str]:
    """Where a source's images may be fetched from (checked at intake and again before download)."""
    if source == Source.JOTFORM:
        return list(settings.JOTFORM_FILE_HOSTS)
    if source == Source.WEBHOOK:
        return list(settings.RAIOX_WEBHOOK_FILE_HOSTS)
    return []


def _column(name: str) -> int:
    return Submission._meta.get_field(name).max_length


# The model's columns are the source of truth for every length limit.
NAME_LIMIT = _column("dentist_name")
EMAIL_LIMIT = _column("dentist_email")
PATIENT_LIMIT = _column("patient")
EXTERNAL_ID_LIMIT = _column("external_id")
FILENAME_LIMIT = _column("original_filename")

# The answers every route carries, in the order they are checked (and errors listed).
ANSWERS = ("dentist_name", "dentist_email", "patient", "tooth")
# How messages call each field: plain Portuguese, the same on every route.
LABELS = {
    "dentist_name": "nome",
    "dentist_email": "e-mail",
    "patient": "paciente",
    "tooth": "dente",
    "external_id": "id",
    "file": "arquivo",
    "note": "observação",
    "answer_note": "nota ao dentista",
}


class IntakeInvalid(ApplicationError):
    """Several fields refused at once (the upload page shows them all); as an ``ApplicationError``
    it is the first of them, which is what a JSON client gets."""

    def __init__(self, errors: list[ApplicationError]):
        first = errors[0]
        super().__init__(first.message, field=first.field, status=first.status, code=first.code)
        self.errors = errors


def missing(field: str) -> ApplicationError:
    if field == "file":
        return ApplicationError(SEND_THE_IMAGE, field="file", code="missing_file")
    return ApplicationError(
        f"Campo obrigatório não informado: {LABELS.get(field, field)}.", field=field, code="required"
    )


def check_file_size(size: int | None) -> None:
    """The size cap, checked before a file is read (the image check repeats it on the bytes)."""
    if size is not None and size > settings.RAIOX_MAX_UPLOAD_BYTES:
        raise file_too_large()


def text(value: object, *, field: str, limit: int | None, required: bool = False) -> str:
    """A free-text answer: a string (numbers accepted as text), no control characters, length-limited."""
    if value is None:
        value = ""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ApplicationError(
            f"Valor inválido para {LABELS.get(field, field)}: esperado um texto.", field=field, code="invalid_type"
        )
    cleaned = plain(str(value))
    if has_control(cleaned):
        raise ApplicationError(
            f"O campo {LABELS.get(field, field)} contém caracteres de controle; envie apenas texto.",
            field=field,
            code="control_characters",
        )
    if limit is not None and len(cleaned) > limit:
        raise ApplicationError(
            f"O campo {LABELS.get(field, field)} é longo demais (máximo {limit} caracteres).",
            field=field,
            code="too_long",
        )
    if required and not cleaned:
        raise missing(field)
    return cleaned


def _invalid_email() -> ApplicationError:
    return ApplicationError("E-mail inválido.", field="dentist_email", code="invalid_email")


def email(value: object, *, required: bool = False) -> str:
    """An address in its one canonical form, so that the per-address daily cap of the e-mails
    (``submissions.services.email``) counts every spelling of one mailbox as that mailbox:
    NFKC (full-width ``ｅｘａｍｐｌｅ．ｃｏｍ`` is ``example.com``), the domain as its IDNA A-label
    (``bücher.de`` is ``xn--bcher-kva.de``), all lower-case. A quoted local part (``"a b"@x``)
    and an IP-literal domain (``a@[10.0.0.1]``) are refused: a dentist never needs them, and each
    would be one more spelling of an address."""
    address = text(value, field="dentist_email", limit=EMAIL_LIMIT, required=required)
    if not address:
        return address
    address = unicodedata.normalize("NFKC", address)
    local, at, domain = address.rpartition("@")
    if not at or not local or '"' in local or domain.startswith("["):
        raise _invalid_email()
    try:
        domain = idna.encode(domain, uts46=True).decode("ascii")
    except (idna.IDNAError, UnicodeError) as exc:
        raise _invalid_email() from exc
    address = f"{local}@{domain}".lower()
    if len(address) > EMAIL_LIMIT:
        raise _invalid_email()
    try:
        validate_email(address)
    except ValidationError as exc:
        raise _invalid_email() from exc
    return address


def tooth(value: object, *, required: bool = False) -> str:
    # No length limit of its own: "5 5" or "036" is an invalid tooth, not a "too long" one.
    number = text(value, field="tooth", limit=None, required=required)
    if number and not is_fdi_tooth(number):
        raise ApplicationError(str(FDI_TOOTH_MESSAGE), field="tooth", code="invalid_tooth")
    return number


def external_id(value: object, *, required: bool = False) -> str:
    """A sender's id (Jotform's submissionID): letters, digits, '-' and '_' only."""
    ident = text(value, field="external_id", limit=EXTERNAL_ID_LIMIT, required=required)
    if ident and not all(ch.isascii() and (ch.isalnum() or ch in "-_") for ch in ident):
        raise ApplicationError("Identificador inválido.", field="external_id", code="invalid_id")
    return ident


def filename(value: object) -> str:
    """The sender's file name, kept only for display: the last path component, no control characters.

    It never reaches a storage key (see kernel.storage_keys); we still drop directories so that
    ``../../etc/passwd`` is shown as ``passwd``.
    """
    if value is not None and not isinstance(value, str):
        raise ApplicationError("O nome do arquivo deve ser um texto.", field="filename", code="invalid_type")
    name = unicodedata.normalize("NFC", value or "").replace("\\", "/")
    base = posixpath.basename(without_controls(name).strip())
    return "" if base in {".", ".."} else base[:FILENAME_LIMIT]


def filename_from_url(url: str) -> str:
    return filename(unquote(urlsplit(url).path.rsplit("/", 1)[-1]))


CLEANERS = {
    "dentist_name": lambda value, required: text(value, field="dentist_name", limit=NAME_LIMIT, required=required),
    "dentist_email": lambda value, required: email(value, required=required),
    "patient": lambda value, required: text(value, field="patient", limit=PATIENT_LIMIT, required=required),
    "tooth": lambda value, required: tooth(value, required=required),
}


def intake_record(
    *,
    source: str,
    answers: Mapping[str, object],
    required: Collection[str] = (),
    image_bytes: bytes | None = None,
    remote_image_url: str = "",
    original_filename: object = "",
    external_id_value: object = "",
    parent_id: int | None = None,
    crop_box: dict | None = None,
    owner_id: int | None = None,
    errors: list[ApplicationError] | None = None,
) -> IntakeRecord:
    """The one mapping from a route's answers (keyed by the spec's names) to an ``IntakeRecord``.

    Every answer is checked and every refusal collected; ``errors`` carries refusals the adapter
    found before (the file, in the order its client expects). Raises ``IntakeInvalid``.
    """
    errors = list(errors or [])
    clean: dict[str, Any] = {}
    for name in ANSWERS:
        try:
            clean[name] = CLEANERS[name](answers.get(name), name in required)
        except ApplicationError as exc:
            errors.append(exc)
    try:
        clean["external_id"] = external_id(external_id_value, required="external_id" in required)
        clean["filename"] = filename(original_filename)
    except ApplicationError as exc:
        errors.append(exc)
    if errors:
        raise IntakeInvalid(errors)
    return IntakeRecord(
        source=source,
        image_bytes=image_bytes,
        remote_image_url=remote_image_url,
        parent_id=parent_id,
        crop_box=crop_box,
        owner_id=owner_id,
        **clean,
    )
