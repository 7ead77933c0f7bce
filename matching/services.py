"""Writes of the matching app: the state of the worker processes (which model they run)."""

from __future__ import annotations

import os
import socket

from django.db import transaction
from django.utils import timezone

from matching.models import WorkerState


@transaction.atomic
def worker_state_record(*, model_id: str, untrained: bool, device: str, build_seconds: float = 0.0) -> WorkerState:
    """Called by a worker when it has built its model (and to say it is still alive)."""
    now = timezone.now()
    state, _ = WorkerState.objects.update_or_create(
        hostname=socket.gethostname()[:255],
        pid=os.getpid(),
        defaults={
            "model_id": model_id,
            "untrained": untrained,
            "device": device,
            "build_seconds": build_seconds,
            "last_seen": now,
        },
        create_defaults={
            "model_id": model_id,
            "untrained": untrained,
            "device": device,
            "build_seconds": build_seconds,
            "started_at": now,
            "last_seen": now,
        },
    )
    return state


def worker_state_touch() -> bool:
    """A cheap heartbeat: the dashboard tells live workers from dead ones by last_seen. False when
    this process has no row (then the caller records it again)."""
    return bool(
        WorkerState.objects.filter(hostname=socket.gethostname()[:255], pid=os.getpid()).update(
            last_seen=timezone.now()
        )
    )
