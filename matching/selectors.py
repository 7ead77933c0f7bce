"""Reads of matching results for web processes. Nothing here imports torch or open_clip."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.utils import timezone

from matching.models import WorkerState
from submissions.results import is_convincing, no_convincing_match  # noqa: F401  (one definition, re-exported)

# A worker that has not been heard of for this long is reported as gone.
WORKER_STALE_AFTER = timedelta(minutes=10)


@dataclass(frozen=True)
class ModelState:
    model_id: str
    untrained: bool
    device: str
    last_seen: datetime
    workers_alive: int

    @property
    def alive(self) -> bool:
        return self.workers_alive > 0


def model_state() -> ModelState | None:
    """What the most recently seen worker runs; None before any worker has built its model.

    Pages show the "untrained model" banner from ``untrained``; the healthcheck and the dashboard
    report ``model_id``, ``device`` and whether workers are alive.
    """
    latest = WorkerState.objects.order_by("-last_seen").first()
    if latest is None:
        return None
    alive = WorkerState.objects.filter(last_seen__gte=timezone.now() - WORKER_STALE_AFTER).count()
    return ModelState(
        model_id=latest.model_id,
        untrained=latest.untrained,
        device=latest.device,
        last_seen=latest.last_seen,
        workers_alive=alive,
    )
