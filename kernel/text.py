"""The one text rule for what people type and the system shows again: names of dentists, patients,
manufacturers and implants, notes.

- A value is read as NFC and trimmed (``plain``).
- It may not hold control characters (Unicode category Cc: C0 ``\\x00``–``\\x1f``, DEL and C1
  ``\\x80``–``\\x9f``) nor bidirectional overrides and isolates, which reorder what a reader sees
  ("Trojan Source"): no name needs them, and they would reach result cards, e-mails and exports
  invisibly. Such a value is *refused*, not silently cleaned (``has_control``); only a sender's
  file name, which is display-only, is cleaned (``without_controls``).

Intake (``submissions.fields``) refuses with its own ``ApplicationError``; the catalogue
models carry ``validate_plain_text``, so ``full_clean`` in the services, the admin forms and the
catalogue API serializers refuse the same characters.
"""

from __future__ import annotations

import unicodedata

from django.core.exceptions import ValidationError

BIDI_CONTROLS = frozenset(chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A)))

CONTROL_MESSAGE = "Contém caracteres de controle ou de direção de texto invisíveis; escreva apenas texto."


def is_control(ch: str) -> bool:
    return unicodedata.category(ch) == "Cc" or ch in BIDI_CONTROLS


def has_control(value: str) -> bool:
    return any(is_control(ch) for ch in value)


def without_controls(value: str) -> str:
    return "".join(ch for ch in value if not is_control(ch))


def plain(value: str) -> str:
    """NFC, trimmed: how a name is stored and compared."""
    return unicodedata.normalize("NFC", value).strip()


def validate_plain_text(value: str) -> None:
    """Model-field validator: refuses control and bidi characters (``CONTROL_MESSAGE``)."""
    if isinstance(value, str) and has_control(value):
        raise ValidationError(CONTROL_MESSAGE, code="control_characters")
