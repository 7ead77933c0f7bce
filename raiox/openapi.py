"""OpenAPI additions: the plain Django endpoints kept from the old system (webhooks, /upload,
/implants, /healthcheck, the result status) are described here, so /docs lists every endpoint
without wrapping their views in DRF. Intake's bodies and answers — ``/webhook``, ``/upload``,
``/jotform`` and ``/api/match/`` alike — come from ``submissions.intake.schema``, generated from
the field specification the code validates with; nothing about their fields is written here."""

from __future__ import annotations

from copy import deepcopy

from submissions.intake import schema as intake_schema

HEALTH = {
    "type": "object",
    "properties": {"status": {"type": "string", "enum": ["ok", "unavailable"]}},
    "required": ["status"],
    "additionalProperties": True,
}


def _json(schema: dict, description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


LEGACY_PATHS: dict[str, dict] = {
    "/healthcheck": {
        "get": {
            "operationId": "healthcheck",
            "tags": ["sistema"],
            "summary": "Estado do serviço (banco, pgvector, armazenamento, fila).",
            "description": (
                'Ao público, só {"status": "ok" | "unavailable"}. Os detalhes (failing, warnings, checks) '
                "vão a quem pode ler /metrics (token Bearer RAIOX_METRICS_TOKEN ou endereço em "
                "RAIOX_METRICS_ALLOWED_IPS) e à equipe logada."
            ),
            "security": [{}],
            "responses": {
                "200": _json(HEALTH, "Tudo funcionando."),
                "503": _json(HEALTH, "Algum componente fora do ar."),
            },
        }
    },
    "/implants": {
        "get": {
            "operationId": "legacy_implants_list",
            "tags": ["legado"],
            "summary": "Lista de implantes do catálogo (formato do sistema antigo).",
            "security": [{}],
            "responses": {
                "200": _json(
                    {
                        "type": "object",
                        "required": ["count", "implants"],
                        "properties": {
                            "count": {"type": "integer"},
                            "implants": {"type": "array", "items": {"type": "object", "additionalProperties": True}},
                        },
                    },
                    "Implantes ativos com fabricante e imagem de referência.",
                )
            },
        }
    },
    "/upload": {
        "post": {
            "operationId": "legacy_upload",
            "tags": ["legado"],
            "summary": "Envio de radiografia (formato do sistema antigo); igual a POST /api/match/.",
            "security": [{}],
        }
    },
    "/jotform": {
        "post": {
            "operationId": "jotform_webhook",
            "tags": ["webhooks"],
            "summary": "Webhook do Jotform (o formulário público posta aqui).",
            "description": "O Jotform posta `submissionID`, `formID` e `rawRequest`; o formulário antigo, o "
            "arquivo e as respostas como campos. Entregas repetidas do mesmo submissionID geram um só envio.",
            "security": [{}],
            "parameters": [
                {"name": "token", "in": "query", "required": False, "schema": {"type": "string"}},
            ],
        }
    },
    "/webhook": {
        "post": {
            "operationId": "generic_webhook",
            "tags": ["webhooks"],
            "summary": "Webhook genérico: JSON ou multipart com a imagem (ou sua URL).",
            "description": "O token (RAIOX_WEBHOOK_TOKEN), quando configurado: `Authorization: Bearer <token>` "
            "ou `?token=`.",
            "security": [{}],
            "parameters": [
                {"name": "token", "in": "query", "required": False, "schema": {"type": "string"}},
            ],
        }
    },
    "/r/{token}/status.json": {
        "get": {
            "operationId": "result_status",
            "tags": ["legado"],
            "summary": "Situação de um envio pelo seu token (a página de resultado a consulta).",
            "security": [{}],
            "parameters": [
                {"name": "token", "in": "path", "required": True, "schema": {"type": "string", "format": "uuid"}}
            ],
            "responses": {
                "200": _json({"type": "object", "additionalProperties": True}, "Situação do envio."),
                "404": {"description": "Token desconhecido."},
            },
        }
    },
}


PAGINATION_PARAMETERS = {"page", "page_size"}


def _document_filter_refusals(paths: dict) -> None:
    """A list with filters (django-filter, ``kernel.filters``) answers a value a filter cannot take
    with 400 and the error body: say so on each of them."""
    for route, operations in paths.items():
        operation = operations.get("get")
        if not route.startswith("/api/") or operation is None:
            continue
        names = {p["name"] for p in operation.get("parameters", []) if p.get("in") == "query"}
        if names - PAGINATION_PARAMETERS:
            operation["responses"].setdefault(
                "400",
                {
                    "description": "Um filtro com valor que ele não aceita: `field` diz qual.",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
                },
            )


def add_legacy_paths(result: dict, generator, request, public) -> dict:
    """drf-spectacular postprocessing hook: append the plain-Django endpoints, and give every
    intake operation (these and ``POST /api/match/``) its body and answers from the intake spec."""
    paths = result.setdefault("paths", {})
    for route, operations in LEGACY_PATHS.items():
        paths.setdefault(route, deepcopy(operations))
    for (route, method), described in intake_schema.operations().items():
        operation = paths.get(route, {}).get(method)
        if operation is not None:  # absent from a schema generated for part of the API
            operation.update(described)
    _document_filter_refusals(paths)
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas.update(intake_schema.components())
    tags = result.setdefault("tags", [])
    known = {t["name"] for t in tags}
    for name, description in (
        ("webhooks", "Entradas do Jotform e de outros sistemas."),
        ("legado", "Endpoints do sistema antigo, mantidos com o mesmo formato."),
        ("sistema", "Saúde do serviço."),
    ):
        if name not in known:
            tags.append({"name": name, "description": description})
    return result
