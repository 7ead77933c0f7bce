"""The workers' state: which model each worker process runs, recorded in ``WorkerState`` for the
web processes (which never load torch) to read through ``matching.state``, and its heartbeat."""

from __future__ import annotations

import os
import socket
import time

from django.db import transaction
from django.utils import timezone

from matching.embedder import Embedder, get_embedder
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


HEARTBEAT_SECONDS = 60.0

_state_recorded_at: float | None = None
_state_model_id: str | None = None  # the model id last recorded (a switch records the new one)


def worker_embedder() -> Embedder:
    """The process's model, recorded in the database (once, then as a heartbeat) so that web
    processes, which never load torch, can tell which model answers and whether it is untrained."""
    global _state_recorded_at, _state_model_id
    embedder = get_embedder()
    now = time.monotonic()
    # The heartbeat re-creates the row if it was removed (e.g. the table was cleared by staff).
    if (
        _state_recorded_at is None
        or _state_model_id != embedder.model_id
        or (now - _state_recorded_at > HEARTBEAT_SECONDS and not worker_state_touch())
    ):
        worker_state_record(
            model_id=embedder.model_id,
            untrained=embedder.untrained,
            device=embedder.device,
            build_seconds=embedder.build_seconds,
        )
        _state_recorded_at, _state_model_id = now, embedder.model_id
    elif now - _state_recorded_at > HEARTBEAT_SECONDS:
        _state_recorded_at = now
    return embedder
