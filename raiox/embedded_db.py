"""The embedded PostgreSQL (with pgvector) used when ``DATABASE_URL`` is unset.

``pgserver`` ships PostgreSQL 16 and pgvector as a wheel: no root, no system package. The server
keeps its data in ``var/pgdata``, listens only on a Unix socket, is started by the first process
that needs it and left running for the next ones (``cleanup_mode=None``), so ``make run`` and
``make test`` reuse one server instead of paying the start-up each time.
"""

from __future__ import annotations

from pathlib import Path


def embedded_server(pgdata: Path):  # -> pgserver.PostgresServer (imported lazily: a heavy module)
    import warnings

    with warnings.catch_warnings():
        # platformdirs warns that XDG_RUNTIME_DIR is unset (as under systemd-less shells); pgserver
        # falls back to /tmp for its lock file, which is what we want.
        warnings.simplefilter("ignore")
        import pgserver

    pgdata.mkdir(parents=True, exist_ok=True)
    return pgserver.get_server(pgdata, cleanup_mode=None)


def embedded_database_url(pgdata: Path) -> str:
    """Start the embedded server if needed and return a URL for its ``postgres`` database."""
    from urllib.parse import quote

    # The server listens on a Unix socket only; a percent-encoded socket directory as the host is
    # the form dj-database-url turns into HOST (so `manage.py dbshell` and pg_dump find it too).
    socket_dir = embedded_server(pgdata).get_postmaster_info().socket_dir
    return f"postgresql://postgres@{quote(str(socket_dir), safe='')}/postgres"


def stop_embedded_server(pgdata: Path) -> None:
    """Stop the embedded server (used by `make db-stop` and the fault benchmarks)."""
    from pgserver._commands import pg_ctl

    if (pgdata / "postmaster.pid").exists():
        pg_ctl(["-w", "stop", "-m", "fast"], pgdata=pgdata, user="pgserver" if _is_root() else None)


def _is_root() -> bool:
    import os

    return os.geteuid() == 0
