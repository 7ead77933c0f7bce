"""The OpenAPI description of intake — ``POST /webhook``, ``/upload``, ``/api/match/`` and
``/jotform`` — generated from the field specification the code validates with
(``submissions.fields``: its limits, its text rule, its required fields per route; the FDI
rule of ``submissions.validators``; the regions' rules and the size cap from settings), so that
/docs cannot say one thing while the code does another. ``raiox.openapi`` puts it into
/api/schema/ (``components`` and ``operations``); ``tests/backoffice/test_intake_openapi.py``
sends real requests to each route and checks requests and answers against what is served.

Built when the schema is asked for (settings such as RAIOX_MAX_REGIONS are read then).
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from django.conf import settings

from kernel.downloads import URL_LIMIT
from kernel.imaging import size_label
from kernel.text import BIDI_CONTROLS
from submissions import fields
from submissions.intake.fields import FORM_NAMES
from submissions.intake.form import API_REQUIRED, PLAIN_FORM_REQUIRED
from submissions.validators import FDI_TOOTH_PATTERN, is_fdi_tooth

Schema = dict[str, Any]

FORMATS = "JPEG, PNG, WebP, TIFF, BMP, HEIC ou DICOM"


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _text_pattern() -> str:
    """``fields.text``'s rule as a pattern: spaces at the ends are trimmed (so allowed there), and
    no control (Unicode ``Cc``: U+0000–U+001F, U+007F–U+009F) or bidirectional-override character
    anywhere else."""
    bidi = "".join(f"\\u{ord(ch):04x}" for ch in sorted(BIDI_CONTROLS))
    return f"^\\s*[^\\u0000-\\u001f\\u007f-\\u009f{bidi}]*\\s*$"


def _text(limit: int, description: str) -> Schema:
    return {"type": "string", "maxLength": limit, "pattern": _text_pattern(), "description": description}


def _fdi_numbers() -> list[int]:
    return [n for n in range(10, 100) if is_fdi_tooth(str(n))]


def tooth_schema(*, required: bool) -> Schema:
    """``fields.tooth``: FDI two digits (permanent 11–48, deciduous 51–85), spaces at the ends
    trimmed, blank when not required; a JSON number is read as its digits."""
    core = f"(?:{FDI_TOOTH_PATTERN})"
    pattern = f"^\\s*{core}\\s*$" if required else f"^\\s*{core}?\\s*$"
    return {
        "oneOf": [
            {"type": "string", "pattern": pattern},
            {"type": "integer", "enum": _fdi_numbers()},
        ],
        "description": (
            "Dente em notação FDI: 11–18, 21–28, 31–38, 41–48; decíduos 51–55, 61–65, 71–75, 81–85"
            + ("." if required else " (opcional).")
        ),
    }


def _id_schema(description: str) -> Schema:
    return {
        "type": "string",
        "maxLength": fields.EXTERNAL_ID_LIMIT,
        "pattern": "^\\s*[A-Za-z0-9_-]*\\s*$",
        "description": description,
    }


def answer_properties(names: dict[str, str] = FORM_NAMES) -> dict[str, Schema]:
    """The four answers under the names a route's client sends (``fields.ANSWERS``, ``CLEANERS``)."""
    specs = {
        "dentist_name": _text(fields.NAME_LIMIT, "Nome do dentista."),
        "dentist_email": {
            "type": "string",
            "format": "email",
            "maxLength": fields.EMAIL_LIMIT,
            "description": "E-mail do dentista.",
        },
        "patient": _text(fields.PATIENT_LIMIT, "Paciente (opcional)."),
        "tooth": tooth_schema(required=False),
    }
    return {names[spec]: specs[spec] for spec in fields.ANSWERS}


def _required(spec_names: Collection[str], names: dict[str, str] = FORM_NAMES) -> list[str]:
    return [names[spec] for spec in fields.ANSWERS if spec in spec_names]


def _file(*, base64: bool = False) -> Schema:
    limit = size_label(settings.RAIOX_MAX_UPLOAD_BYTES)
    if base64:
        return {"type": "string", "format": "byte", "description": f"A imagem ({FORMATS}) em base64; até {limit}."}
    return {"type": "string", "format": "binary", "description": f"A radiografia ({FORMATS}); até {limit}."}


def regions_schema() -> Schema:
    """``submissions.regions.parse_regions``: at most RAIOX_MAX_REGIONS, each inside the
    image, at least RAIOX_MIN_IMAGE_SIDE pixels a side, with its tooth, none overlapping."""
    side = settings.RAIOX_MIN_IMAGE_SIDE
    return {
        "type": "array",
        "maxItems": settings.RAIOX_MAX_REGIONS,
        "description": (
            "Implantes marcados na radiografia (opcional; só com o arquivo): cada um é identificado à parte. "
            f"Pixels da imagem; até {settings.RAIOX_MAX_REGIONS}, dentro dela, sem sobreposição, cada lado com "
            f"ao menos {side} pixels. Em multipart, a lista em JSON como texto."
        ),
        "items": {
            "type": "object",
            "required": ["x", "y", "width", "height", "tooth"],
            "properties": {
                "x": {"type": "number", "minimum": 0},
                "y": {"type": "number", "minimum": 0},
                "width": {"type": "number", "minimum": side},
                "height": {"type": "number", "minimum": side},
                "tooth": tooth_schema(required=True),
            },
        },
    }


def _image_url() -> Schema:
    return {
        "type": "string",
        "format": "uri",
        "maxLength": URL_LIMIT,
        "description": "URL https da imagem num servidor permitido (RAIOX_WEBHOOK_FILE_HOSTS).",
    }


def _upload_form(*, regions: bool) -> Schema:
    properties = {"file": _file(), **answer_properties()}
    if regions:
        properties["regions"] = regions_schema()
    return {
        "type": "object",
        "required": ["file", *_required(API_REQUIRED)],
        "properties": properties,
    }


def _webhook(*, json: bool) -> Schema:
    properties: dict[str, Schema] = {
        **answer_properties(),
        "file": _file(base64=json),
        "image_url": _image_url(),
        "regions": regions_schema(),
        "id": _id_schema("Identificador do envio no sistema de origem: reenvios com o mesmo id não duplicam."),
    }
    if json:
        properties["filename"] = {
            "type": "string",
            "description": "Nome do arquivo (opcional; guardamos só o último componente).",
        }
    return {
        "type": "object",
        "description": "Informe exatamente um entre `file` e `image_url`; `regions` só com `file`.",
        "required": _required(PLAIN_FORM_REQUIRED),
        "properties": properties,
        "oneOf": [{"required": ["file"]}, {"required": ["image_url"]}],
    }


def _jotform_payload() -> Schema:
    names = settings.JOTFORM_FIELD_MAP
    form_id: Schema = {"type": "string", "maxLength": 50, "description": "Id do formulário no Jotform."}
    if settings.JOTFORM_FORM_IDS:
        form_id["enum"] = list(settings.JOTFORM_FORM_IDS)
    return {
        "type": "object",
        "description": "O que o Jotform envia (só partes de texto; o arquivo fica no Jotform e o servidor o baixa).",
        "required": ["submissionID", "rawRequest"],
        "properties": {
            "submissionID": {
                **_id_schema("Id do envio no Jotform: entregas repetidas geram um só envio."),
                "pattern": "^\\s*[A-Za-z0-9_-]+\\s*$",
            },
            "formID": form_id,
            "rawRequest": {
                "type": "string",
                "description": (
                    "Objeto JSON com as respostas `q<N>_<campo>`: "
                    f"`{names['dentist_name']}` (texto ou {{first, last}}; obrigatório), "
                    f"`{names['dentist_email']}` (obrigatório), `{names['patient']}`, `{names['tooth']}` (FDI), "
                    f"e `{names['file']}`: a lista de URLs do arquivo no Jotform (obrigatória). "
                    "As mesmas regras dos outros envios."
                ),
            },
        },
    }


def _jotform_plain_form() -> Schema:
    return {
        "type": "object",
        "description": "O formulário antigo: o arquivo e as respostas como campos.",
        "required": ["file", *_required(PLAIN_FORM_REQUIRED)],
        "properties": {
            "file": _file(),
            **answer_properties(),
            "submissionID": _id_schema("Id do envio (opcional): reenvios com o mesmo id não duplicam."),
            "id": _id_schema("Como submissionID, quando ele não vem."),
        },
    }


def _jotform_form() -> Schema:
    """``/jotform``'s multipart body, either shape: Jotform's (``rawRequest`` present: read as
    Jotform's) or the old plain form. One object with every part, and which are required in each
    shape (tools that fill forms need the parts at the top)."""
    payload, plain = _jotform_payload(), _jotform_plain_form()
    return {
        "type": "object",
        "description": "O que o Jotform envia (com `rawRequest`), ou o formulário antigo (o arquivo e as respostas).",
        "properties": {**payload["properties"], **plain["properties"]},
        "oneOf": [
            {
                "title": "Jotform",
                "required": payload["required"],
                "properties": {"submissionID": payload["properties"]["submissionID"]},
            },
            {"title": "Formulário antigo", "required": plain["required"], "not": {"required": ["rawRequest"]}},
        ],
    }


ERROR: Schema = {
    "type": "object",
    "description": "Uma recusa: a mensagem em português, o campo como o cliente o enviou (ou null) e um código.",
    "properties": {
        "error": {"type": "string", "description": "Mensagem em português."},
        "field": {"type": "string", "nullable": True},
        "code": {"type": "string"},
    },
    "required": ["error", "field", "code"],
}


def components() -> dict[str, Schema]:
    """The schemas intake's operations refer to (``RegionLink`` and ``MatchResult`` are the DRF
    serializers' components)."""
    return {
        "Error": ERROR,
        "UploadForm": _upload_form(regions=False),
        "MatchForm": _upload_form(regions=True),
        "WebhookJSON": _webhook(json=True),
        "WebhookForm": _webhook(json=False),
        "JotformForm": _jotform_form(),
        "JotformPayload": _jotform_payload(),
        "IntakeReceipt": {
            "type": "object",
            "description": "Envio recebido: seu token, situação e página de resultado.",
            "required": ["token", "status", "result_url", "duplicate"],
            "properties": {
                "token": {"type": "string", "format": "uuid"},
                "status": {"type": "string", "enum": ["received", "processing", "done", "failed"]},
                "result_url": {"type": "string", "format": "uri"},
                "duplicate": {"type": "boolean", "description": "true quando o mesmo id já tinha sido recebido."},
                "regions": {
                    "type": "array",
                    "description": "Só quando regiões foram marcadas: um envio por implante.",
                    "items": _ref("RegionLink"),
                },
            },
        },
        "RepeatedDelivery": {
            "type": "object",
            "description": "Reenvio de um id já recebido, por quem não traz o token: nada do primeiro envio.",
            "required": ["duplicate"],
            "properties": {"duplicate": {"type": "boolean", "enum": [True]}},
            "additionalProperties": False,
        },
    }


def _json(schema: Schema, description: str, headers: dict | None = None) -> Schema:
    answer: Schema = {"description": description, "content": {"application/json": {"schema": schema}}}
    if headers:
        answer["headers"] = headers
    return answer


def _error(description: str, headers: dict | None = None) -> Schema:
    return _json(_ref("Error"), description, headers)


RETRY_AFTER = {"Retry-After": {"schema": {"type": "integer"}, "description": "Segundos até tentar de novo."}}
LOCATION = {"Location": {"schema": {"type": "string", "format": "uri"}, "description": "Onde consultar de novo."}}

REFUSED = "Entrada recusada (campo, imagem, regiões ou requisição malformada): `field` diz qual."
TOO_LARGE = "Arquivo ou imagem grande demais."
LIMITED = "Muitas requisições deste endereço."
UNAVAILABLE = "Indisponível (armazenamento ou banco); nada foi guardado, tente de novo."


def _match_answers(*, authenticated: bool) -> dict[str, Schema]:
    answers = {
        "200": _json(_ref("MatchResult"), "Resultado pronto."),
        "202": _json(_ref("MatchResult"), "Ainda processando: consulte o Location.", LOCATION),
        "400": _error(REFUSED),
        "413": _error(TOO_LARGE),
        "422": _json(_ref("MatchResult"), "A imagem não pôde ser processada."),
        "429": _error(LIMITED, RETRY_AFTER),
        "503": _error(UNAVAILABLE, RETRY_AFTER),
    }
    if authenticated:
        answers["401"] = _error("Sem credenciais (token).")
        answers["403"] = _error("Credenciais recusadas (sessão sem CSRF).")
    return answers


def _receipt_answers(*, created: str, forbidden: str) -> dict[str, Schema]:
    return {
        "200": _json(
            {"oneOf": [_ref("IntakeReceipt"), _ref("RepeatedDelivery")]},
            "Reenvio do mesmo id: nada novo. Quem traz o token é informado do primeiro envio.",
        ),
        "201": _json(_ref("IntakeReceipt"), created),
        "400": _error(REFUSED),
        "403": _error(forbidden),
        "413": _error(TOO_LARGE),
        "422": _error("URL da imagem num servidor não permitido."),
        "429": _error(LIMITED, RETRY_AFTER),
        "503": _error(UNAVAILABLE, RETRY_AFTER),
    }


def _multipart(schema: Schema, *, regions: bool) -> Schema:
    body: Schema = {"schema": schema}
    if regions:
        body["encoding"] = {"regions": {"contentType": "application/json"}}
    return body


def operations() -> dict[tuple[str, str], Schema]:
    """(path, method) -> the operation's ``requestBody`` and ``responses``."""
    webhook_answers = _receipt_answers(created="Recebido.", forbidden="Token errado (RAIOX_WEBHOOK_TOKEN).")
    webhook_answers["415"] = _error("Tipo de conteúdo não aceito (use JSON ou multipart).")
    return {
        ("/api/match/", "post"): {
            "requestBody": {
                "required": True,
                "content": {"multipart/form-data": _multipart(_ref("MatchForm"), regions=True)},
            },
            "responses": _match_answers(authenticated=True),
        },
        ("/upload", "post"): {
            "requestBody": {
                "required": True,
                "content": {"multipart/form-data": _multipart(_ref("UploadForm"), regions=False)},
            },
            "responses": _match_answers(authenticated=False),
        },
        ("/webhook", "post"): {
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {"schema": _ref("WebhookJSON")},
                    "multipart/form-data": _multipart(_ref("WebhookForm"), regions=True),
                    # Accepted too, for senders that post a form without a file (image_url).
                    "application/x-www-form-urlencoded": _multipart(_ref("WebhookForm"), regions=True),
                },
            },
            "responses": webhook_answers,
        },
        ("/jotform", "post"): {
            "requestBody": {
                "required": True,
                "content": {
                    "multipart/form-data": {"schema": _ref("JotformForm")},
                    "application/x-www-form-urlencoded": {"schema": _ref("JotformPayload")},
                },
            },
            "responses": _receipt_answers(
                created="Recebido; o arquivo será baixado do Jotform.",
                forbidden="Token errado (JOTFORM_WEBHOOK_TOKEN) ou formulário fora de JOTFORM_FORM_IDS.",
            ),
        },
    }
