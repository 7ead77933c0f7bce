"""The one JSON parser of every request body, with bounds: no body can make it recurse, allocate
without end or hand a huge number to the code behind it.

``parse_json`` is used by every endpoint that reads JSON: DRF's views (``BoundedJSONParser``, the
``DEFAULT_PARSER_CLASSES`` of ``REST_FRAMEWORK`` and the token view's), the generic webhook's
body, Jotform's ``rawRequest`` and a ``regions`` field sent as a JSON string. Python's ``json``
alone turns 200 000 nested ``[`` into a ``RecursionError`` (a 500), and a 400-digit number into an
``int`` that ``float()`` cannot hold (an ``OverflowError`` later). The caps, each refused with a
400 ``{"error","field","code":"invalid_json"}`` in Portuguese before or while parsing:

- ``JSON_MAX_CONTAINERS`` (10 000): ``[`` and ``{`` in the whole body, counted at C speed before
  parsing (brackets inside strings count too: no request of ours needs that many). It bounds the
  memory the parsed structure can take and the cost of the depth walk below;
- ``JSON_MAX_DEPTH`` (32): how deeply arrays and objects nest (our deepest body, Jotform's
  ``rawRequest``, nests 3);
- ``JSON_MAX_NUMBER_DIGITS`` (20): characters in one number literal (a 64-bit integer); NaN and
  Infinity are refused too. Numeric fields are still checked against their own bounds where they
  are read (``submissions/regions.py`` for the pixel coordinates).
"""

from __future__ import annotations

import json
from typing import Any

from rest_framework.parsers import JSONParser

from kernel.errors import ApplicationError

JSON_MAX_CONTAINERS = 10_000
JSON_MAX_DEPTH = 32
JSON_MAX_NUMBER_DIGITS = 20


def invalid_json(field: str | None = None, detail: str = "", *, code: str = "invalid_json") -> ApplicationError:
    message = "Corpo JSON inválido." if field is None else f"{field} não é um JSON válido."
    return ApplicationError(f"{message} {detail}".strip(), field=field, code=code)


def _number(kind: type):
    def parse(literal: str) -> int | float:
        if len(literal) > JSON_MAX_NUMBER_DIGITS:
            raise _Refused(f"Número grande demais (mais de {JSON_MAX_NUMBER_DIGITS} dígitos).")
        value = kind(literal)
        if value in (float("inf"), float("-inf")):
            raise _Refused("Número grande demais.")
        return value

    return parse


def _constant(literal: str) -> None:
    raise _Refused("NaN e Infinity não são JSON.")


class _Refused(ValueError):
    pass


def _depth_within(value: Any, limit: int) -> bool:
    """Whether ``value`` nests at most ``limit`` containers deep (iterative: no recursion)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return False
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return True


def parse_json(text: str | bytes, *, field: str | None = None, code: str = "invalid_json") -> Any:
    """``text`` parsed as JSON within the module's caps; ``ApplicationError`` (400, ``code``,
    naming ``field``) for anything else."""
    if isinstance(text, bytes | bytearray):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise invalid_json(field, "Use UTF-8.", code=code) from exc
    if text.count("[") + text.count("{") > JSON_MAX_CONTAINERS:
        detail = f"Estrutura grande demais (mais de {JSON_MAX_CONTAINERS} listas e objetos)."
        raise invalid_json(field, detail, code=code)
    try:
        value = json.loads(text, parse_int=_number(int), parse_float=_number(float), parse_constant=_constant)
    except _Refused as exc:
        raise invalid_json(field, str(exc), code=code) from exc
    except (ValueError, RecursionError) as exc:
        # RecursionError: nesting past the interpreter's limit (the depth rule below, met early).
        raise invalid_json(field, code=code) from exc
    if not _depth_within(value, JSON_MAX_DEPTH):
        raise invalid_json(field, f"Aninhamento profundo demais (máximo {JSON_MAX_DEPTH} níveis).", code=code)
    return value


class BoundedJSONParser(JSONParser):
    """DRF's JSON parser through ``parse_json``: the same caps and the same 400 as every other
    endpoint (``kernel.errors.api_exception_handler`` answers the ``ApplicationError``)."""

    def parse(self, stream, media_type=None, parser_context=None) -> Any:
        return parse_json(stream.read() if stream is not None else b"")
