"""Jotform's webhook, as Jotform really sends it, and the old plain form — both on ``POST /jotform``.

Jotform posts ``multipart/form-data`` with text parts only (``formID``, ``submissionID``,
``rawRequest``, ``pretty``, ``webhookURL``, ...). The answers are in ``rawRequest``, a JSON string
keyed ``q<questionId>_<fieldName>`` (``q3_nome``, ``q4_email``); a name field is
``{"first": ..., "last": ...}``. Uploaded files are *not* in the body: ``rawRequest`` lists their
URLs on Jotform's upload host under the bare field name (``"file": ["https://www.jotform.com/uploads/..."]``);
the worker downloads them. ``temp_upload`` holds internal tokens and ``pretty`` is ambiguous
(``"Label:Value, ..."`` with answers that may contain ``:`` or ``, ``): we read neither.
``webhookURL`` echoes our secret token, so bodies are never logged.

The old form posts ``file`` (the bytes), ``nome``, ``email``, ``paciente``, ``dente``.
"""

from __future__ import annotations

import json
import re
from typing import Any

from django.conf import settings
from django.http import HttpRequest

from kernel.errors import ApplicationError
from submissions.intake.common import (
    check_remote_url,
    email_field,
    external_id_field,
    filename_from_url,
    missing,
    text_field,
    tooth_field,
)
from submissions.intake.files import read_uploaded_file
from submissions.models import Source
from submissions.services import IntakeRecord

QUESTION_KEY = re.compile(r"^q(\d+)_(.+)$")


def is_jotform_payload(request: HttpRequest) -> bool:
    return "rawRequest" in request.POST


def parse_raw_request(raw: str) -> dict[str, Any]:
    try:
        answers = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise ApplicationError("rawRequest não é um JSON válido.", field="rawRequest", code="invalid_payload") from exc
    if not isinstance(answers, dict):
        raise ApplicationError("rawRequest deve ser um objeto JSON.", field="rawRequest", code="invalid_payload")
    return answers


def answer(answers: dict[str, Any], name: str) -> Any:
    """The answer to the question whose field name is ``name`` (``q<N>_<name>``; lowest N wins)."""
    found = [
        (int(m.group(1)), value)
        for key, value in answers.items()
        if (m := QUESTION_KEY.match(key)) and m.group(2) == name
    ]
    if found:
        return min(found, key=lambda item: item[0])[1]
    return answers.get(name)


def full_name(value: Any, *, field: str) -> str:
    """A Jotform name field ``{"first", "middle", "last"}`` (or a plain text answer) as one string."""
    if isinstance(value, dict):
        parts = [text_field(value.get(k), field=field) for k in ("prefix", "first", "middle", "last", "suffix")]
        value = " ".join(p for p in parts if p)
    return text_field(value, field=field, required=True)


def upload_url(answers: dict[str, Any], name: str) -> str:
    """The first URL of the upload field: under the bare field name, or ``q<N>_<name>`` as a fallback."""
    urls = answers.get(name)
    if urls is None:
        urls = answer(answers, name)
    if isinstance(urls, str) and urls:
        urls = [urls]
    if not isinstance(urls, list) or not urls:
        raise missing(name)
    return check_remote_url(urls[0], allowed_hosts=list(settings.JOTFORM_FILE_HOSTS), field=name)


def intake_from_jotform(request: HttpRequest) -> IntakeRecord:
    """Jotform's real webhook: answers from ``rawRequest``, the file left on Jotform for the worker."""
    fields = settings.JOTFORM_FIELD_MAP
    form_id = text_field(request.POST.get("formID"), field="formID", limit=50)
    if settings.JOTFORM_FORM_IDS and form_id not in settings.JOTFORM_FORM_IDS:
        raise ApplicationError("Formulário não autorizado.", field="formID", status=403, code="unknown_form")
    submission_id = external_id_field(request.POST.get("submissionID"), field="submissionID", required=True)
    answers = parse_raw_request(request.POST.get("rawRequest", ""))

    url = upload_url(answers, fields["file"])
    return IntakeRecord(
        source=Source.JOTFORM,
        external_id=submission_id,
        dentist_name=full_name(answer(answers, fields["dentist_name"]), field=fields["dentist_name"]),
        dentist_email=email_field(answer(answers, fields["dentist_email"]), field=fields["dentist_email"]),
        patient=text_field(answer(answers, fields["patient"]), field=fields["patient"]),
        tooth=tooth_field(answer(answers, fields["tooth"]), field=fields["tooth"]),
        remote_image_url=url,
        filename=filename_from_url(url),
    )


def intake_from_plain_form(request: HttpRequest, *, source: str = Source.JOTFORM) -> IntakeRecord:
    """The old form: the file's bytes and the answers as plain multipart fields."""
    post = request.POST
    data, filename = read_uploaded_file(request, field="file")
    return IntakeRecord(
        source=source,
        external_id=external_id_field(post.get("submissionID") or post.get("id"), field="id", required=False),
        dentist_name=text_field(post.get("nome"), field="nome", required=True),
        dentist_email=email_field(post.get("email"), field="email"),
        patient=text_field(post.get("paciente"), field="paciente"),
        tooth=tooth_field(post.get("dente"), field="dente"),
        image_bytes=data,
        filename=filename,
    )
