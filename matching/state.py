"""The system-state reader: which model the workers run, whether it is untrained, whether they are
alive, and the task queue (depth, oldest waiting task). The one place these are computed; read by
``/healthcheck`` and ``/metrics`` (``raiox.health``, ``raiox.metrics``), the staff dashboard
(``raiox.dashboard``) and the dentist's "untrained model" banner (``system_state`` in every template,
from ``matching.context_processors``).

Web processes read it and never load torch: nothing here imports the embedder. The workers write
what they run into ``WorkerState`` (``matching.workers.worker_embedder``: once when the model is
built, then as a heartbeat), with an ``untrained`` flag set from the weights they actually loaded,
so no reader guesses from a model id.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import cached_property

from django.conf import settings
from django.db.models import Count, Q
from django.utils import timezone

from implants.models import ReferenceImage
from kernel.queue import waiting_tasks
from matching.models import WorkerState

# A worker that has not been heard of for this long is reported as gone (the heartbeat is 60 s;
# a worker busy on one long task does not beat, hence the margin).
WORKER_STALE_AFTER = dt.timedelta(minutes=10)


@dataclass(frozen=True)
class ModelState:
    model_id: str | None  # None: no worker has reported a model yet
    untrained: bool
    device: str | None
    last_seen: dt.datetime | None
    workers_alive: int
    reference_images: int  # the catalogue's reference images...
    reference_images_embedded: int  # ...and how many of them this model has embedded (searchable)

    @property
    def alive(self) -> bool:
        return self.workers_alive > 0


def model_state() -> ModelState:
    """What the most recently seen worker runs, and how much of the catalogue it can search."""
    latest = WorkerState.objects.order_by("-last_seen").first()
    alive = WorkerState.objects.filter(last_seen__gte=timezone.now() - WORKER_STALE_AFTER).count()
    model_id = latest.model_id if latest else None
    coverage = ReferenceImage.objects.aggregate(
        total=Count("pk"), embedded=Count("pk", filter=Q(embedding_model=model_id, embedding__isnull=False))
    )
    return ModelState(
        model_id=model_id,
        untrained=bool(latest and latest.untrained),
        device=latest.device if latest else None,
        last_seen=latest.last_seen if latest else None,
        workers_alive=alive,
        reference_images=coverage["total"],
        reference_images_embedded=coverage["embedded"] if model_id else 0,
    )


@dataclass(frozen=True)
class QueueState:
    broker: str
    waiting: int  # queued, not yet taken by a worker
    running: int | None  # taken by a worker, not finished (None: the broker cannot tell)
    oldest_enqueued_at: dt.datetime | None  # the oldest waiting task (ORM broker only)
    oldest_task: str = ""  # its function's dotted path

    @property
    def oldest_age_seconds(self) -> float | None:
        if self.oldest_enqueued_at is None:
            return None
        return round((timezone.now() - self.oldest_enqueued_at).total_seconds(), 1)

    @property
    def stuck(self) -> bool:
        """The oldest waiting task has waited longer than ``RAIOX_QUEUE_MAX_AGE_SECONDS``."""
        age = self.oldest_age_seconds
        return age is not None and age > settings.RAIOX_QUEUE_MAX_AGE_SECONDS


def queue_state() -> QueueState:
    """Tasks waiting, tasks being worked on, and the oldest waiting one."""
    from django_q.brokers import get_broker

    broker = get_broker()
    oldest_at, oldest_task = None, ""
    waiting = waiting_tasks()
    if waiting is not None:
        oldest = waiting.order_by("lock", "id").first()
        if oldest is not None:
            oldest_at = oldest.lock
            oldest_task = str(oldest.task.get("func", "")) if isinstance(oldest.task, dict) else ""
    return QueueState(
        broker=type(broker).__name__,
        waiting=broker.queue_size(),
        running=broker.lock_size(),
        oldest_enqueued_at=oldest_at,
        oldest_task=oldest_task,
    )


class SystemState:
    """Both, read on demand: each part queries the database the first time it is used, so a page
    that never shows the queue never counts it."""

    @cached_property
    def model(self) -> ModelState:
        return model_state()

    @cached_property
    def queue(self) -> QueueState:
        return queue_state()

    @property
    def untrained(self) -> bool:
        """Results come from untrained weights: every page that shows a result says so."""
        return self.model.untrained


def system_state() -> SystemState:
    return SystemState()
