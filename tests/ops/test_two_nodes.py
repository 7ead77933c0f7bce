"""Two nodes, one service: the shape a clinic network grows into first, rehearsed on loopback.

Two app nodes, each a gunicorn (``deploy/gunicorn.conf.py``, production settings of
``deploy/env.example``) and a django-q2 worker (``manage.py qcluster``) with its own ``var/``
folder, share ONE PostgreSQL (the test database stands in for the managed one) and ONE bucket
(moto's S3 server stands in for Spaces), behind one nginx upstream (``deploy/nginx/raiox.conf``
with both nodes in ``upstream raiox_web``). The same nginx also stands in for Jotform's upload
host over TLS, so the web nodes run in production mode and accept only https upload URLs.

A burst of Jotform webhooks (the recorded wire format, ``testkit.payloads``) goes through
nginx. Half way through, node A's web and worker get SIGKILL (no handler runs, nothing is
acknowledged). The sender resends what was not acknowledged (a 502 of a request in flight on the
dead node), as Jotform retries a failed delivery; node B finishes everything.

Who processed what is read from the database itself: each node connects with its own
``application_name`` (libpq's ``PGAPPNAME``) and a trigger installed by this test logs every status
change of a submission with the name of the connection that made it. So the counts (processed by
each worker, lost, duplicated) are facts of the shared database, not of either node's logs.

The workers run untrained CLIP weights in development mode (production refuses untrained weights
by design: raiox.E001); the broker's timings are short so that a task the dead worker had taken is
delivered again within the test (``RAIOX_Q_TIMEOUT``/``RAIOX_Q_RETRY``, as ``tests/faults``).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django_q.models import OrmQ

from matching.models import WorkerState
from submissions.models import Match, Source, Status, Submission
from testkit.images import xray_file
from testkit.payloads import JotformBodies
from testkit.procs import free_port
from testkit.procs import stop as stop_process_group
from tests.builders.worker import FAULT_Q_RETRY, FAULT_Q_TIMEOUT, embed_catalog, process_env, wait_until
from tests.ops.helpers import DEPLOY, ROOT, env_example

HOST = "raiox.example.com"
WEBHOOKS = 60  # distinct Jotform submissions
KILL_AFTER = WEBHOOKS // 2  # node A dies once the second half of the burst is under way
CONCURRENCY = 4
DRAIN_SECONDS = 300.0
NODES = ("a", "b")

# Every status change of a submission, with the name of the database connection that made it.
AUDIT_SQL = """
CREATE TABLE rehearsal_status_log (
    id bigserial PRIMARY KEY, submission_id bigint NOT NULL, status text NOT NULL,
    node text NOT NULL, at timestamptz NOT NULL DEFAULT clock_timestamp());
CREATE FUNCTION rehearsal_log_status() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO rehearsal_status_log (submission_id, status, node)
    VALUES (NEW.id, NEW.status, current_setting('application_name'));
    RETURN NULL;
END $$;
CREATE TRIGGER rehearsal_status AFTER UPDATE ON submissions_submission FOR EACH ROW
    WHEN (NEW.status IS DISTINCT FROM OLD.status OR NEW.finished_at IS DISTINCT FROM OLD.finished_at
          OR NEW.started_at IS DISTINCT FROM OLD.started_at)
    EXECUTE FUNCTION rehearsal_log_status();
"""
AUDIT_DROP_SQL = """
DROP TRIGGER IF EXISTS rehearsal_status ON submissions_submission;
DROP FUNCTION IF EXISTS rehearsal_log_status();
DROP TABLE IF EXISTS rehearsal_status_log;
"""


def _status_log() -> list[tuple[int, str, str]]:
    """(submission id, status, node) of every status change so far, in order."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT submission_id, status, node FROM rehearsal_status_log ORDER BY id")
        return [(pk, status, node.removeprefix("raiox-node-")) for pk, status, node in cursor.fetchall()]


def _done_by_node() -> Counter:
    return Counter(node for _, status, node in _status_log() if status == Status.DONE)


def _wait_for(url: str, *, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            httpx.get(url, headers={"Host": HOST}, verify=False, timeout=2)  # any answer: it is up
            return
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


class Node:
    """One app node: gunicorn and qcluster, each its own process group, killable with SIGKILL."""

    def __init__(self, name: str, web_env: dict[str, str], worker_env: dict[str, str], logs: Path) -> None:
        self.name, self.web_env, self.worker_env, self.logs = name, web_env, worker_env, logs
        self.procs: list[subprocess.Popen] = []

    def _start(self, what: str, args: list[str], env: dict[str, str]) -> None:
        out = (self.logs / f"node-{self.name}-{what}.log").open("wb")
        self.procs.append(
            subprocess.Popen(args, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        )
        out.close()  # the child holds its own copy

    def start(self) -> Node:
        gunicorn = str(Path(sys.executable).parent / "gunicorn")
        self._start("web", [gunicorn, "-c", "deploy/gunicorn.conf.py", "raiox.wsgi"], self.web_env)
        self._start("worker", [sys.executable, "manage.py", "qcluster"], self.worker_env)
        return self

    def kill(self) -> None:
        for proc in self.procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

    def stop(self) -> None:
        for proc in reversed(self.procs):
            stop_process_group(proc)
        for log in self.logs.glob(f"node-{self.name}-*.log"):
            # SubmissionBusy is by design: a task whose submission is in another worker's batch (or in
            # the dead worker's, until its lease ends) is delivered again later.
            unexpected = [
                line for line in log.read_text(errors="replace").splitlines()
                if "Traceback" in line and "SubmissionBusy" not in line
            ]  # fmt: skip
            if unexpected:
                print(f"--- {log.name}\n" + "\n".join(unexpected)[-3000:])


@pytest.fixture
def two_nodes(s3_storage, catalog, transactional_db, tmp_path) -> Iterator[dict]:
    assert shutil.which("nginx"), "install nginx (make ops-tools does)"
    embed_catalog()
    OrmQ.objects.all().delete()  # the seed's embedding tasks: embedded above
    WorkerState.objects.all().delete()  # this process embedded them: it is no worker of either node
    with connection.cursor() as cursor:
        cursor.execute(AUDIT_SQL)
    logs = tmp_path / "logs"
    logs.mkdir()
    # Jotform's upload host: one small X-ray per submission, over TLS (nginx, below).
    pool = tmp_path / "uploads"
    pool.mkdir()
    for n in range(WEBHOOKS):
        (pool / f"rx-{n:03d}.png").write_bytes(xray_file(seed=500 + n))
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", f"/CN={HOST}",
         "-addext", f"subjectAltName=DNS:{HOST},IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    web_ports = {name: free_port() for name in NODES}
    https_port, files_port = free_port(), free_port()
    files_host = f"127.0.0.1:{files_port}"
    bucket_env = {
        "AWS_STORAGE_BUCKET_NAME": s3_storage["bucket"],
        "AWS_S3_ENDPOINT_URL": s3_storage["endpoint"],
        "AWS_S3_REGION_NAME": "us-east-1",
        "AWS_S3_ADDRESSING_STYLE": "path",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }
    base = {
        **process_env(),
        **env_example(),
        **bucket_env,
        "DATABASE_URL": process_env()["DATABASE_URL"],  # the one database both nodes share
        "RAIOX_ALLOW_UNTRAINED_MODEL": "0",
        "JOTFORM_FILE_HOSTS": files_host,
        "EMAIL_BACKEND": "django.core.mail.backends.dummy.EmailBackend",
        "GUNICORN_WORKERS": "2",
    }
    nodes: dict[str, Node] = {}
    for name in NODES:
        var = tmp_path / f"node-{name}" / "var"  # each node its own var/ (models, local files)
        own = {
            "RAIOX_VAR_DIR": str(var),
            "STATIC_ROOT": str(var / "staticfiles"),
            "MEDIA_ROOT": str(var / "media"),
            "RAIOX_CLIP_CACHE_DIR": str(var / "models"),
            "PGAPPNAME": f"raiox-node-{name}",  # who wrote what, in the audit log
        }
        web_env = {**base, **own, "GUNICORN_BIND": f"127.0.0.1:{web_ports[name]}"}
        worker_env = {
            **base,
            **own,
            "DJANGO_ENV": "development",  # untrained weights (see the module docstring)
            "RAIOX_ALLOW_UNTRAINED_MODEL": "1",
            "RAIOX_Q_WORKERS": "1",
            "RAIOX_Q_POLL": "0.05",
            "RAIOX_Q_TIMEOUT": FAULT_Q_TIMEOUT,
            "RAIOX_Q_RETRY": FAULT_Q_RETRY,
            # Small batches keep every task well inside the short timeout on a loaded 2-core box.
            "RAIOX_PROCESS_BATCH": "4",
            "RAIOX_TORCH_THREADS": "1",
            "SSL_CERT_FILE": str(cert),  # trusts the stand-in upload host's certificate
        }
        nodes[name] = Node(name, web_env, worker_env, logs)

    upstream = "\n".join(f"    server 127.0.0.1:{web_ports[name]} fail_timeout=0;" for name in NODES)
    params = tmp_path / "raiox_proxy_params"
    shutil.copy(DEPLOY / "nginx" / "raiox_proxy_params", params)
    site = (
        (DEPLOY / "nginx" / "raiox.conf")
        .read_text()
        .replace(f"/etc/letsencrypt/live/{HOST}/fullchain.pem", str(cert))
        .replace(f"/etc/letsencrypt/live/{HOST}/privkey.pem", str(key))
        .replace("/var/log/nginx/", f"{logs}/")
        .replace("/etc/nginx/raiox_proxy_params", str(params))
        .replace("    server 127.0.0.1:8000 fail_timeout=0;", upstream)
        .replace("listen 443 ssl", f"listen 127.0.0.1:{https_port} ssl")
        .replace("listen 80;", f"listen 127.0.0.1:{free_port()};")
        .replace("listen [::]:80;", "")
        .replace("listen [::]:443 ssl http2;", "")
    )
    assert site.count("server 127.0.0.1:") == len(NODES), "the deploy site's upstream changed: update the rehearsal"
    site += (
        "\n# The stand-in for Jotform's upload host: any path answered by its last component.\n"
        f"server {{\n listen {files_host} ssl;\n ssl_certificate {cert};\n ssl_certificate_key {key};\n"
        f" access_log {logs}/uploads.access.log;\n"
        f" location ~ /(?<rehearsal_file>[^/]+)$ {{ alias {pool}/$rehearsal_file; }}\n}}\n"
    )
    (tmp_path / "site.conf").write_text(site)
    conf = tmp_path / "nginx.conf"
    conf.write_text(
        ("user root;\n" if os.geteuid() == 0 else "")
        + f"pid {tmp_path}/nginx.pid;\nerror_log {logs}/error.log;\ndaemon off;\nevents {{}}\n"
        f"http {{\n access_log {logs}/access.log;\n include /etc/nginx/mime.types;\n"
        f" client_body_temp_path {tmp_path}/body;\n proxy_temp_path {tmp_path}/proxy;\n"
        f" include {tmp_path}/site.conf;\n}}\n"
    )
    nginx = None
    try:
        for node in nodes.values():
            node.start()
        nginx = subprocess.Popen(
            ["nginx", "-c", str(conf), "-p", str(tmp_path), "-e", str(logs / "error.log")],
            stdout=(logs / "nginx.log").open("wb"), stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        for port in web_ports.values():
            _wait_for(f"http://127.0.0.1:{port}/healthcheck")
        _wait_for(f"https://127.0.0.1:{https_port}/healthcheck")
        client = httpx.Client(
            base_url=f"https://127.0.0.1:{https_port}", headers={"Host": HOST}, verify=False, timeout=120
        )
        yield {
            "client": client,
            "nodes": nodes,
            "bodies": JotformBodies(file_host=files_host, token=base["JOTFORM_WEBHOOK_TOKEN"]),
            "files_host": files_host,
            "metrics_token": base["RAIOX_METRICS_TOKEN"],
        }
        client.close()
    finally:
        for node in nodes.values():
            node.stop()
        if nginx is not None:
            stop_process_group(nginx)
        with connection.cursor() as cursor:
            cursor.execute(AUDIT_DROP_SQL)


class Sender:
    """Jotform's side: each webhook is delivered until it is acknowledged (201 new, 200 a repeat);
    what was not (a 502 from a node that died with the request, nginx's 429) is sent again."""

    def __init__(self, client: httpx.Client, bodies: JotformBodies, files_host: str) -> None:
        self.client, self.bodies, self.files_host = client, bodies, files_host
        self.url = f"/jotform?token={bodies.token}"
        self.tokens: dict[str, str] = {}
        self.resent: Counter = Counter()  # why a delivery had to be sent again
        self.lock = threading.Lock()

    def body(self, n: int) -> tuple[str, bytes]:
        sid = str(5_960_000_000_000_000_000 + n)
        raw = self.bodies.body(sid, f"rx-{n:03d}.png", n)
        # The bench's stand-in host is plain http; this one is https, as Jotform's is.
        escaped = f"http:\\/\\/{self.files_host}".encode()
        return sid, raw.replace(escaped, escaped.replace(b"http:", b"https:"))

    def deliver(self, n: int) -> None:
        sid, body = self.body(n)
        for _attempt in range(40):
            try:
                response = self.client.post(self.url, content=body, headers={"Content-Type": self.bodies.content_type})
            except httpx.TransportError as exc:
                why = type(exc).__name__
            else:
                if response.status_code in (200, 201):
                    with self.lock:
                        assert self.tokens.setdefault(sid, response.json()["token"]) == response.json()["token"]
                    return
                assert response.status_code in (429, 502, 503, 504), (sid, response.status_code, response.text)
                why = f"HTTP {response.status_code}"
            with self.lock:
                self.resent[why] += 1
            time.sleep(0.5)
        raise AssertionError(f"webhook {sid} never acknowledged")

    def send(self, numbers: range) -> None:
        with ThreadPoolExecutor(CONCURRENCY) as pool:
            list(pool.map(self.deliver, numbers))


def _staff_dashboard(client: httpx.Client) -> str:
    """The staff dashboard through nginx, logged in with the admin's own form."""
    get_user_model().objects.create_superuser("operadora", "operadora@example.com", "senha-forte-da-operadora-1")
    login = client.get("/admin/login/", params={"next": "/admin/dashboard/"})
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login.text).group(1)
    response = client.post(
        "/admin/login/?next=/admin/dashboard/",
        data={"csrfmiddlewaretoken": csrf, "username": "operadora", "password": "senha-forte-da-operadora-1"},
        headers={"Referer": f"https://{HOST}/admin/login/"},
    )
    assert response.status_code == 302 and response.headers["location"] == "/admin/dashboard/", response.text[:500]
    page = client.get("/admin/dashboard/")
    assert page.status_code == 200
    return page.text


@pytest.mark.slow
def test_two_nodes_share_a_burst_and_one_dies_mid_burst(two_nodes):
    client: httpx.Client = two_nodes["client"]
    nodes: dict[str, Node] = two_nodes["nodes"]
    sender = Sender(client, two_nodes["bodies"], two_nodes["files_host"])

    # 1. The first half of the burst: both workers take part.
    sender.send(range(KILL_AFTER))
    assert wait_until(lambda: all(_done_by_node()[n] for n in NODES), seconds=DRAIN_SECONDS), (
        f"both workers must process part of the burst: {_done_by_node()}"
    )
    # ...and the operator sees both: /healthcheck (details for Prometheus' token) and the dashboard.
    health = client.get("/healthcheck", headers={"Authorization": f"Bearer {two_nodes['metrics_token']}"})
    assert health.status_code == 200, health.text
    assert health.json()["checks"]["model"]["workers_alive"] == 2
    assert WorkerState.objects.count() == 2
    assert "2 workers ativos" in _staff_dashboard(client)

    # 2. The second half, and node A's web and worker killed while A is processing a submission.
    second = threading.Thread(target=sender.send, args=(range(KILL_AFTER, WEBHOOKS),))
    second.start()

    def a_is_processing() -> list[int]:
        last: dict[int, tuple[str, str]] = {}
        for pk, status, node in _status_log():
            last[pk] = (status, node)
        return [pk for pk, (status, node) in last.items() if status == Status.PROCESSING and node == "a"]

    mid_burst = wait_until(
        lambda: bool(a_is_processing()) and len(sender.tokens) >= KILL_AFTER + 5, seconds=120, every=0.02
    )
    assert mid_burst, f"never caught node A processing mid-burst: {_done_by_node()}, {len(sender.tokens)} acked"
    nodes["a"].kill()
    interrupted = a_is_processing()
    done_at_kill = dict(_done_by_node())
    acknowledged_at_kill = len(sender.tokens)
    second.join()
    assert len(sender.tokens) == WEBHOOKS

    # 3. Node B finishes everything, the ones A had in hand included (their leases expire).
    ids = list(sender.tokens)
    rows = Submission.objects.filter(source=Source.JOTFORM, external_id__in=ids)
    assert wait_until(
        lambda: rows.filter(status=Status.DONE).count() == WEBHOOKS and not OrmQ.objects.exists(),
        seconds=DRAIN_SECONDS,
        every=0.5,
    ), f"not drained: {Counter(rows.values_list('status', flat=True))}, {OrmQ.objects.count()} tasks queued"
    assert client.get("/healthcheck").status_code == 200  # the balancer keeps serving from node B

    done_events = [(pk, node) for pk, status, node in _status_log() if status == Status.DONE]
    by_node = Counter(node for _, node in done_events)
    duplicated = (rows.count() - len(ids)) + (len(done_events) - len({pk for pk, _ in done_events}))
    for submission in rows:
        ranks = sorted(Match.objects.filter(submission=submission).values_list("rank", flat=True))
        if not ranks or ranks != list(range(1, len(ranks) + 1)):
            duplicated += 1  # no result, or two results recorded over each other
    assert sorted(str(t) for t in rows.values_list("token", flat=True)) == sorted(sender.tokens.values())
    lost = WEBHOOKS - rows.filter(status=Status.DONE).count()
    finished_by_b = {pk for pk, node in done_events if node == "b"}
    print(
        f"\nTWO NODES: sent={WEBHOOKS} processed_by_a={by_node['a']} processed_by_b={by_node['b']} "
        f"lost={lost} duplicated={duplicated} | a_killed_after_acks={acknowledged_at_kill} "
        f"done_at_kill={done_at_kill} in_hand_of_a_at_kill={len(interrupted)} "
        f"resent={dict(sender.resent)} max_attempts={max(rows.values_list('attempts', flat=True))}"
    )
    assert by_node["a"] > 0 and by_node["b"] > 0
    assert by_node["a"] + by_node["b"] == WEBHOOKS
    assert (lost, duplicated) == (0, 0)
    assert interrupted and set(interrupted) <= finished_by_b  # what A had in hand, B finished
    assert all(Submission.objects.get(pk=pk).attempts >= 2 for pk in interrupted)
