"""Intake's wire mapping: the names each route's clients send (the old form's ``nome``, ``email``,
``paciente``, ``dente``, ``file``), the mapping of a route's answers to the spec's names
(``answers_from``), reading the multipart file (``read_file``) and errors renamed back to the
client's field names (``client_names``). The value rules themselves — text, limits, e-mail, tooth,
file name, ``intake_record`` — are ``submissions.fields``, below the services.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from django.utils.datastructures import MultiValueDict

from kernel.errors import ApplicationError
from submissions.fields import ANSWERS, check_file_size, filename

# The names of the old form, which /upload, /api/match/, the webhook and the upload page kept.
FORM_NAMES = {
    "dentist_name": "nome",
    "dentist_email": "email",
    "patient": "paciente",
    "tooth": "dente",
    "external_id": "id",
    "file": "file",
}


def answers_from(data: Mapping[str, Any], names: Mapping[str, str] = FORM_NAMES) -> dict[str, Any]:
    """A route's answers under the spec's names: ``{"dentist_name": data["nome"], ...}``."""
    return {spec: data.get(names[spec]) for spec in ANSWERS}


def read_file(files: MultiValueDict) -> tuple[bytes | None, str]:
    """The uploaded ``file`` of a multipart request (bytes, sanitised name), the size cap checked
    before reading; ``(None, "")`` when there is none."""
    uploads = files.getlist("file")
    if not uploads:
        return None, ""
    check_file_size(uploads[0].size)
    return uploads[0].read(), filename(uploads[0].name)


def rename(exc: ApplicationError, names: Mapping[str, str]) -> ApplicationError:
    """``exc`` (and the errors it carries) with ``field`` as the client named it."""
    for error in [exc, *getattr(exc, "errors", [])]:
        error.field = names.get(error.field or "", error.field)
    return exc


@contextmanager
def client_names(names: Mapping[str, str]) -> Iterator[None]:
    """Errors raised inside (by the spec, the image check or the service) name the field as the
    client sent it: ``dentist_name`` becomes ``nome`` for the old form, ``q3_nome``'s ``nome`` for Jotform."""
    try:
        yield
    except ApplicationError as exc:
        raise rename(exc, names)  # noqa: B904 - the same exception, renamed: no new context
