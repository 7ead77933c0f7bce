"""Field rules shared by the model, the upload form's HTML and every intake adapter.

The intake specification (``submissions.fields``) applies them with its messages; the
model keeps them as validators so that any other write (admin) obeys the same rule.
"""

from __future__ import annotations

import re

from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

# FDI two-digit notation, the one rule: permanent teeth 11–18, 21–28, 31–38, 41–48 (quadrants
# 1–4, teeth 1–8) and deciduous 51–55, 61–65, 71–75, 81–85 (quadrants 5–8, teeth 1–5); nothing
# else. Also the upload form's HTML ``pattern`` and the webhook schema's.
FDI_TOOTH_PATTERN = "[1-4][1-8]|[5-8][1-5]"
FDI_TOOTH_MESSAGE = _(
    "Dente inválido: use a notação FDI de dois dígitos (11–18, 21–28, 31–38, 41–48; decíduos 51–55, 61–65, "
    "71–75, 81–85)."
)
_FDI_TOOTH = re.compile(f"(?:{FDI_TOOTH_PATTERN})")


def is_fdi_tooth(value: str) -> bool:
    return _FDI_TOOTH.fullmatch(value) is not None


def validate_fdi_tooth(value: str) -> None:
    if value and not is_fdi_tooth(value):
        raise ValidationError(FDI_TOOTH_MESSAGE, code="invalid_tooth")
