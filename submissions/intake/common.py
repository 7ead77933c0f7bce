"""Checks shared by every intake source, so that a field means the same thing wherever it arrives.

Errors are ``ApplicationError`` with a Portuguese message and the *sender's* field name (``nome``,
``email``, ``paciente``, ``dente``, ``file``), which is what a form owner or an integrator sees.
"""

from __future__ import annotations

import posixpath
import unicodedata
from urllib.parse import unquote, urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from kernel.errors import ApplicationError
from submissions.validators import is_fdi_tooth

# Limits of the model's columns; a longer value is refused rather than cut.
NAME_LIMIT = 200
EMAIL_LIMIT = 254
EXTERNAL_ID_LIMIT = 100
URL_LIMIT = 2000
FILENAME_LIMIT = 255

# Bidirectional overrides and isolates reorder what a reader sees ("Trojan Source"); no name needs them.
BIDI_CONTROLS = {chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A))}


def missing(field: str) -> ApplicationError:
    return ApplicationError(f"Campo obrigatório não informado: {field}.", field=field, code="required")


def text_field(value: object, *, field: str, limit: int = NAME_LIMIT, required: bool = False) -> str:
    """A free-text answer: a string (numbers accepted as text), no control characters, length-limited."""
    if value is None:
        value = ""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ApplicationError(f"Valor inválido para {field}: esperado um texto.", field=field, code="invalid_type")
    text = unicodedata.normalize("NFC", str(value)).strip()
    if any(unicodedata.category(ch) == "Cc" or ch in BIDI_CONTROLS for ch in text):
        raise ApplicationError(
            f"O campo {field} contém caracteres de controle; envie apenas texto.",
            field=field,
            code="control_characters",
        )
    if len(text) > limit:
        raise ApplicationError(
            f"O campo {field} é longo demais (máximo {limit} caracteres).", field=field, code="too_long"
        )
    if required and not text:
        raise missing(field)
    return text


def email_field(value: object, *, field: str = "email", required: bool = True) -> str:
    email = text_field(value, field=field, limit=EMAIL_LIMIT, required=required).lower()
    if email:
        try:
            validate_email(email)
        except ValidationError as exc:
            raise ApplicationError(f"E-mail inválido: {field}.", field=field, code="invalid_email") from exc
    return email


def tooth_field(value: object, *, field: str = "dente", required: bool = False) -> str:
    tooth = text_field(value, field=field, limit=10, required=required)
    if tooth and not is_fdi_tooth(tooth):
        raise ApplicationError(
            "Dente inválido: use a notação FDI de dois dígitos (11–18, 21–28, 31–38, 41–48 ou 51–85).",
            field=field,
            code="invalid_tooth",
        )
    return tooth


def external_id_field(value: object, *, field: str, required: bool) -> str:
    """A sender's id (Jotform's submissionID): letters, digits, '-' and '_' only."""
    ident = text_field(value, field=field, limit=EXTERNAL_ID_LIMIT, required=required)
    if ident and not all(ch.isascii() and (ch.isalnum() or ch in "-_") for ch in ident):
        raise ApplicationError(f"Identificador inválido: {field}.", field=field, code="invalid_id")
    return ident


def safe_filename(name: object) -> str:
    """The sender's file name, kept only for display: the last path component, no control characters.

    It never reaches a storage key (see kernel.storage_keys), so a hostile name is harmless; we still
    drop directories so that ``../../etc/passwd`` is shown as ``passwd``.
    """
    text = unicodedata.normalize("NFC", str(name or "")).replace("\\", "/")
    text = "".join(ch for ch in text if unicodedata.category(ch) != "Cc" and ch not in BIDI_CONTROLS)
    base = posixpath.basename(text.strip())
    return "" if base in {".", ".."} else base[:FILENAME_LIMIT]


def filename_from_url(url: str) -> str:
    return safe_filename(unquote(urlsplit(url).path.rsplit("/", 1)[-1]))


def _host_and_port(url: str, *, field: str) -> tuple[str, str]:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ApplicationError("URL da imagem inválida.", field=field, code="invalid_url") from exc
    scheme = parts.scheme.lower()
    if not parts.hostname or parts.username is not None or parts.password is not None:
        raise ApplicationError("URL da imagem inválida.", field=field, code="invalid_url")
    host = parts.hostname.lower()
    default_port = {"https": 443, "http": 80}.get(scheme)
    netloc = host if port is None or port == default_port else f"{host}:{port}"
    return scheme, netloc


def check_remote_url(url: object, *, allowed_hosts: list[str], field: str = "file") -> str:
    """Accept a remote image URL only on an allowed host (exact match, https) — never an arbitrary URL.

    An allow-list entry is a host name, or ``host:port`` for a non-default port. Raises a 4xx
    ``ApplicationError``; the caller stores nothing.
    """
    if not isinstance(url, str) or not url.strip():
        raise ApplicationError("URL da imagem inválida.", field=field, code="invalid_url")
    url = url.strip()
    if len(url) > URL_LIMIT or any(ch.isspace() or unicodedata.category(ch) == "Cc" for ch in url):
        raise ApplicationError("URL da imagem inválida.", field=field, code="invalid_url")
    scheme, netloc = _host_and_port(url, field=field)
    schemes = {"https", "http"} if settings.RAIOX_ALLOW_HTTP_DOWNLOADS else {"https"}
    if scheme not in schemes:
        raise ApplicationError("A URL da imagem deve usar https.", field=field, code="url_not_allowed")
    if netloc not in {h.strip().lower() for h in allowed_hosts if h.strip()}:
        raise ApplicationError(
            "Endereço da imagem não permitido: só aceitamos arquivos dos servidores configurados.",
            field=field,
            status=422,
            code="url_not_allowed",
        )
    return url


def allowed_hosts_for(source: str) -> list[str]:
    """Where a source's images may be fetched from (checked at intake and again before download)."""
    if source == "jotform":
        return list(settings.JOTFORM_FILE_HOSTS)
    if source == "webhook":
        return list(settings.RAIOX_WEBHOOK_FILE_HOSTS)
    return []
