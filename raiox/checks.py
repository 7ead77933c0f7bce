"""System checks for production settings and for the worker's model.

``manage.py`` commands run the system checks before they start, ``qcluster`` included: a worker
started without real CLIP weights (and without the explicit development override) stops right
there with the reason, instead of answering dentists with an untrained model.
"""

from __future__ import annotations

import sys

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register

# matching.search filters through the HNSW index with iterative scans (hnsw.iterative_scan),
# which pgvector added in 0.8; 0.8.2 and 0.8.3 fix HNSW build and vacuum bugs.
MIN_PGVECTOR = (0, 8)


def pgvector_supported(version: str) -> bool:
    """True for pgvector ``version`` (e.g. "0.8.6") at least MIN_PGVECTOR."""
    try:
        return tuple(int(part) for part in version.split(".")[:2]) >= MIN_PGVECTOR
    except ValueError:
        return False


@register(Tags.database)
def check_pgvector_version(app_configs=None, databases=None, **kwargs) -> list:
    """Run by `migrate` (and `check --database default`): the server must offer pgvector >= 0.8.
    It reads what the server can install, not what is installed, so `migrate` can still run
    implants' ALTER EXTENSION vector UPDATE on a database created under an older pgvector."""
    if not databases:
        return []
    from django.db import connections

    errors = []
    for alias in databases:
        with connections[alias].cursor() as cursor:
            cursor.execute("SELECT default_version FROM pg_available_extensions WHERE name = 'vector'")
            row = cursor.fetchone()
        if row is None or not pgvector_supported(row[0]):
            errors.append(
                Error(
                    f"Database {alias!r}: pgvector {row[0] if row else 'is not available'}; Raiox needs 0.8 or newer.",
                    hint="Managed PostgreSQL: pick a version offering pgvector 0.8 (PostgreSQL 17/18 do). "
                    "Own server: install pgvector 0.8.x (e.g. postgresql-18-pgvector).",
                    id="raiox.E003",
                )
            )
    return errors


def _running_worker() -> bool:
    return len(sys.argv) > 1 and sys.argv[1] == "qcluster"


# Secrets deploy/env.example ships as "replace-me-…" placeholders: left as they are, anyone who
# read the example could forge sessions, webhook deliveries or dentists' folder names.
SECRET_SETTINGS = (
    "SECRET_KEY",
    "RAIOX_CLIENT_ID_KEY",
    "JOTFORM_WEBHOOK_TOKEN",
    "RAIOX_WEBHOOK_TOKEN",
    "RAIOX_METRICS_TOKEN",
    "JOTFORM_API_KEY",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "EMAIL_HOST_PASSWORD",
)
PLACEHOLDER = "replace-me"


@register(Tags.security, deploy=True)
def check_webhook_tokens(app_configs=None, **kwargs) -> list:
    """Without its token a webhook accepts deliveries from anyone who finds its URL (and a repeated
    delivery would tell them about the first one): both are required in production."""
    if not settings.IS_PRODUCTION:
        return []
    errors = []
    if not settings.JOTFORM_WEBHOOK_TOKEN:
        errors.append(
            Error(
                "JOTFORM_WEBHOOK_TOKEN is not set: anyone who finds /jotform can post submissions.",
                hint="Set JOTFORM_WEBHOOK_TOKEN and add ?token=<it> to the webhook URL in Jotform.",
                id="raiox.E003",
            )
        )
    if not settings.RAIOX_WEBHOOK_TOKEN:
        errors.append(
            Error(
                "RAIOX_WEBHOOK_TOKEN is not set: anyone who finds /webhook can post submissions.",
                hint="Set RAIOX_WEBHOOK_TOKEN and give it to the integrating system (Authorization: Bearer <it>).",
                id="raiox.E004",
            )
        )
    return errors


def _setting_value(name: str) -> str:
    if name in {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}:
        # Read from the environment: the storage options hold them under other names.
        import os

        return os.environ.get(name, "")
    return str(getattr(settings, name, "") or "")


@register(Tags.security, deploy=True)
def check_no_placeholder_secrets(app_configs=None, **kwargs) -> list:
    if not settings.IS_PRODUCTION:
        return []
    return [
        Error(
            f"{name} still reads '{PLACEHOLDER}…', the placeholder of deploy/env.example.",
            hint=f"Set {name} to a random value: python -c 'import secrets; print(secrets.token_urlsafe(48))'",
            id="raiox.E005",
        )
        for name in SECRET_SETTINGS
        if PLACEHOLDER in _setting_value(name).lower()
    ]


@register()
def check_untrained_model_not_allowed_in_production(app_configs=None, **kwargs) -> list:
    if settings.IS_PRODUCTION and settings.RAIOX_ALLOW_UNTRAINED_MODEL:
        return [
            Error(
                "RAIOX_ALLOW_UNTRAINED_MODEL is set in production: results would be meaningless.",
                hint="Remove it and install the CLIP weights with `python manage.py fetch_model`.",
                id="raiox.E001",
            )
        ]
    return []


@register()
def check_worker_model(app_configs=None, **kwargs) -> list:
    """Only when this process is a worker: the weights it would load must exist (or be allowed)."""
    if not _running_worker():
        return []
    from matching.embedder import WeightsUnavailable, resolve_spec

    try:
        spec = resolve_spec()
    except WeightsUnavailable as exc:
        return [Error(str(exc), id="raiox.E002")]
    if spec.untrained:
        return [
            Warning(
                f"The worker runs {spec.model_id}: UNTRAINED weights (RAIOX_ALLOW_UNTRAINED_MODEL=1).",
                hint="Development only: results are not meaningful.",
                id="raiox.W002",
            )
        ]
    return []
