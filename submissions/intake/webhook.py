"""The generic ``POST /webhook`` (the old system's path): JSON or multipart, the same fields as the
form, and either the file itself or an image URL on an allowed host.

Its body and answers are documented from the same field specification by
``submissions.intake.schema`` (``WebhookJSON``, ``WebhookForm``, ``IntakeReceipt`` in /api/schema/).
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from django.conf import settings
from django.http import HttpRequest

from kernel.downloads import check_remote_url
from kernel.errors import ApplicationError
from kernel.http import base64_length
from kernel.imaging import file_too_large
from kernel.parsing import parse_json
from submissions import fields
from submissions.fields import IntakeRecord, allowed_hosts_for
from submissions.intake.fields import answers_from, read_file
from submissions.intake.form import PLAIN_FORM_REQUIRED
from submissions.models import Source


def _decode_base64(value: object) -> bytes:
    if not isinstance(value, str):
        raise ApplicationError("O campo file deve ser o arquivo em base64.", field="file", code="invalid_type")
    if len(value) > base64_length(settings.RAIOX_MAX_UPLOAD_BYTES):
        raise file_too_large()
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ApplicationError("O campo file não é base64 válido.", field="file", code="invalid_base64") from exc


def _json_body(request: HttpRequest) -> dict[str, Any]:
    body = parse_json(request.body)
    if not isinstance(body, dict):
        raise ApplicationError("O corpo deve ser um objeto JSON.", code="invalid_json")
    return body


def regions_from(request: HttpRequest) -> object:
    """The ``regions`` the sender marked (a JSON list; in multipart, that list as a JSON string)."""
    if (request.content_type or "") == "application/json":
        return _json_body(request).get("regions")
    return request.POST.get("regions")


def intake_from_webhook(request: HttpRequest) -> IntakeRecord:
    content_type = request.content_type or ""
    data: bytes | None = None
    if content_type == "application/json":
        body: Any = _json_body(request)
        if body.get("file") not in (None, ""):
            data = _decode_base64(body["file"])
        name = body.get("filename")
    elif content_type in {"multipart/form-data", "application/x-www-form-urlencoded"}:
        body = request.POST
        data, name = read_file(request.FILES)
    else:
        raise ApplicationError(
            "Envie application/json ou multipart/form-data.", field=None, status=415, code="unsupported_media_type"
        )

    image_url = body.get("image_url") or ""
    if data is not None and image_url:
        raise ApplicationError("Envie o arquivo ou a URL da imagem, não os dois.", field="image_url", code="ambiguous")
    if data is None and not image_url:
        raise fields.missing("file")
    if image_url:
        hosts = allowed_hosts_for(Source.WEBHOOK)
        if not hosts:
            raise ApplicationError(
                "Este servidor não aceita URLs de imagem; envie o arquivo.",
                field="image_url",
                status=422,
                code="url_not_allowed",
            )
        image_url = check_remote_url(image_url, allowed_hosts=hosts, field="image_url")
        name = fields.filename_from_url(image_url)

    return fields.intake_record(
        source=Source.WEBHOOK,
        answers=answers_from(body),
        required=PLAIN_FORM_REQUIRED,
        image_bytes=data,
        remote_image_url=image_url,
        original_filename=name,
        external_id_value=body.get("id"),
    )
