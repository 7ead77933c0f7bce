"""Outgoing e-mail: SMTP in production, the console on a developer's machine."""

from __future__ import annotations

from raiox.settings.base import IS_PRODUCTION
from raiox.settings.env import env, env_bool, env_int

EMAIL_BACKEND = env(
    "EMAIL_BACKEND",
    "django.core.mail.backends.smtp.EmailBackend"
    if IS_PRODUCTION
    else "django.core.mail.backends.console.EmailBackend",
)
EMAIL_HOST = env("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 587)
EMAIL_HOST_USER = env("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", True)
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", "Raiox AI <nao-responda@raiox.ai>")
# For the file backend (browser tests read what the worker "sent" from this folder).
if env("EMAIL_FILE_PATH", ""):
    EMAIL_FILE_PATH = env("EMAIL_FILE_PATH", "")
