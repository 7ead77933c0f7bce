"""The deploy README followed on this machine as far as it can be: gunicorn with
``deploy/gunicorn.conf.py`` and the production settings of ``deploy/env.example``, a django-q2
worker, and nginx with ``deploy/nginx/raiox.conf`` (self-signed certificate) in front, on loopback.
A dentist's X-ray posted through nginx over TLS comes back with its top implants.

What cannot be the real thing here: the managed database (the test database stands in), Spaces
(moto's S3 server stands in) and the CLIP weights (the worker runs untrained, in development mode,
since production refuses untrained weights by design: raiox.E001/E002).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from django_q.models import OrmQ

from implants.models import ReferenceImage
from submissions.models import Status, Submission
from testkit.procs import stop as stop_process_group
from tests.builders.worker import embed_catalog, process_env
from tests.ops.helpers import DEPLOY, ROOT, env_example

HOST = "raiox.example.com"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for(url: str, *, verify: bool = True, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            httpx.get(url, verify=verify, timeout=2)
            return
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


@pytest.fixture
def stack(s3_storage, catalog, transactional_db, tmp_path) -> Iterator[dict]:
    assert shutil.which("nginx"), "install nginx (make test does)"
    embed_catalog()
    # The seed queued one embedding task per reference image; embedded above, they would only keep
    # the queue busy, and /upload answers a busy queue with 202 at once (tests/security/test_upload_wait.py).
    OrmQ.objects.all().delete()
    bucket_env = {
        "AWS_STORAGE_BUCKET_NAME": s3_storage["bucket"],
        "AWS_S3_ENDPOINT_URL": s3_storage["endpoint"],
        "AWS_S3_REGION_NAME": "us-east-1",
        "AWS_S3_ADDRESSING_STYLE": "path",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }
    web_port, http_port, https_port = _free_port(), _free_port(), _free_port()
    static_root = tmp_path / "staticfiles"
    production = {
        **process_env(),
        **env_example(),
        **bucket_env,
        "DATABASE_URL": process_env()["DATABASE_URL"],
        "STATIC_ROOT": str(static_root),
        "RAIOX_VAR_DIR": str(tmp_path / "var"),
        "RAIOX_ALLOW_UNTRAINED_MODEL": "0",
        "RAIOX_UPLOAD_WAIT_SECONDS": "120",  # the worker builds its model on the first task
        "GUNICORN_BIND": f"127.0.0.1:{web_port}",
        "GUNICORN_WORKERS": "2",
    }
    logs = tmp_path / "logs"
    logs.mkdir()
    collect = subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput"],
        cwd=ROOT, env=production, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert collect.returncode == 0, collect.stderr

    # The worker: the same environment, but development mode with untrained weights (see above).
    worker_env = {**production, "DJANGO_ENV": "development", "RAIOX_ALLOW_UNTRAINED_MODEL": "1", "RAIOX_Q_POLL": "0.05"}
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", f"/CN={HOST}",
         "-keyout", str(tmp_path / "key.pem"), "-out", str(tmp_path / "cert.pem")],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    params = tmp_path / "raiox_proxy_params"
    shutil.copy(DEPLOY / "nginx" / "raiox_proxy_params", params)
    site = (
        (DEPLOY / "nginx" / "raiox.conf")
        .read_text()
        .replace(f"/etc/letsencrypt/live/{HOST}/fullchain.pem", str(tmp_path / "cert.pem"))
        .replace(f"/etc/letsencrypt/live/{HOST}/privkey.pem", str(tmp_path / "key.pem"))
        .replace("/var/log/nginx/", f"{logs}/")
        .replace("/etc/nginx/raiox_proxy_params", str(params))
        .replace("/srv/raiox/var/staticfiles/", f"{static_root}/")
        .replace("server 127.0.0.1:8000", f"server 127.0.0.1:{web_port}")
        .replace("listen 443 ssl", f"listen 127.0.0.1:{https_port} ssl")
        .replace("listen 80;", f"listen 127.0.0.1:{http_port};")
        .replace("listen [::]:80;", "")
        .replace("listen [::]:443 ssl http2;", "")
    )
    (tmp_path / "site.conf").write_text(site)
    conf = tmp_path / "nginx.conf"
    conf.write_text(
        # pytest's temporary folders are private to root; on the droplet nginx's www-data reads
        # /srv/raiox/var/staticfiles (mode 755).
        ("user root;\n" if os.geteuid() == 0 else "")
        + f"pid {tmp_path}/nginx.pid;\nerror_log {logs}/error.log;\ndaemon off;\nevents {{}}\n"
        f"http {{\n access_log {logs}/access.log;\n include /etc/nginx/mime.types;\n"
        f" client_body_temp_path {tmp_path}/body;\n proxy_temp_path {tmp_path}/proxy;\n"
        f" include {tmp_path}/site.conf;\n}}\n"
    )
    procs: list[subprocess.Popen] = []
    outputs: list[Path] = []

    def start(name: str, args: list[str], env: dict[str, str]) -> None:
        out = logs / f"{name}.log"
        outputs.append(out)
        procs.append(
            subprocess.Popen(
                args, cwd=ROOT, env=env, stdout=out.open("wb"), stderr=subprocess.STDOUT, start_new_session=True
            )
        )

    try:
        start("gunicorn", [str(Path(sys.executable).parent / "gunicorn"), "-c", "deploy/gunicorn.conf.py",
                           "raiox.wsgi"], production)  # fmt: skip
        start("worker", [sys.executable, "manage.py", "qcluster"], worker_env)
        nginx = ["nginx", "-c", str(conf), "-p", str(tmp_path), "-e", str(logs / "error.log")]
        start("nginx", nginx, os.environ.copy())
        base = f"https://{HOST}:{https_port}"
        transport = httpx.HTTPTransport(verify=False)
        # Resolve the site's name to loopback, as the DNS record would to the droplet.
        client = httpx.Client(
            base_url=f"https://127.0.0.1:{https_port}", headers={"Host": HOST}, transport=transport, timeout=180
        )
        _wait_for(f"http://127.0.0.1:{web_port}/healthcheck", seconds=120)
        _wait_for(f"https://127.0.0.1:{https_port}/healthcheck", verify=False)
        yield {"client": client, "base": base, "http_port": http_port, "logs": logs}
        client.close()
    finally:
        for proc in reversed(procs):
            stop_process_group(proc)
        for out in outputs:
            text = out.read_text(errors="replace")
            if "Traceback" in text:
                print(f"--- {out.name}\n{text[-3000:]}")


@pytest.mark.slow
def test_an_xray_goes_through_nginx_gunicorn_and_the_worker(stack):
    client: httpx.Client = stack["client"]

    health = client.get("/healthcheck")
    assert health.status_code == 200, health.text
    checks = health.json()["checks"]
    assert checks["database"]["ok"] and checks["pgvector"]["ok"]
    assert checks["storage"]["backend"] == "S3Storage"

    # Plain http is sent to https; static files come from nginx, not Django.
    redirect = httpx.get(f"http://127.0.0.1:{stack['http_port']}/", headers={"Host": HOST})
    assert redirect.status_code == 301 and redirect.headers["location"] == f"https://{HOST}/"
    css = client.get("/static/admin/css/base.css")
    assert css.status_code == 200 and "Cache-Control" in css.headers and "public" in css.headers["Cache-Control"]

    reference = ReferenceImage.objects.select_related("implant").order_by("pk")[5]
    with reference.image.open("rb") as fh:
        data = fh.read()
    response = client.post(
        "/upload",
        files={"file": ("raiox.png", data, "image/png")},
        data={"nome": "Dra. Ana", "email": "ana@example.com", "paciente": "Beltrano Deploy", "dente": "21"},
        headers={"X-Request-ID": "deploy-check-0001"},
    )
    assert response.status_code == 200, response.text
    assert response.headers["X-Request-ID"] == "deploy-check-0001"
    body = response.json()
    assert body["status"] == "done"
    assert body["result_url"].startswith(f"https://{HOST}/r/")  # the proxy's scheme and host
    assert body["implants"][0]["id"] == reference.implant_id
    # Reference images are served by signed URLs from the private bucket, never publicly.
    assert "X-Amz-Signature=" in body["implants"][0]["image_url"]
    submission = Submission.objects.get(token=body["submission"])
    assert submission.status == Status.DONE and submission.matches.count() == 3

    page = client.get(f"/r/{submission.token}/")
    assert page.status_code == 200 and "Beltrano Deploy" in page.text
    assert page.headers["Strict-Transport-Security"].startswith("max-age=")
    # The patient's name is in no log line of any of the three processes.
    for log in stack["logs"].iterdir():
        assert "Beltrano" not in log.read_text(errors="replace"), log.name
