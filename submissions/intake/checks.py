"""System check: production without a Jotform webhook token accepts deliveries from anyone."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import Tags, Warning, register


@register(Tags.security)
def jotform_token_check(app_configs: Any = None, **kwargs: Any) -> list[Warning]:
    if getattr(settings, "IS_PRODUCTION", False) and not settings.JOTFORM_WEBHOOK_TOKEN:
        return [
            Warning(
                "JOTFORM_WEBHOOK_TOKEN is unset: POST /jotform accepts deliveries from anyone.",
                hint="Set JOTFORM_WEBHOOK_TOKEN and add ?token=<it> to the webhook URL in Jotform.",
                id="raiox.W001",
            )
        ]
    return []
