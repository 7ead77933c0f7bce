"""Fault run 2: the database is stopped during intake.

The run has its own embedded PostgreSQL (raiox.embedded_db in the test's folder), so it can be stopped
without touching the test database: gunicorn as configured in deploy/ and a real `manage.py
qcluster` run against it as separate processes. While the database is down, Jotform's deliveries
and the old plain form are answered 503 with Retry-After (Jotform retries) and no file is left in
storage; the worker stays up. After the restart the retried deliveries are accepted and everything
accepted is processed.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx
import psycopg
import pytest

from testkit.images import xray_file, xray_png
from testkit.payloads import jotform_payload
from testkit.procs import free_port
from tests.builders.worker import ROOT, process_env, report, wait_until

JOTFORM_IDS = ["9000000000000000021", "9000000000000000022", "9000000000000000023"]


def upload_dir(submission_id: str) -> str:
    return f"/uploads/drsouza/231234567890123/{submission_id}/"


def pg(action: str, pgdata: Path) -> str:
    """Start (returns the URL) or stop the run's own server, in a fresh process as `make db-stop` does."""
    code = {
        "start": "from raiox.embedded_db import embedded_database_url as f; print(f(Path(sys.argv[1])))",
        "stop": "from raiox.embedded_db import stop_embedded_server as f; f(Path(sys.argv[1]))",
    }[action]
    result = subprocess.run(
        [sys.executable, "-c", f"import sys; from pathlib import Path; {code}", str(pgdata)],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout.strip()


def stored_xrays(media: Path) -> list[str]:
    return sorted(str(p.relative_to(media)) for p in media.rglob("*") if p.is_file() and not p.match("referencia/**"))


@pytest.mark.slow
def test_database_outage_answers_503_leaves_no_file_and_recovers(tmp_path, upload_host, cluster_factory):
    pgdata, media = tmp_path / "pg", tmp_path / "media-db-run"
    url = pg("start", pgdata)
    env = process_env(
        DATABASE_URL=url,
        MEDIA_ROOT=str(media),
        JOTFORM_FILE_HOSTS=upload_host.netloc,
        RAIOX_ALLOW_HTTP_DOWNLOADS="1",
    )
    for command in (["migrate", "--noinput"], ["createcachetable"], ["seed_catalog"]):
        subprocess.run([sys.executable, "manage.py", *command, "-v0"], cwd=ROOT, env=env, check=True)
    port = free_port()
    web_log = open(tmp_path / "gunicorn.log", "wb")  # noqa: SIM115 - closed below
    web = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "deploy/gunicorn.conf.py", "raiox.wsgi"],
        cwd=ROOT,
        env={**env, "GUNICORN_BIND": f"127.0.0.1:{port}", "GUNICORN_WORKERS": "2"},
        stdout=web_log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    worker = cluster_factory(
        **{k: env[k] for k in ("DATABASE_URL", "MEDIA_ROOT", "JOTFORM_FILE_HOSTS", "RAIOX_ALLOW_HTTP_DOWNLOADS")}
    ).start()
    http = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60)

    def up() -> bool:
        try:
            return http.get("/healthcheck").status_code in (200, 503)
        except httpx.TransportError:
            return False

    def plain(i: int) -> httpx.Response:
        data = {"submissionID": f"db-{i:03d}", "nome": "Dra. Ana", "email": "ana@example.com", "dente": "46"}
        return http.post("/jotform", data=data, files={"file": (f"raiox-{i}.png", xray_png(400 + i), "image/png")})

    def jotform(submission_id: str) -> httpx.Response:
        body, content_type = jotform_payload(
            upload_base=upload_host.url(upload_dir(submission_id)), submission_id=submission_id
        )
        return http.post("/jotform", content=body, headers={"Content-Type": content_type})

    def rows(sql: str) -> list[tuple]:
        with psycopg.connect(url) as conn:
            return conn.execute(sql).fetchall()

    try:
        for sid in JOTFORM_IDS:
            upload_host.serve(upload_dir(sid) + "radiografia%20panor%C3%A2mica.png", xray_file(seed=int(sid[-2:])))
        assert wait_until(up, seconds=120), (tmp_path / "gunicorn.log").read_text()[-3000:]

        accepted: dict[str, str] = {}
        for i in range(2):
            response = plain(i)
            assert response.status_code == 201, response.text
            accepted[f"db-{i:03d}"] = response.json()["token"]
        response = jotform(JOTFORM_IDS[0])
        assert response.status_code == 201, response.text
        accepted[JOTFORM_IDS[0]] = response.json()["token"]
        # The worker is up and busy (catalogue embedded, first X-rays done) when the database stops.
        assert wait_until(
            lambda: rows("select count(*) from submissions_submission where status = 'done'")[0][0] == 3, every=0.5
        ), worker.output()[-3000:]
        files_before = stored_xrays(media)
        assert len(files_before) == 3  # two from the form, one the worker fetched from Jotform's host

        pg("stop", pgdata)
        refused = []
        for deliver, key in [(plain, 2), (plain, 3), (plain, 4), (jotform, JOTFORM_IDS[1]), (jotform, JOTFORM_IDS[2])]:
            response = deliver(key)
            assert response.status_code == 503, (response.status_code, response.text)
            assert response.headers["Retry-After"] and response.json()["code"] == "unavailable"
            refused.append((deliver, key))
        assert stored_xrays(media) == files_before  # no orphan file
        time.sleep(3)  # the worker polls the dead database meanwhile
        assert worker.proc.poll() is None, "the worker must outlive a database outage"

        pg("start", pgdata)
        for deliver, key in refused:  # Jotform's (and the form's) retries
            response = deliver(key)
            assert response.status_code == 201, response.text
            accepted[f"db-{key:03d}" if isinstance(key, int) else key] = response.json()["token"]
        response = plain(0)  # a retry of a delivery that had been accepted
        assert response.status_code == 200 and response.json()["duplicate"] is True

        assert wait_until(
            lambda: rows("select count(*) from submissions_submission where status <> 'done'")[0][0] == 0, every=0.5
        ), rows("select id, status, failure_reason from submissions_submission") + [worker.output()[-3000:]]
        submissions = rows(
            "select s.token::text, s.external_id, array_agg(m.rank order by m.rank) filter (where m.id is not null)"
            " from submissions_submission s left join submissions_match m on m.submission_id = s.id"
            " group by s.id"
        )
        assert sorted(t for t, _, _ in submissions) == sorted(accepted.values())
        processed = sum(1 for _, _, ranks in submissions if ranks == [1, 2, 3])
        duplicated = len(submissions) - len({e for _, e, _ in submissions})
        stored = stored_xrays(media)
        with_image = rows("select image from submissions_submission where image <> ''")
        assert sorted(stored) == sorted(name for (name,) in with_image)  # every file has its row
        report(
            "database down during intake",
            accepted=len(accepted),
            processed=processed,
            lost=len(accepted) - processed,
            duplicated=duplicated,
            answered_503=len(refused),
            orphan_files=0,
        )
        assert (len(accepted), processed, duplicated) == (8, 8, 0)
    finally:
        http.close()
        web.terminate()
        web.wait(timeout=30)
        web_log.close()
        worker.stop()
        pg("stop", pgdata)
