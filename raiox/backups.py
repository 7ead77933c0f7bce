"""Database backups to storage (``backups/`` in Spaces, or var/media locally), and restores.

``backup_create`` runs ``pg_dump --format=custom`` (compressed, restorable table by table) and
stores the file as ``backups/raiox-<UTC timestamp>.dump``, then keeps the newest
``RAIOX_BACKUP_KEEP``. ``backup_restore`` runs ``pg_restore --clean --if-exists`` in one
transaction: either the whole backup is restored or nothing changes.

The database is always the one Django is connected to (``connection.settings_dict``), so tests
back up and restore their own ``test_...`` database. Passwords go through ``PGPASSWORD``, never
the command line.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from django.conf import settings
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import connection, connections

from kernel.errors import ApplicationError

logger = logging.getLogger(__name__)

BACKUP_DIR = "backups/"
PREFIX = "raiox-"
SUFFIX = ".dump"


def _major_version(binary: str) -> int:
    """16 for "pg_dump (PostgreSQL) 16.2"; 0 when it cannot be run."""
    try:
        out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=30, check=True).stdout  # noqa: S603
        return int(out.split(")")[-1].strip().split(".")[0].split()[0])
    except (OSError, ValueError, IndexError, subprocess.SubprocessError):
        return 0


def pg_binary(name: str) -> str:
    """pg_dump/pg_restore: RAIOX_PG_BIN_DIR when set; else the first of PATH's and the embedded
    server's (18) whose major version is at least the server's (pg_dump refuses an older one)."""
    if settings.RAIOX_PG_BIN_DIR:
        return str(Path(settings.RAIOX_PG_BIN_DIR) / name)
    from raiox.embedded_db import bin_dir

    bundled = str(bin_dir() / name)
    on_path = shutil.which(name)
    if on_path:
        connection.ensure_connection()
        server_major = connection.pg_version // 10000
        if _major_version(on_path) >= server_major and _major_version(on_path) >= _major_version(bundled):
            return on_path
    return bundled


def _libpq_env() -> dict[str, str]:
    """The current connection's parameters as libpq environment variables."""
    db = connection.settings_dict
    env = dict(os.environ)
    for key, value in {
        "PGHOST": db.get("HOST"),
        "PGPORT": db.get("PORT"),
        "PGUSER": db.get("USER"),
        "PGPASSWORD": db.get("PASSWORD"),
        "PGDATABASE": db.get("NAME"),
        "PGSSLMODE": (db.get("OPTIONS") or {}).get("sslmode"),
    }.items():
        if value:
            env[key] = str(value)
        else:
            env.pop(key, None)
    return env


def _run(args: list[str]) -> None:
    result = subprocess.run(args, env=_libpq_env(), capture_output=True, text=True, check=False)  # noqa: S603
    if result.returncode != 0:
        # stderr of pg_dump/pg_restore names objects and errors, never row contents.
        last = (result.stderr.strip().splitlines() or [""])[-1][-300:]
        raise ApplicationError(
            f"{Path(args[0]).name} falhou ({result.returncode}: {last}): confira DATABASE_URL, se o PostgreSQL "
            "está no ar e RAIOX_PG_BIN_DIR.",
            code="backup_failed",
        )


def backup_list() -> list[str]:
    """Stored backups, oldest first (names sort by their UTC timestamp)."""
    try:
        _, files = default_storage.listdir(BACKUP_DIR)
    except FileNotFoundError:
        return []
    return sorted(f"{BACKUP_DIR}{name}" for name in files if name.startswith(PREFIX) and name.endswith(SUFFIX))


def backup_create(*, keep: int | None = None) -> str:
    """Dump the database to storage; returns the stored name. Older backups beyond ``keep`` are deleted."""
    keep = settings.RAIOX_BACKUP_KEEP if keep is None else keep
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    with tempfile.TemporaryDirectory(prefix="raiox-backup-") as tmp:
        path = Path(tmp) / f"{PREFIX}{stamp}{SUFFIX}"
        _run([pg_binary("pg_dump"), "--format=custom", "--compress=6", "--no-owner", "--no-acl", f"--file={path}"])
        with path.open("rb") as fh:
            name = default_storage.save(f"{BACKUP_DIR}{path.name}", File(fh, name=path.name))
        size = path.stat().st_size
    logger.info("backup: stored %s (%d bytes)", name, size)
    backup_prune(keep=keep)
    return name


def backup_prune(*, keep: int) -> list[str]:
    """Delete all but the newest ``keep`` backups; returns the deleted names."""
    existing = backup_list()
    doomed = existing[: max(len(existing) - max(keep, 1), 0)]
    for name in doomed:
        default_storage.delete(name)
        logger.info("backup: deleted old %s", name)
    return doomed


def backup_restore(*, name: str | None = None) -> str:
    """Restore a stored backup (the newest when ``name`` is None) over the current database."""
    existing = backup_list()
    if name is None:
        if not existing:
            raise ApplicationError("Nenhum backup encontrado.", code="no_backup")
        name = existing[-1]
    elif not name.startswith(BACKUP_DIR):
        name = f"{BACKUP_DIR}{name}"
    if name not in existing:
        raise ApplicationError(f"Backup não encontrado: {name}", code="no_backup")
    with tempfile.TemporaryDirectory(prefix="raiox-restore-") as tmp:
        path = Path(tmp) / "restore.dump"
        with default_storage.open(name, "rb") as src, path.open("wb") as dst:
            shutil.copyfileobj(src, dst)
        # Django's own connections would hold locks on the tables being dropped and recreated.
        connections.close_all()
        _run(
            [
                pg_binary("pg_restore"),
                "--clean",
                "--if-exists",
                "--no-owner",
                "--no-acl",
                "--no-comments",
                "--single-transaction",
                "--exit-on-error",
                f"--dbname={connection.settings_dict['NAME']}",
                str(path),
            ]
        )
    logger.info("backup: restored %s", name)
    return name


def backup_task() -> str:
    """The daily django-q2 schedule's entry point."""
    return backup_create()
