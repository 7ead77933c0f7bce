"""The old system that ``import_legacy`` reads: its ``implants`` table (in another database on the
embedded server), its vectors, and one run of the command against it."""

from __future__ import annotations

import io
from urllib.parse import quote

import numpy as np
from django.core.management import call_command
from django.db import connection

OLD_TABLE = """
CREATE EXTENSION IF NOT EXISTS vector;
CREATE TABLE implants (
    id SERIAL PRIMARY KEY,
    name VARCHAR(255),
    manufacturer VARCHAR(255),
    type VARCHAR(255),
    image_url TEXT,
    embedding vector(512)
);
"""


def server_url(dbname: str) -> str:
    s = connection.settings_dict
    auth = quote(s["USER"] or "", safe="") + (":" + quote(s["PASSWORD"], safe="") if s.get("PASSWORD") else "")
    port = f":{s['PORT']}" if s.get("PORT") else ""
    return f"postgresql://{auth}@{quote(str(s['HOST'] or ''), safe='')}{port}/{dbname}"


def vector(seed: int) -> str:
    v = np.random.default_rng(seed).normal(size=512)
    v /= np.linalg.norm(v)
    return "[" + ",".join(f"{x:.6f}" for x in v) + "]"


def run_import_legacy(old_system: dict, *extra: str) -> str:
    """``import_legacy`` against ``old_system`` (its database URL, bucket and endpoint): its output."""
    out = io.StringIO()
    call_command(
        "import_legacy",
        "--database-url",
        old_system["url"],
        "--bucket",
        old_system["bucket"],
        "--endpoint-url",
        old_system["endpoint"],
        *extra,
        stdout=out,
        stderr=io.StringIO(),
    )
    return out.getvalue()
