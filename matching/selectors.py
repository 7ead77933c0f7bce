"""Reads of matching results for web processes. Nothing here imports torch or open_clip."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from matching.models import WorkerState

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


def is_convincing(similarity: float | None) -> bool:
    """Whether a similarity is high enough to be shown as an answer (RAIOX_MIN_SIMILARITY)."""
    return similarity is not None and float(similarity) >= settings.RAIOX_MIN_SIMILARITY


def no_convincing_match(submission) -> bool:
    """True when a finished submission's best candidate is below the relevance cut-off (or there
    is none): the page then says "no convincing match" rather than showing arbitrary implants.
    Derived from the stored Matches, never stored itself, so changing the setting applies at once."""
    if submission.status != "done":
        return False
    best = submission.matches.order_by("rank").values_list("similarity", flat=True).first()
    return not is_convincing(best)
