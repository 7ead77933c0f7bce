"""Nothing secret in access logs (issue 13): the Jotform token travels as ``?token=`` and a result
token as ``/r/<uuid>/``, which opens a patient's page; nginx's and gunicorn's access logs kept both.

nginx runs for real with the deploy site (ports and paths moved to a temporary folder); gunicorn's
logger is the class ``deploy/gunicorn.conf.py`` installs, fed the request gunicorn would give it.
"""

from __future__ import annotations

import datetime as dt
import logging
import runpy
import socket
import subprocess
import time
import uuid
from types import SimpleNamespace

import httpx
import pytest

from tests.ops.helpers import DEPLOY, nginx_test_config

RESULT_TOKEN = str(uuid.uuid4())
JOTFORM_TOKEN = "jotform-secret-token-7Qp2mZ9vL4"
REQUESTS = [
    (f"/r/{RESULT_TOKEN}/", {}),
    (f"/r/{RESULT_TOKEN}/status.json?since=1", {}),
    (f"/jotform?token={JOTFORM_TOKEN}", {}),
    ("/enviar/", {"Referer": f"https://raiox.example.com/r/{RESULT_TOKEN}/?token={JOTFORM_TOKEN}"}),
    # Issue 22: the API's result and review paths carry the same token.
    (f"/api/match/{RESULT_TOKEN}/", {}),
    (f"/api/match/{RESULT_TOKEN}/review/", {}),
    ("/api/match/", {"Referer": f"https://raiox.example.com/api/match/{RESULT_TOKEN}/"}),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def nginx_site(tmp_path):
    http_port, https_port, backend_port = _free_port(), _free_port(), _free_port()
    conf = nginx_test_config(
        tmp_path,
        [
            ("listen [::]:80;", ""),
            ("listen [::]:443 ssl http2;", ""),
            ("listen 80;", f"listen 127.0.0.1:{http_port};"),
            ("listen 443 ssl http2;", f"listen 127.0.0.1:{https_port} ssl;"),
            ("server 127.0.0.1:8000", f"server 127.0.0.1:{backend_port}"),  # nothing there: 502, still logged
        ],
    )
    proc = subprocess.Popen(
        ["nginx", "-c", str(conf), "-p", str(tmp_path), "-e", str(tmp_path / "logs" / "error.log"),
         "-g", "daemon off;"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", https_port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    try:
        yield {"http": f"http://127.0.0.1:{http_port}", "https": f"https://127.0.0.1:{https_port}", "dir": tmp_path}
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _access_log_once_written(path, *, lines: int) -> str:
    """nginx writes a request's access-log line in its log phase, after the response has gone out:
    the client can hold the last answer before its line is in the file (a CI run read 7 of 8).
    Wait for the lines (not a time limit on nginx: the assertion after this one still fails when
    a line never comes)."""
    deadline = time.monotonic() + 10
    while True:
        log = path.read_text() if path.exists() else ""
        if len(log.splitlines()) >= lines or time.monotonic() > deadline:
            return log
        time.sleep(0.05)


def test_nginx_access_log_keeps_no_query_string_and_masks_result_tokens(nginx_site):
    with httpx.Client(verify=False, timeout=10) as client:  # noqa: S501 - the test's own certificate
        for path, headers in REQUESTS:
            client.get(nginx_site["https"] + path, headers={"Host": "raiox.example.com", **headers})
        client.get(nginx_site["http"] + f"/r/{RESULT_TOKEN}/?token={JOTFORM_TOKEN}")  # the redirect to https
    log = _access_log_once_written(nginx_site["dir"] / "logs" / "raiox.access.log", lines=len(REQUESTS) + 1)

    assert len(log.splitlines()) == len(REQUESTS) + 1, log
    assert RESULT_TOKEN not in log and JOTFORM_TOKEN not in log and "token=" not in log
    assert "GET /r/<token>/ " in log and "GET /r/<token>/status.json " in log and "GET /jotform " in log
    assert '"https://raiox.example.com/r/<token>/"' in log  # the Referer, masked the same way
    assert "GET /api/match/<token>/ " in log and "GET /api/match/<token>/review/ " in log
    assert "GET /api/match/ " in log and '"https://raiox.example.com/api/match/<token>/"' in log


def _gunicorn_line(path: str, query: str, referer: str = "") -> str:
    config = runpy.run_path(str(DEPLOY / "gunicorn.conf.py"))
    logger = config["logger_class"](SimpleNamespace(**_gunicorn_cfg(config)))
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    logger.access_log.handlers = [Keep()]
    logger.access_log.setLevel(logging.INFO)
    environ = {
        "REQUEST_METHOD": "GET",
        "RAW_URI": f"{path}?{query}" if query else path,
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_REFERER": referer,
    }
    response = SimpleNamespace(status="200 OK", sent=10, headers=[("X-Request-ID", "rid-12345678")])
    logger.access(response, SimpleNamespace(headers=[]), environ, dt.timedelta(milliseconds=5))
    return records[0].getMessage()


def _gunicorn_cfg(config: dict) -> dict:
    return {
        "errorlog": "-",
        "accesslog": "-",
        "access_log_format": config["access_log_format"],
        "loglevel": "info",
        "logconfig": None,
        "logconfig_dict": {},
        "logconfig_json": None,
        "syslog": False,
        "syslog_addr": None,
        "syslog_prefix": None,
        "syslog_facility": "user",
        "disable_redirect_access_to_syslog": False,
        "capture_output": False,
        "user": None,
        "group": None,
        "umask": 0,
    }


@pytest.mark.parametrize(
    ("path", "query", "shown"),
    [
        (f"/r/{RESULT_TOKEN}/", "", "GET /r/<token>/ HTTP/1.1"),
        (f"/r/{RESULT_TOKEN}/status.json", "since=1", "GET /r/<token>/status.json HTTP/1.1"),
        ("/jotform", f"token={JOTFORM_TOKEN}", "GET /jotform HTTP/1.1"),
        (f"/api/match/{RESULT_TOKEN}/", "", "GET /api/match/<token>/ HTTP/1.1"),
        (f"/api/match/{RESULT_TOKEN}/review/", "", "GET /api/match/<token>/review/ HTTP/1.1"),
        ("/api/match/", "", "GET /api/match/ HTTP/1.1"),
    ],
)
def test_gunicorn_access_log_keeps_no_query_string_and_masks_result_tokens(path, query, shown):
    line = _gunicorn_line(path, query, referer=f"https://raiox.example.com/r/{RESULT_TOKEN}/")
    assert shown in line
    assert RESULT_TOKEN not in line and JOTFORM_TOKEN not in line and "token=" not in line
    assert "rid=rid-12345678" in line


def _django_console_lines(client, paths: list[str]) -> str:
    """What the configured console handler (raiox.settings LOGGING) writes for ``paths``."""
    import io

    from raiox.logging import MaskTokensFilter

    handler = next(h for h in logging.getLogger().handlers if any(isinstance(f, MaskTokensFilter) for f in h.filters))
    stream = io.StringIO()
    old = handler.setStream(stream)
    try:
        for path in paths:
            client.get(path)
    finally:
        handler.setStream(old)
    return stream.getvalue()


@pytest.mark.django_db
def test_django_request_log_masks_result_tokens(client):
    """Django's request logger writes the path of every 4xx ("Not Found: /r/<uuid>/")."""
    token = str(uuid.uuid4())
    paths = [f"/r/{token}/", f"/r/{token}/status.json", f"/api/match/{token}/", f"/api/match/{token}/review/"]
    text = _django_console_lines(client, paths)
    assert token not in text and token.replace("-", "") not in text
    assert "/r/<token>/" in text and "/api/match/<token>/review/" in text


def test_the_mask_covers_json_lines_and_the_request_attribute():
    from raiox.logging import JsonFormatter, MaskTokensFilter

    token = str(uuid.uuid4())
    record = logging.LogRecord("django.request", logging.WARNING, __file__, 1, "Not Found: %s", (f"/r/{token}/",), None)
    record.request = SimpleNamespace(method="GET", path=f"/api/match/{token}/")
    assert MaskTokensFilter().filter(record)
    line = JsonFormatter("%(levelname)s %(name)s %(message)s").format(record)
    assert token not in line and "/r/<token>/" in line
