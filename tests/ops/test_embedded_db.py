"""The embedded PostgreSQL 18 + pgvector 0.8 (raiox/embedded_db.py): start, reuse from another
process, several starters at once, stop, restart after kill -9 and after a stale pid file, and
an old PostgreSQL 16 data directory refused without being touched.

Each test has its own data directory under tmp_path (the session's test database is never
touched); servers are started in fresh processes, as `make run`, the worker and pytest do.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg
import pytest

from raiox.embedded_db import EmbeddedDatabaseError, embedded_database_url, stop_embedded_server

ROOT = Path(__file__).resolve().parents[2]


def start_in_new_process(pgdata: Path) -> str:
    code = (
        "import sys; from pathlib import Path; "
        "from raiox.embedded_db import embedded_database_url as f; print(f(Path(sys.argv[1])))"
    )
    result = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", code, str(pgdata)], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout.strip().splitlines()[-1]


def postmaster_pid(pgdata: Path) -> int:
    return int((pgdata / "postmaster.pid").read_text().splitlines()[0])


def query(url: str, sql: str):
    """Run ``;``-separated statements; the last one's first row."""
    with psycopg.connect(url, autocommit=True) as conn:
        *first, last = [part for part in sql.split(";") if part.strip()]
        for statement in first:
            conn.execute(statement)
        cursor = conn.execute(last)
        return cursor.fetchone() if cursor.description else None


@pytest.fixture
def pgdata(tmp_path):
    path = tmp_path / "pgdata"
    yield path
    stop_embedded_server(path)


def test_server_is_postgres_18_with_pgvector_08_on_a_unix_socket_only(pgdata):
    url = embedded_database_url(pgdata)
    query(url, "CREATE EXTENSION IF NOT EXISTS vector")
    assert query(url, "SHOW server_version_num")[0].startswith("18")
    major, minor = query(url, "SELECT extversion FROM pg_extension WHERE extname = 'vector'")[0].split(".")[:2]
    assert (int(major), int(minor)) >= (0, 8)
    assert query(url, "SHOW listen_addresses") == ("",)  # no TCP port at all
    assert query(url, "SET hnsw.iterative_scan = relaxed_order; SHOW hnsw.iterative_scan") == ("relaxed_order",)


def test_a_second_process_attaches_to_the_running_server(pgdata):
    url = start_in_new_process(pgdata)
    pid = postmaster_pid(pgdata)
    query(url, "CREATE TABLE marks (n int); INSERT INTO marks VALUES (7)")
    assert start_in_new_process(pgdata) == url
    assert postmaster_pid(pgdata) == pid  # the same server, not a second one
    assert query(url, "SELECT n FROM marks") == (7,)


def test_several_processes_starting_at_once_share_one_server(pgdata):
    with ThreadPoolExecutor(4) as pool:
        urls = set(pool.map(start_in_new_process, [pgdata] * 4))
    assert len(urls) == 1
    assert query(urls.pop(), "SELECT 1") == (1,)


def test_stop_then_start_again_keeps_the_data(pgdata):
    url = start_in_new_process(pgdata)
    query(url, "CREATE TABLE marks (n int); INSERT INTO marks VALUES (1)")
    assert stop_embedded_server(pgdata) is True
    with pytest.raises(psycopg.OperationalError):
        query(url, "SELECT 1")
    assert stop_embedded_server(pgdata) is False  # nothing left to stop
    assert start_in_new_process(pgdata) == url
    assert query(url, "SELECT n FROM marks") == (1,)


def test_restart_after_kill_9_recovers_committed_data(pgdata):
    url = start_in_new_process(pgdata)
    query(url, "CREATE TABLE marks (n int); INSERT INTO marks VALUES (42)")
    os.kill(postmaster_pid(pgdata), signal.SIGKILL)
    while (pgdata / "postmaster.pid").exists() and Path(f"/proc/{postmaster_pid(pgdata)}").exists():
        time.sleep(0.05)
    assert (pgdata / "postmaster.pid").exists()  # left behind by the crash
    assert start_in_new_process(pgdata) == url
    assert query(url, "SELECT n FROM marks") == (42,)


def test_a_pid_file_naming_another_live_program_is_not_taken_for_the_server(pgdata):
    url = start_in_new_process(pgdata)
    query(url, "CREATE TABLE marks (n int); INSERT INTO marks VALUES (3)")
    stop_embedded_server(pgdata)
    # As after a reboot in a container: the old PID now belongs to some other process.
    other = subprocess.Popen(["sleep", "60"])  # noqa: S607
    try:
        (pgdata / "postmaster.pid").write_text(f"{other.pid}\n{pgdata}\n0\n5432\n{pgdata}\n\n0 0\nready\n")
        assert start_in_new_process(pgdata) == url
        assert query(url, "SELECT n FROM marks") == (3,)
        assert postmaster_pid(pgdata) != other.pid
    finally:
        other.kill()
        other.wait()


def test_a_data_directory_of_postgresql_16_is_refused_untouched(tmp_path):
    old = tmp_path / "pgdata"
    old.mkdir()
    (old / "PG_VERSION").write_text("16\n")
    (old / "base").mkdir()
    before = sorted(p.name for p in old.iterdir())
    with pytest.raises(EmbeddedDatabaseError, match=r"PostgreSQL 16.*make db-upgrade"):
        embedded_database_url(old)
    assert sorted(p.name for p in old.iterdir()) == before
    assert (old / "PG_VERSION").read_text() == "16\n"


@pytest.mark.django_db
def test_pgvector_older_than_08_is_refused_by_the_check_and_the_healthcheck(monkeypatch):
    from raiox import checks, health

    assert checks.pgvector_supported("0.8.0") and checks.pgvector_supported("0.10.1")
    assert not checks.pgvector_supported("0.7.4") and not checks.pgvector_supported("0.6.2")
    assert checks.check_pgvector_version(databases=["default"]) == []  # this server: 0.8.x
    assert health.check_pgvector()["ok"] is True
    # The same checks against a server whose pgvector is 0.7: refused, with the reason.
    monkeypatch.setattr(checks, "MIN_PGVECTOR", (0, 99))
    errors = checks.check_pgvector_version(databases=["default"])
    assert [e.id for e in errors] == ["raiox.E003"] and "0.8 or newer" in errors[0].msg
    answer = health.check_pgvector()
    assert answer["ok"] is False and "0.8" in answer["error"]
