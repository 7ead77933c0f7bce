"""Readers of the environment: every setting comes through one of these.

An empty variable (``NAME=``) counts as unset: the default applies.
"""

from __future__ import annotations

import os
import re

from django.core.exceptions import ImproperlyConfigured


def env(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    return default if value is None or value == "" else value


def env_bool(name: str, default: bool = False) -> bool:
    value = env(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    value = env(name)
    return default if value is None else int(value)


def env_float(name: str, default: float) -> float:
    value = env(name)
    return default if value is None else float(value)


def env_list(name: str, default: str = "") -> list[str]:
    value = env(name, default) or ""
    return [item.strip() for item in value.split(",") if item.strip()]


def env_rate(name: str, default: str) -> str:
    """A rate "N/period" (period s, m, h or d, optionally multiplied: "30/10m"); "off": no limit."""
    value = env(name, default).strip().lower()
    if value == "off":
        return ""
    if not re.fullmatch(r"\d+/\d*[smhd]", value):
        raise ImproperlyConfigured(f'{name}: expected a rate like "30/10m" or "off", got {value!r}')
    return value
