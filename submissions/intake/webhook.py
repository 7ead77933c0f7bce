"""The generic ``POST /webhook`` (the old system's path): JSON or multipart, the same fields as the
form, and either the file itself or an image URL on an allowed host.

``WEBHOOK_REQUEST_SCHEMA`` documents the body (JSON Schema, usable by drf-spectacular as an
``OpenApiRequest``); ``WEBHOOK_RESPONSE_SCHEMA`` the answer.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from django.conf import settings
from django.http import HttpRequest

from kernel.errors import ApplicationError
from submissions.intake.common import (
    check_remote_url,
    email_field,
    external_id_field,
    filename_from_url,
    safe_filename,
    text_field,
    tooth_field,
)
from submissions.intake.files import read_uploaded_file, too_large
from submissions.models import Source
from submissions.services import IntakeRecord

WEBHOOK_REQUEST_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": (
        "Envio de uma radiografia. JSON (application/json) ou multipart/form-data com os mesmos campos. "
        "Informe exatamente um entre `file` e `image_url`. Em JSON, `file` é o arquivo em base64."
    ),
    "required": ["nome", "email"],
    "properties": {
        "nome": {"type": "string", "maxLength": 200, "description": "Nome do dentista."},
        "email": {"type": "string", "format": "email", "maxLength": 254, "description": "E-mail do dentista."},
        "paciente": {"type": "string", "maxLength": 200, "description": "Nome do paciente (opcional)."},
        "dente": {
            "type": "string",
            "pattern": "^([1-4][1-8]|[5-8][1-5])$",
            "description": "Dente em notação FDI (11–48; 51–85 decíduos). Opcional.",
        },
        "file": {
            "type": "string",
            "format": "binary",
            "description": "A imagem: JPEG, PNG, WebP, TIFF, BMP, HEIC ou DICOM (base64 em JSON). Até 20 MB.",
        },
        "filename": {"type": "string", "maxLength": 255, "description": "Nome do arquivo (só em JSON, opcional)."},
        "image_url": {
            "type": "string",
            "format": "uri",
            "maxLength": 2000,
            "description": "URL https da imagem num servidor permitido (RAIOX_WEBHOOK_FILE_HOSTS).",
        },
        "id": {
            "type": "string",
            "maxLength": 100,
            "pattern": "^[A-Za-z0-9_-]+$",
            "description": "Identificador do envio no sistema de origem: reenvios com o mesmo id não duplicam.",
        },
    },
    "additionalProperties": True,
}

WEBHOOK_RESPONSE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "token": {"type": "string", "format": "uuid"},
        "status": {"type": "string", "enum": ["received", "processing", "done", "failed"]},
        "result_url": {"type": "string", "format": "uri"},
        "duplicate": {"type": "boolean", "description": "true quando o mesmo id já tinha sido recebido"},
    },
}

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "error": {"type": "string", "description": "Mensagem em português."},
        "field": {"type": ["string", "null"]},
        "code": {"type": "string"},
    },
}


def _decode_base64(value: object) -> bytes:
    if not isinstance(value, str):
        raise ApplicationError("O campo file deve ser o arquivo em base64.", field="file", code="invalid_type")
    if len(value) > settings.RAIOX_MAX_UPLOAD_BYTES * 4 // 3 + 4:
        raise too_large()
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ApplicationError("O campo file não é base64 válido.", field="file", code="invalid_base64") from exc


def _json_body(request: HttpRequest) -> dict[str, Any]:
    try:
        body = json.loads(request.body)
    except (ValueError, RecursionError) as exc:
        raise ApplicationError("Corpo JSON inválido.", code="invalid_json") from exc
    if not isinstance(body, dict):
        raise ApplicationError("O corpo deve ser um objeto JSON.", code="invalid_json")
    return body


def intake_from_webhook(request: HttpRequest) -> IntakeRecord:
    content_type = request.content_type or ""
    data: bytes | None = None
    filename = ""
    if content_type == "application/json":
        body: Any = _json_body(request)
        if body.get("file") not in (None, ""):
            data = _decode_base64(body["file"])
            filename = safe_filename(text_field(body.get("filename"), field="filename", limit=255))
    elif content_type in {"multipart/form-data", "application/x-www-form-urlencoded"}:
        body = request.POST
        if request.FILES.getlist("file"):
            data, filename = read_uploaded_file(request, field="file")
    else:
        raise ApplicationError(
            "Envie application/json ou multipart/form-data.", field=None, status=415, code="unsupported_media_type"
        )

    image_url = body.get("image_url") or ""
    if data is not None and image_url:
        raise ApplicationError("Envie o arquivo ou a URL da imagem, não os dois.", field="image_url", code="ambiguous")
    if data is None and not image_url:
        raise ApplicationError("Envie a imagem da radiografia.", field="file", code="required")
    if image_url:
        if not settings.RAIOX_WEBHOOK_FILE_HOSTS:
            raise ApplicationError(
                "Este servidor não aceita URLs de imagem; envie o arquivo.",
                field="image_url",
                status=422,
                code="url_not_allowed",
            )
        image_url = check_remote_url(
            image_url, allowed_hosts=list(settings.RAIOX_WEBHOOK_FILE_HOSTS), field="image_url"
        )
        filename = filename_from_url(image_url)

    return IntakeRecord(
        source=Source.WEBHOOK,
        external_id=external_id_field(body.get("id"), field="id", required=False),
        dentist_name=text_field(body.get("nome"), field="nome", required=True),
        dentist_email=email_field(body.get("email"), field="email"),
        patient=text_field(body.get("paciente"), field="paciente"),
        tooth=tooth_field(body.get("dente"), field="dente"),
        image_bytes=data,
        remote_image_url=image_url,
        filename=filename,
    )
