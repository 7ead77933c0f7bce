"""The task queue (django-q2): in PostgreSQL by default, Redis when scaled out; and the watches
kept on it."""

from __future__ import annotations

from raiox.settings.env import env, env_bool, env_float, env_int

Q_CLUSTER = {
    "name": "raiox",
    "orm": "default",  # the ORM broker: the queue lives in PostgreSQL, nothing else to run
    "workers": env_int("RAIOX_Q_WORKERS", 1),
    # A task that runs longer than `timeout` is killed; it is retried after `retry` seconds, so
    # retry must exceed timeout or a slow task would run twice at once.
    "timeout": env_int("RAIOX_Q_TIMEOUT", 120),
    "retry": env_int("RAIOX_Q_RETRY", 180),
    "max_attempts": env_int("RAIOX_Q_MAX_ATTEMPTS", 5),
    "ack_failures": True,
    # Successful task results kept (0: all). The intake bench keeps all to count runs per submission.
    "save_limit": env_int("RAIOX_Q_SAVE_LIMIT", 1000),
    # The ORM broker, woken by PostgreSQL NOTIFY when a task is queued (kernel/queue.py): "poll" is
    # only the longest wait without a notification (a retry coming due, PgBouncer in transaction mode).
    "broker_class": "kernel.queue.NotifyingORMBroker",
    "poll": env_float("RAIOX_Q_POLL", 0.2),
    "catch_up": False,
    "label": "Tarefas",
}
# LISTEN/NOTIFY wake-ups (kernel/queue.py: the worker woken by a queued task, a waiting /upload by
# its result). 0 behind PgBouncer in transaction mode, which forwards no notification and would
# leave LISTENs on pooled server connections: the worker then reads the queue every RAIOX_Q_POLL
# seconds, a waiting request its submission every 0.25 s.
RAIOX_DB_LISTEN = env_bool("RAIOX_DB_LISTEN", True)
# Scaling out: when the PostgreSQL-backed queue is no longer enough, set RAIOX_REDIS_URL
# (redis://host:6379/0; `pip install redis`) and every web node and worker uses Redis instead.
RAIOX_REDIS_URL = env("RAIOX_REDIS_URL")
if RAIOX_REDIS_URL:
    del Q_CLUSTER["orm"]
    del Q_CLUSTER["broker_class"]
    Q_CLUSTER["redis"] = RAIOX_REDIS_URL

# /healthcheck warns when the oldest queued task has waited longer than this.
RAIOX_QUEUE_MAX_AGE_SECONDS = env_int("RAIOX_QUEUE_MAX_AGE_SECONDS", 600)
# A submission still "received" or "processing" this long after it arrived (or started) is queued
# again by the sweeper (every 5 minutes); above retry × max_attempts of Q_CLUSTER so that a task
# django-q is still retrying is left alone.
RAIOX_STUCK_SUBMISSION_SECONDS = env_int("RAIOX_STUCK_SUBMISSION_SECONDS", 1800)
