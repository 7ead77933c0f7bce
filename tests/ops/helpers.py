"""Shared helpers for the operations tests."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"


def env_example() -> dict[str, str]:
    """deploy/env.example parsed the way systemd's EnvironmentFile reads it."""
    values: dict[str, str] = {}
    for line in (DEPLOY / "env.example").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, _, value = line.partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        values[key.strip()] = value
    return values


def manage(args: list[str], env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess:
    """Run manage.py in a fresh process with exactly this environment (plus PATH)."""
    base = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/root")}
    return subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), *args],
        env={**base, **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def nginx_test_config(directory: Path, replace: Iterable[tuple[str, str]] = ()) -> Path:
    """The deploy kit's nginx site made runnable from ``directory`` without root: a self-signed
    certificate for raiox.example.com, logs, pid and proxy params under ``directory``, then each
    ``(old, new)`` of ``replace`` applied to the site (ports, backend). Returns the nginx.conf to
    give ``nginx -c``; the site's own access log is ``directory/logs/raiox.access.log``."""
    assert shutil.which("nginx"), "install nginx (make test does)"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=raiox.example.com",
         "-keyout", str(directory / "key.pem"), "-out", str(directory / "cert.pem")],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    (directory / "logs").mkdir()
    params = directory / "raiox_proxy_params"
    shutil.copy(DEPLOY / "nginx" / "raiox_proxy_params", params)
    site = (
        (DEPLOY / "nginx" / "raiox.conf")
        .read_text()
        .replace("/etc/letsencrypt/live/raiox.example.com/fullchain.pem", str(directory / "cert.pem"))
        .replace("/etc/letsencrypt/live/raiox.example.com/privkey.pem", str(directory / "key.pem"))
        .replace("/var/log/nginx/", f"{directory}/logs/")
        .replace("/etc/nginx/raiox_proxy_params", str(params))
    )
    for old, new in replace:
        site = site.replace(old, new)
    (directory / "site.conf").write_text(site)
    conf = directory / "nginx.conf"
    conf.write_text(
        f"pid {directory}/nginx.pid;\nerror_log {directory}/logs/error.log;\nevents {{}}\n"
        f"http {{\n access_log {directory}/logs/other.log;\n include {directory}/site.conf;\n}}\n"
    )
    return conf
