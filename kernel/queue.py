"""The task queue's hand-offs: work queued in the caller's transaction, a worker woken by the
database instead of polling it, and a web request woken when a result is recorded.

The queue is django-q2's ORM broker: each task is a row of ``django_q_ormq`` in our PostgreSQL.
Measured on ``POST /upload`` (bench/e2e.py, bench/RESULTS.md issue 15), about half of the answer
was hand-off: the worker's pusher slept ``poll`` seconds between empty queue reads, and the web
process re-read the submission every 50 ms while it waited. PostgreSQL's LISTEN/NOTIFY removes both
waits without reading the database more often:

- ``NotifyingORMBroker`` (``Q_CLUSTER["broker_class"]``) inserts the task row and sends
  ``pg_notify`` in one statement. A NOTIFY sent inside a transaction is delivered when it commits
  (never for a rollback), so the worker is woken exactly when the row becomes visible to it. The
  pusher LISTENs on its own connection and waits on it instead of sleeping; ``poll`` stays as the
  longest wait without a notification, which still finds tasks whose retry lock expired (nobody
  notifies those) and keeps the queue working where notifications cannot arrive (PgBouncer in
  transaction mode forwards no LISTEN: there ``RAIOX_DB_LISTEN = False`` turns listening off, and
  the worker and the waiting requests simply poll).
- ``enqueue_on_commit`` queues a task so that it exists exactly when the caller's transaction
  commits: with the ORM broker the task row is written *in* that transaction (one commit for the
  submission and its task: no window where a committed submission has no task, or a task points at
  a row that was rolled back); with any other broker (Redis) it is sent after the commit.
- ``notify`` and ``notifications`` are the same mechanism for any other wake-up (the result of a
  submission, waited for by ``POST /upload``).
"""

from __future__ import annotations

import contextlib
import logging
import re
import time
from collections.abc import Callable, Iterator

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.module_loading import import_string
from django_q.brokers.orm import ORM
from django_q.conf import Conf
from django_q.models import OrmQ
from django_q.tasks import async_task

logger = logging.getLogger(__name__)

# NOTIFY channel announcing a finished submission (payload: its id): sent by the worker when it
# records a result, waited on by POST /upload and by a worker waiting out another one's batch.
RESULT_CHANNEL = "submission_result"

# How long the pusher waits before trying again to open its listening connection after it failed.
LISTEN_RETRY_SECONDS = 5.0


def listening() -> bool:
    """Whether wake-ups are listened for (``RAIOX_DB_LISTEN``; off behind PgBouncer in transaction
    mode). NOTIFYs are still sent: they cost nothing where nobody listens."""
    return getattr(settings, "RAIOX_DB_LISTEN", True)


def channel_name(name: str) -> str:
    """A NOTIFY channel for ``name``: a plain lower-case identifier (no quoting needed)."""
    return ("raiox_" + re.sub(r"[^a-z0-9_]", "_", name.lower()))[:63]


class NotifyingORMBroker(ORM):
    """django-q2's ORM broker, woken by NOTIFY when a task is queued instead of sleeping ``poll``."""

    @property
    def channel(self) -> str:
        return channel_name(f"queue_{self.list_key}")

    def enqueue(self, task: str) -> int:
        connection = connections[Conf.ORM]
        if connection.vendor != "postgresql":
            return super().enqueue(task)
        self.get_connection()  # django-q's stale-connection check outside transactions
        table = connection.ops.quote_name(OrmQ._meta.db_table)
        with connection.cursor() as cursor:
            # One statement: the row and the wake-up (payload: the task's id), both part of the caller's
            # transaction if any.
            cursor.execute(
                f'WITH task AS (INSERT INTO {table} ("key", "payload", "lock") VALUES (%s, %s, %s) '  # noqa: S608
                'RETURNING "id") SELECT "id", pg_notify(%s, "id"::text) FROM task',
                [self.list_key or Conf.CLUSTER_NAME, task, timezone.now(), self.channel],
            )
            return cursor.fetchone()[0]

    def dequeue(self):
        listener = self._listener()  # LISTEN before reading: a task queued after the read wakes us
        tasks = self._take()
        if tasks:
            return tasks
        self._wait(listener, Conf.POLL)
        return None

    def _take(self) -> list[tuple[int, str]]:
        """django-q's ORM dequeue without its sleep: lock up to ``bulk`` tasks that are due."""
        taken = []
        for task in self.get_connection().filter(key=self.list_key, lock__lt=timezone.now())[: Conf.BULK]:
            if self.get_connection().filter(id=task.id, lock=task.lock).update(lock=self.timeout(task)):
                taken.append((task.pk, task.payload))
            # else another cluster took it first
        return taken

    def _listener(self):
        """The pusher's own autocommit connection, LISTENing on the queue's channel; None (sleep
        instead) when it cannot be opened, tried again after LISTEN_RETRY_SECONDS."""
        if not listening():
            return None
        listener = getattr(self, "_listen_conn", None)
        if listener is not None and not listener.closed:
            return listener
        if time.monotonic() < getattr(self, "_listen_retry_at", 0.0):
            return None
        try:
            listener = _open_listener(self.channel)
        except Exception as exc:  # database down: the pusher's own read fails and django-q restarts it
            logger.warning("queue: cannot listen for new tasks (%s); polling", type(exc).__name__)
            self._listen_retry_at = time.monotonic() + LISTEN_RETRY_SECONDS
            listener = None
        self._listen_conn = listener
        return listener

    def _wait(self, listener, timeout: float) -> None:
        if listener is None:
            time.sleep(timeout)
            return
        try:
            if _wait_for(listener, timeout):
                _drain(listener)  # one wake-up for a burst of tasks: the read takes them all
        except Exception as exc:
            logger.warning("queue: listening connection lost (%s); reconnecting", type(exc).__name__)
            with contextlib.suppress(Exception):
                listener.close()
            self._listen_conn = None
            time.sleep(timeout)


def _open_listener(channel: str):
    wrapper = connections[Conf.ORM]
    conn = wrapper.get_new_connection(wrapper.get_connection_params())
    conn.autocommit = True
    conn.execute(f"LISTEN {channel}")
    return conn


def _wait_for(conn, timeout: float, payload: str | None = None) -> bool:
    """Wait up to ``timeout`` seconds for a notification (with ``payload``, if given)."""
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        for note in conn.notifies(timeout=remaining, stop_after=1):
            if payload is None or note.payload == payload:
                return True


def _drain(conn) -> None:
    for _ in conn.notifies(timeout=0):
        pass


def queue_in_database() -> bool:
    """Whether queued tasks are rows of the default database (the ORM broker, ours or django-q's),
    decided as ``django_q.brokers.get_broker`` decides, without opening a broker."""
    if Conf.BROKER_CLASS:
        in_database = issubclass(import_string(Conf.BROKER_CLASS), ORM)
    else:
        in_database = bool(Conf.ORM) and not Conf.IRON_MQ and not isinstance(Conf.SQS, dict)
    return in_database and Conf.ORM == DEFAULT_DB_ALIAS


def queued_tasks() -> QuerySet[OrmQ] | None:
    """Every task row of the database queue, waiting or taken by a worker (a taken task keeps its
    row until it is done or its lock expires and it is delivered again); None when the queue is not
    in the database (Redis: we cannot look without a broker round trip, ``get_broker``)."""
    if not queue_in_database():
        return None
    # Not through the broker object: it closes the request's connection when CONN_MAX_AGE is 0.
    return OrmQ.objects.using(Conf.ORM)


def waiting_tasks() -> QuerySet[OrmQ] | None:
    """This cluster's tasks waiting for a worker (None: the queue is not in the database). The ORM
    broker stamps a waiting task's ``lock`` with its enqueue time; a task taken by a worker gets a
    lock in the future (its retry deadline), so ``lock <= now`` is what waits and the oldest lock is
    the oldest waiting task. Read by ``POST /upload`` (is the queue busy?), ``/healthcheck`` and the
    dashboard."""
    queued = queued_tasks()
    return None if queued is None else queued.filter(key=Conf.CLUSTER_NAME, lock__lte=timezone.now())


def task_timeout() -> int:
    """Seconds after which django-q kills a running task (``Q_CLUSTER["timeout"]``), read from the
    settings at each call (tests override them)."""
    return settings.Q_CLUSTER.get("timeout", 120)


def max_attempts() -> int:
    """How many times django-q delivers a task before dropping it (``Q_CLUSTER["max_attempts"]``)."""
    return settings.Q_CLUSTER.get("max_attempts", 1)


def enqueue_on_commit(func: str, *args: object, **options: object) -> None:
    """Queue ``func(*args)`` so that the task exists exactly when the current transaction commits
    (see the module docstring). Outside a transaction it is queued at once."""
    if queue_in_database():
        async_task(func, *args, **options)
    else:
        # robust: the caller's rows are committed by then; a broker down right now must not turn
        # the sender's answer into an error (the stuck-submission sweeper queues it again later).
        transaction.on_commit(lambda: async_task(func, *args, **options), robust=True)


def notify(name: str, payload: str = "") -> None:
    """Wake whoever waits on ``name`` (``notifications``); inside a transaction, at its commit."""
    connection = connections[DEFAULT_DB_ALIAS]
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_notify(%s, %s)", [channel_name(name), payload])


@contextlib.contextmanager
def notifications(name: str) -> Iterator[Callable[[float, str | None], bool]]:
    """LISTEN on ``name`` for the block, on this thread's database connection; yields
    ``wait(timeout, payload=None) -> bool`` (True when woken, False after ``timeout``).

    Where notifications cannot arrive (inside a transaction, which holds them until it ends; a
    database other than PostgreSQL; listening turned off, ``listening``) ``wait`` simply sleeps,
    so callers re-check and stay correct."""
    connection = connections[DEFAULT_DB_ALIAS]
    if connection.vendor != "postgresql" or connection.in_atomic_block or not listening():
        yield _sleep
        return
    connection.ensure_connection()
    channel = channel_name(name)
    with connection.cursor() as cursor:
        cursor.execute(f"LISTEN {channel}")
    raw = connection.connection

    def wait(timeout: float, payload: str | None = None) -> bool:
        try:
            return _wait_for(raw, timeout, payload)
        except Exception:  # a broken connection: the caller's next query reports it
            _sleep(timeout)
            return False

    try:
        yield wait
    finally:
        with contextlib.suppress(Exception):
            with connection.cursor() as cursor:
                cursor.execute(f"UNLISTEN {channel}")
            _drain(raw)  # the connection is reused by later requests: leave nothing behind


def _sleep(timeout: float, payload: str | None = None) -> bool:
    time.sleep(max(0.0, timeout))
    return False
