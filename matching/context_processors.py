"""``system_state`` in every template (settings.TEMPLATES): the workers' model and the queue, read
only when a template uses them (``matching.state.SystemState`` is lazy).

This is how a page of an app below ``matching`` (the result page in ``submissions``) shows the
"untrained model" banner without importing ``matching``: the project's settings wire it in."""

from __future__ import annotations

from django.http import HttpRequest

from matching.state import SystemState


def system_state(request: HttpRequest) -> dict[str, SystemState]:
    return {"system_state": SystemState()}
