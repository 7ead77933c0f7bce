"""The generic ``POST /webhook`` (the old system's path): JSON or multipart, the same fields as the
form, and either the file itself or an image URL on an allowed host.

``WEBHOOK_REQUEST_SCHEMA`` documents the body (JSON Schema, usable by drf-spectacular as an
``OpenApiRequest``); ``WEBHOOK_RESPONSE_SCHEMA`` the answer.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from django.conf import settings
from django.http import HttpRequest

from kernel.downloads import URL_LIMIT, check_remote_url
from kernel.errors import ApplicationError
from kernel.parsing import parse_json
from submissions.intake import fields
from submissions.intake.form import PLAIN_FORM_REQUIRED
from submissions.models import Source
from submissions.services import IntakeRecord
from submissions.services.remote import allowed_hosts_for
from submissions.validators import FDI_TOOTH_PATTERN

WEBHOOK_REQUEST_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": (
        "Envio de uma radiografia. JSON (application/json) ou multipart/form-data com os mesmos campos. "
        "Informe exatamente um entre `file` e `image_url`. Em JSON, `file` é o arquivo em base64."
    ),
    "required": ["nome", "email"],
    "properties": {
        "nome": {"type": "string", "maxLength": fields.NAME_LIMIT, "description": "Nome do dentista."},
        "email": {
            "type": "string",
            "format": "email",
            "maxLength": fields.EMAIL_LIMIT,
            "description": "E-mail do dentista.",
        },
        "paciente": {
            "type": "string",
            "maxLength": fields.PATIENT_LIMIT,
            "description": "Nome do paciente (opcional).",
        },
        "dente": {
            "type": "string",
            "pattern": f"^({FDI_TOOTH_PATTERN})$",
            "description": "Dente em notação FDI (11–18, 21–28, 31–38, 41–48; decíduos 51–55, 61–65, 71–75, 81–85).",
        },
        "file": {
            "type": "string",
            "format": "binary",
            "description": "A imagem: JPEG, PNG, WebP, TIFF, BMP, HEIC ou DICOM (base64 em JSON). Até 20 MB.",
        },
        "filename": {
            "type": "string",
            "maxLength": fields.FILENAME_LIMIT,
            "description": "Nome do arquivo (só em JSON, opcional; guardamos só o último componente).",
        },
        "image_url": {
            "type": "string",
            "format": "uri",
            "maxLength": URL_LIMIT,
            "description": "URL https da imagem num servidor permitido (RAIOX_WEBHOOK_FILE_HOSTS).",
        },
        "regions": {
            "type": "array",
            "maxItems": settings.RAIOX_MAX_REGIONS,
            "description": (
                "Implantes marcados na radiografia (opcional; só com `file`): cada um é identificado à parte. "
                "Pixels da imagem; dentro dela, sem sobreposição, cada lado com ao menos RAIOX_MIN_IMAGE_SIDE "
                "pixels. Em multipart, a lista em JSON como texto."
            ),
            "items": {
                "type": "object",
                "required": ["x", "y", "width", "height", "tooth"],
                "properties": {
                    "x": {"type": "number"},
                    "y": {"type": "number"},
                    "width": {"type": "number"},
                    "height": {"type": "number"},
                    "tooth": {"type": "string", "pattern": f"^({FDI_TOOTH_PATTERN})$"},
                },
            },
        },
        "id": {
            "type": "string",
            "maxLength": fields.EXTERNAL_ID_LIMIT,
            "pattern": "^[A-Za-z0-9_-]+$",
            "description": "Identificador do envio no sistema de origem: reenvios com o mesmo id não duplicam.",
        },
    },
    "additionalProperties": True,
}

WEBHOOK_RESPONSE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": (
        "201: envio novo. 200: reenvio de um `id` já recebido — só `duplicate`, a menos que a requisição "
        "traga o token do webhook (RAIOX_WEBHOOK_TOKEN configurado): então também `token`, `status` e `result_url`."
    ),
    "required": ["duplicate"],
    "properties": {
        "token": {"type": "string", "format": "uuid"},
        "status": {"type": "string", "enum": ["received", "processing", "done", "failed"]},
        "result_url": {"type": "string", "format": "uri"},
        "duplicate": {"type": "boolean", "description": "true quando o mesmo id já tinha sido recebido"},
        "regions": {
            "type": "array",
            "description": "Só quando regiões foram marcadas: um envio por implante, com sua página de resultado.",
            "items": {
                "type": "object",
                "properties": {
                    "region": {"type": "integer"},
                    "tooth": {"type": "string"},
                    "token": {"type": "string", "format": "uuid"},
                    "status": {"type": "string"},
                    "result_url": {"type": "string", "format": "uri"},
                },
            },
        },
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
        raise fields.file_too_large()
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
        data, name = fields.read_file(request.FILES)
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
        answers=fields.answers_from(body),
        required=PLAIN_FORM_REQUIRED,
        image_bytes=data,
        remote_image_url=image_url,
        original_filename=name,
        external_id_value=body.get("id"),
    )
