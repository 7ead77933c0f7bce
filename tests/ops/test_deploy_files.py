"""The deploy kit parses: systemd-analyze verify on the units, nginx -t on the site (self-signed cert)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.ops.helpers import DEPLOY, ROOT, nginx_test_config


def _units_for_this_machine(tmp_path: Path) -> list[Path]:
    # The units name /srv/raiox/app and /etc/raiox/env; here the checkout and the example stand in,
    # so verify also checks that ExecStart's programs exist.
    out = []
    for unit in sorted((DEPLOY / "systemd").glob("*.service")):
        text = (
            unit.read_text().replace("/srv/raiox/app", str(ROOT)).replace("/etc/raiox/env", str(DEPLOY / "env.example"))
        )
        target = tmp_path / unit.name
        target.write_text(text)
        out.append(target)
    return out


def _verify(units: list[Path]) -> subprocess.CompletedProcess:
    return subprocess.run(["systemd-analyze", "verify", *map(str, units)], capture_output=True, text=True, timeout=120)


def test_systemd_units_verify_cleanly(tmp_path):
    assert shutil.which("systemd-analyze"), "install systemd (make test does)"
    units = _units_for_this_machine(tmp_path)
    assert {u.name for u in units} == {"raiox-web.service", "raiox-worker.service"}
    result = _verify(units)
    # verify exits 0 even on unknown keys: any message at all is a defect.
    assert result.returncode == 0 and result.stdout + result.stderr == "", result.stdout + result.stderr
    for unit in units:
        text = unit.read_text()
        assert "User=raiox" in text and "Restart=on-failure" in text and "NoNewPrivileges=true" in text
    assert "gunicorn -c" in units[0].read_text() and "qcluster" in units[1].read_text()


def test_systemd_verify_would_catch_a_broken_unit(tmp_path):
    (unit,) = [u for u in _units_for_this_machine(tmp_path) if u.name == "raiox-worker.service"]
    unit.write_text(unit.read_text().replace("Restart=on-failure", "Restart=sometimes"))
    result = _verify([unit])
    assert "restart specifier" in result.stdout + result.stderr


@pytest.fixture
def nginx_config(tmp_path) -> Path:
    return nginx_test_config(tmp_path)


def test_nginx_accepts_the_site(nginx_config, tmp_path):
    result = subprocess.run(
        ["nginx", "-t", "-c", str(nginx_config), "-p", str(tmp_path), "-e", str(tmp_path / "logs" / "error.log")],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr
    site = (DEPLOY / "nginx" / "raiox.conf").read_text()
    # The body limit stays above RAIOX_MAX_UPLOAD_BYTES (20 MB) so Django can answer with its message.
    assert "client_max_body_size 25m;" in site
    assert "return 301 https://" in site
    params = (DEPLOY / "nginx" / "raiox_proxy_params").read_text()
    for header in ("X-Forwarded-Proto", "X-Forwarded-For", "X-Forwarded-Host", "X-Request-ID"):
        assert f"proxy_set_header {header}" in params


def test_grafana_dashboard_charts_every_metrics_series():
    import json

    from tests.ops.test_metrics import SERIES

    dashboard = json.loads((DEPLOY / "grafana-dashboard.json").read_text())
    exprs = " ".join(t["expr"] for panel in dashboard["panels"] for t in panel["targets"])
    assert [name for name in SERIES if name not in exprs] == []
