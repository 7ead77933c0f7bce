"""Management commands end cleanly: an expected failure is one line saying what to do.

Every command of the project subclasses ``RaioxCommand``. A failure the operator can fix — the
model's weights missing (``WeightsUnavailable``, an ``ImproperlyConfigured``), the database or a
bucket out of reach, a file or folder that is not there or cannot be read — becomes a
``CommandError`` with one line (Django prints it as ``CommandError: ...`` and exits 1, no
traceback); anything else is a bug and keeps its traceback. ``--traceback`` still shows the cause.
"""

from __future__ import annotations

import json
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError
from django.db import InterfaceError, OperationalError

from kernel.errors import ApplicationError

_STORAGE_HINT = (
    "confira o nome do bucket, o endpoint (AWS_S3_ENDPOINT_URL ou --endpoint-url) e as credenciais "
    "(AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY)"
)


def one_line(text: str) -> str:
    return " ".join(str(text).split())


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0].strip() if text else type(exc).__name__


def _storage_failure(exc: BaseException) -> str | None:
    try:
        from botocore.exceptions import BotoCoreError, ClientError
    except ImportError:  # pragma: no cover - boto3 is a dependency
        return None
    if isinstance(exc, ClientError):
        code = exc.response.get("Error", {}).get("Code", "")
        return f"O armazenamento (S3) recusou o pedido ({code or _first_line(exc)}): {_STORAGE_HINT}."
    if isinstance(exc, BotoCoreError):
        return f"Armazenamento (S3) inacessível ({_first_line(exc)}): {_STORAGE_HINT}."
    return None


def expected_failure(exc: BaseException) -> str | None:
    """The one-line message for a failure the operator can act on, or None for a bug."""
    if isinstance(exc, ApplicationError):
        return exc.message
    if isinstance(exc, ImproperlyConfigured):  # WeightsUnavailable among them: its message says what to run
        return f"Configuração incompleta: {_first_line(exc)}"
    if isinstance(exc, OperationalError | InterfaceError):
        return (
            f"Banco de dados inacessível ({_first_line(exc)}): confira DATABASE_URL e se o PostgreSQL está no ar "
            "(em desenvolvimento: `make migrate`)."
        )
    storage = _storage_failure(exc)
    if storage is not None:
        return storage
    if isinstance(exc, UnicodeDecodeError | json.JSONDecodeError):
        return f"Arquivo ilegível ({_first_line(exc)}): use um arquivo de texto em UTF-8 no formato esperado."
    if isinstance(exc, FileNotFoundError | NotADirectoryError | IsADirectoryError | PermissionError):
        where = exc.filename or ""
        return f"{exc.strerror or type(exc).__name__}: {where} — confira o caminho e as permissões e rode de novo."
    return None


class RaioxCommand(BaseCommand):
    """A ``BaseCommand`` whose expected failures end as one line (``expected_failure``)."""

    def execute(self, *args: Any, **options: Any) -> Any:
        try:
            return super().execute(*args, **options)
        except CommandError as exc:
            raise CommandError(one_line(str(exc)), returncode=exc.returncode) from exc
        except Exception as exc:
            message = expected_failure(exc)
            if message is None:
                raise
            raise CommandError(one_line(message)) from exc
