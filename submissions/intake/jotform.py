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

import re
from typing import Any

from django.conf import settings
from django.http import HttpRequest

from kernel.downloads import check_remote_url
from kernel.errors import ApplicationError
from kernel.parsing import parse_json
from submissions import fields
from submissions.fields import IntakeRecord, allowed_hosts_for
from submissions.intake.form import PLAIN_FORM_REQUIRED, intake_from_form
from submissions.models import Source

QUESTION_KEY = re.compile(r"^q(\d+)_(.+)$")
NAME_PARTS = ("prefix", "first", "middle", "last", "suffix")


def field_names() -> dict[str, str]:
    """The spec's names -> this form's question names, for error answers (``q3_nome`` -> ``nome``)."""
    return {**settings.JOTFORM_FIELD_MAP, "external_id": "submissionID"}


def is_jotform_payload(request: HttpRequest) -> bool:
    return "rawRequest" in request.POST


def parse_raw_request(raw: str) -> dict[str, Any]:
    answers = parse_json(raw, field="rawRequest", code="invalid_payload")
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


def full_name(value: Any) -> Any:
    """A Jotform name field ``{"first", "middle", "last"}`` as one string (other answers as they are,
    for the spec to judge; a part that is not text leaves the whole answer to be refused)."""
    if isinstance(value, dict):
        parts = [value.get(key) for key in NAME_PARTS]
        if all(part is None or (isinstance(part, str | int | float) and not isinstance(part, bool)) for part in parts):
            return " ".join(str(part).strip() for part in parts if part is not None and str(part).strip())
    return value


def upload_url(answers: dict[str, Any], name: str) -> str:
    """The first URL of the upload field: under the bare field name, or ``q<N>_<name>`` as a fallback."""
    urls = answers.get(name)
    if urls is None:
        urls = answer(answers, name)
    if isinstance(urls, str) and urls:
        urls = [urls]
    if not isinstance(urls, list) or not urls:
        raise fields.missing("file")
    return check_remote_url(urls[0], allowed_hosts=allowed_hosts_for(Source.JOTFORM), field="file")


def intake_from_jotform(request: HttpRequest) -> IntakeRecord:
    """Jotform's real webhook: answers from ``rawRequest``, the file left on Jotform for the worker."""
    names = settings.JOTFORM_FIELD_MAP
    form_id = fields.text(request.POST.get("formID"), field="formID", limit=50)
    if settings.JOTFORM_FORM_IDS and form_id not in settings.JOTFORM_FORM_IDS:
        raise ApplicationError("Formulário não autorizado.", field="formID", status=403, code="unknown_form")
    submission_id = fields.external_id(request.POST.get("submissionID"), required=True)
    answers = parse_raw_request(request.POST.get("rawRequest", ""))
    url = upload_url(answers, names["file"])
    given = {spec: answer(answers, names[spec]) for spec in fields.ANSWERS}
    given["dentist_name"] = full_name(given["dentist_name"])
    return fields.intake_record(
        source=Source.JOTFORM,
        answers=given,
        required=PLAIN_FORM_REQUIRED,
        remote_image_url=url,
        original_filename=fields.filename_from_url(url),
        external_id_value=submission_id,
    )


def intake_from_plain_form(request: HttpRequest) -> IntakeRecord:
    """The old form: the file's bytes and the answers as plain multipart fields."""
    post = request.POST
    return intake_from_form(
        post,
        request.FILES,
        source=Source.JOTFORM,
        required=PLAIN_FORM_REQUIRED,
        external_id_value=post.get("submissionID") or post.get("id"),
    )
