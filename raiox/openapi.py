"""OpenAPI additions: the plain Django endpoints kept from the old system (webhooks, /upload,
/implants, /healthcheck, the result status) are described here, so /docs lists every endpoint
without wrapping their views in DRF."""

from __future__ import annotations

from copy import deepcopy

ERROR = {
    "type": "object",
    "properties": {
        "error": {"type": "string", "description": "Mensagem em português."},
        "field": {"type": "string", "nullable": True},
        "code": {"type": "string"},
    },
    "required": ["error", "code"],
}


HEALTH = {
    "type": "object",
    "properties": {"status": {"type": "string", "enum": ["ok", "unavailable"]}},
    "required": ["status"],
    "additionalProperties": True,
}


def _json(schema: dict, description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _error(description: str) -> dict:
    return _json({"$ref": "#/components/schemas/LegacyError"}, description)


INTAKE_FIELDS = {
    "nome": {"type": "string", "maxLength": 200, "description": "Nome do dentista."},
    "email": {"type": "string", "format": "email", "description": "E-mail do dentista."},
    "paciente": {"type": "string", "maxLength": 200, "description": "Paciente (opcional)."},
    "dente": {"type": "string", "pattern": "^[1-8][1-8]$", "description": "Dente, notação FDI (ex.: 36)."},
}

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
                    {"type": "array", "items": {"type": "object", "additionalProperties": True}},
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
            "requestBody": {
                "required": True,
                "content": {
                    "multipart/form-data": {
                        "schema": {
                            "type": "object",
                            "properties": {"file": {"type": "string", "format": "binary"}, **INTAKE_FIELDS},
                            "required": ["file"],
                        }
                    }
                },
            },
            "responses": {
                "200": _json({"$ref": "#/components/schemas/MatchResult"}, "Resultado pronto."),
                "202": _json({"$ref": "#/components/schemas/MatchResult"}, "Ainda processando."),
                "400": _error("Entrada inválida."),
                "413": _error("Arquivo grande demais."),
                "422": _json({"$ref": "#/components/schemas/MatchResult"}, "Imagem não processável."),
                "503": _error("Indisponível; tente de novo."),
            },
        }
    },
    "/jotform": {
        "post": {
            "operationId": "jotform_webhook",
            "tags": ["webhooks"],
            "summary": "Webhook do Jotform (o formulário público posta aqui).",
            "description": "Campos do Jotform (`submissionID`, `formID`, `rawRequest` com q<N>_nome, q<N>_email, "
            "q<N>_paciente, q<N>_dente, q<N>_file). Entregas repetidas do mesmo submissionID geram um só envio.",
            "security": [{}],
            "parameters": [
                {"name": "token", "in": "query", "required": False, "schema": {"type": "string"}},
            ],
            "requestBody": {
                "required": True,
                "content": {
                    "multipart/form-data": {
                        "schema": {
                            "type": "object",
                            "properties": {
                                "submissionID": {"type": "string"},
                                "formID": {"type": "string"},
                                "rawRequest": {"type": "string", "description": "JSON com os campos do formulário."},
                            },
                        }
                    },
                    "application/x-www-form-urlencoded": {
                        "schema": {"type": "object", "additionalProperties": {"type": "string"}}
                    },
                },
            },
            "responses": {
                "200": _json({"type": "object", "additionalProperties": True}, "Recebido (ou já recebido)."),
                "302": {"description": "Formulário antigo: redireciona para a página de resultado."},
                "400": _error("Carga malformada."),
                "403": _error("Token ou formulário não autorizado."),
                "503": _error("Indisponível; o Jotform tentará de novo."),
            },
        }
    },
    "/webhook": {
        "post": {
            "operationId": "generic_webhook",
            "tags": ["webhooks"],
            "summary": "Webhook genérico: JSON ou multipart com a imagem (ou sua URL).",
            "security": [{}],
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "properties": {
                                "id": {"type": "string", "description": "Id externo (deduplicação)."},
                                "image_url": {"type": "string", "format": "uri"},
                                **INTAKE_FIELDS,
                            },
                        }
                    },
                    "multipart/form-data": {
                        "schema": {
                            "type": "object",
                            "properties": {"file": {"type": "string", "format": "binary"}, **INTAKE_FIELDS},
                        }
                    },
                },
            },
            "responses": {
                "200": _json({"type": "object", "additionalProperties": True}, "Já recebido."),
                "201": _json({"type": "object", "additionalProperties": True}, "Recebido."),
                "202": _json({"type": "object", "additionalProperties": True}, "Recebido; processando."),
                "400": _error("Entrada inválida."),
                "403": _error("Não autorizado."),
                "413": _error("Arquivo grande demais."),
                "503": _error("Indisponível; tente de novo."),
            },
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


def add_legacy_paths(result: dict, generator, request, public) -> dict:
    """drf-spectacular postprocessing hook: append the plain-Django endpoints."""
    paths = result.setdefault("paths", {})
    for route, operations in LEGACY_PATHS.items():
        paths.setdefault(route, deepcopy(operations))
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas.setdefault("LegacyError", ERROR)
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
