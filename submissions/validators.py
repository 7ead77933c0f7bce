"""Field validators shared by the model, the forms and every intake adapter."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

# FDI two-digit notation: quadrant 1-4 (permanent, teeth 1-8) and 5-8 (deciduous, teeth 1-5).
PERMANENT_QUADRANTS = {1, 2, 3, 4}
DECIDUOUS_QUADRANTS = {5, 6, 7, 8}


def is_fdi_tooth(value: str) -> bool:
    if len(value) != 2 or not value.isdigit():
        return False
    quadrant, tooth = int(value[0]), int(value[1])
    if quadrant in PERMANENT_QUADRANTS:
        return 1 <= tooth <= 8
    if quadrant in DECIDUOUS_QUADRANTS:
        return 1 <= tooth <= 5
    return False


def validate_fdi_tooth(value: str) -> None:
    if value and not is_fdi_tooth(value):
        raise ValidationError(
            _("Dente inválido: use a notação FDI de dois dígitos (11–18, 21–28, 31–38, 41–48 ou 51–85)."),
            code="invalid_tooth",
        )
