"""gunicorn settings for Raiox AI (``gunicorn -c deploy/gunicorn.conf.py raiox.wsgi``).

Web processes are small (no torch): several sync workers per core is fine. The heavy work runs in
the django-q2 workers, so requests are short; POST /upload waits at most RAIOX_UPLOAD_WAIT_SECONDS.
"""

import multiprocessing
import os
import re

from gunicorn.glogging import Logger

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("GUNICORN_WORKERS", multiprocessing.cpu_count() * 2 + 1))
threads = int(os.environ.get("GUNICORN_THREADS", "1"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "60"))
graceful_timeout = 30
keepalive = 5
# Recycle workers now and then: bounds any slow leak (image decoding libraries).
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "2000"))
max_requests_jitter = 200
# Off: each worker imports Django itself, so a restart reloads code and no state is shared by fork.
preload_app = False
# nginx on this machine (or the load balancer's private addresses) sets X-Forwarded-*.
forwarded_allow_ips = os.environ.get("GUNICORN_FORWARDED_ALLOW_IPS", "127.0.0.1,::1")
proxy_allow_ips = forwarded_allow_ips
accesslog = "-"
# No query string (the Jotform token travels as ?token=) and no result token (/r/<token>/ opens a
# patient's page, /api/match/<token>/ reads it) in the access log: %(U)s is the path alone, masked
# by PrivateAccessLogger below; %(r)s (the raw request line) and %(q)s are never logged.
access_log_format = '%(h)s "%(m)s %(U)s %(H)s" %(s)s %(b)s %(L)ss rid=%({x-request-id}o)s'
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")
# Heartbeat files in RAM, not on a possibly slow disk (gunicorn docs).
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None  # noqa: S108


def child_exit(server, worker):
    # Prometheus multiprocess mode: drop a dead worker's live gauges.
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)


# A result token opens (/r/<token>/…) or reads (/api/match/<token>/, …/review/) a patient's result.
_RESULT_TOKEN = re.compile(r"^/(r|api/match)/[^/]+")


class PrivateAccessLogger(Logger):
    """gunicorn's logger with the secret parts of a request left out of every access-log atom."""

    def atoms(self, resp, req, environ, request_time):
        atoms = super().atoms(resp, req, environ, request_time)
        path = _RESULT_TOKEN.sub(r"/\1/<token>", atoms.get("U") or "")
        atoms.update({"U": path, "q": "-", "r": f"{atoms.get('m')} {path} {atoms.get('H')}", "f": "-"})
        return atoms


logger_class = PrivateAccessLogger
