"""The API lists' query-string filters, through django-filter (``DjangoFilterBackend``, the
default filter backend): each list view names its ``FilterSet``, drf-spectacular documents its
parameters, and a value the filter cannot take is a 400 naming the parameter
(``{"error", "field", "code"}``, ``kernel.errors``) — never silently ignored, never a server error.

django-filter's own boolean filter reads anything but true/false as "no filter"; ours refuses it.
"""

from __future__ import annotations

import django_filters
from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

TRUE_VALUES = frozenset({"true", "1"})
FALSE_VALUES = frozenset({"false", "0"})


class StrictBooleanField(forms.NullBooleanField):
    """``true``/``false`` (or ``1``/``0``, any case); absent or blank is no filter; anything else is refused."""

    widget = forms.TextInput  # the raw value: the select widgets map what they do not know to None

    def to_python(self, value: object) -> bool | None:
        if value is None or value == "":
            return None
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in TRUE_VALUES:
            return True
        if text in FALSE_VALUES:
            return False
        raise ValidationError(_("Valor inválido: use true ou false."), code="invalid")

    def validate(self, value: object) -> None:
        pass  # optional: None is no filter


class BooleanFilter(django_filters.BooleanFilter):
    field_class = StrictBooleanField


class IsoDateFilter(django_filters.DateFilter):
    """A date as ``AAAA-MM-DD`` only (what the schema documents), whatever the locale's formats."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("input_formats", ["%Y-%m-%d"])
        kwargs.setdefault("error_messages", {"invalid": _("Data inválida (use AAAA-MM-DD).")})
        super().__init__(*args, **kwargs)
