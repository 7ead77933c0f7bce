"""The queue's facts, asked in one place (``kernel.queue``): which tasks wait, which are taken, and
the Q_CLUSTER limits; ``POST /upload``'s "busy" check and the health/metrics queue state read them."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone
from django_q.conf import Conf
from django_q.models import OrmQ

from kernel.queue import max_attempts, queue_in_database, queued_tasks, task_timeout, waiting_tasks
from matching.state import queue_state
from submissions.intake.form import queue_is_busy


@pytest.mark.django_db
def test_a_task_taken_by_a_worker_is_queued_but_not_waiting(settings):
    now = timezone.now()
    waiting = OrmQ.objects.create(key=Conf.CLUSTER_NAME, payload="w", lock=now - dt.timedelta(seconds=30))
    OrmQ.objects.create(key=Conf.CLUSTER_NAME, payload="t", lock=now + dt.timedelta(seconds=180))  # taken

    assert queue_in_database()
    assert queued_tasks().count() == 2
    assert list(waiting_tasks()) == [waiting]
    # The readers agree with it: the oldest waiting task, and "busy" only past the limits.
    assert queue_state().oldest_enqueued_at == waiting.lock
    settings.RAIOX_UPLOAD_BUSY_QUEUE_DEPTH = 2
    settings.RAIOX_UPLOAD_WAIT_SECONDS = 60
    assert not queue_is_busy()
    settings.RAIOX_UPLOAD_BUSY_QUEUE_DEPTH = 1
    assert queue_is_busy()


def test_the_limits_are_read_from_the_settings_at_each_call(settings):
    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "timeout": 7, "max_attempts": 3}
    assert (task_timeout(), max_attempts()) == (7, 3)
    settings.Q_CLUSTER = {k: v for k, v in settings.Q_CLUSTER.items() if k not in ("timeout", "max_attempts")}
    assert (task_timeout(), max_attempts()) == (120, 1)
