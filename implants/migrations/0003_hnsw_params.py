"""HNSW parameters chosen by measurement (issue 15, bench/search.py; figures in bench/RESULTS.md),
vectors stored inline, pgvector brought up to the server's version.

- ``ALTER EXTENSION vector UPDATE``: a database created under pgvector 0.6/0.7 whose server now
  ships 0.8 gets the new functions (iterative scans need the 0.8 library; the SQL objects follow).
- ``SET STORAGE PLAIN`` on the embedding: a 512-d vector is 2,056 bytes, just over PostgreSQL's
  TOAST threshold, so by default every vector lives in the TOAST table and an exact scan (the one
  the planner picks for small catalogues and selective filters) fetches each one from there. Inline,
  three rows fit a page and the scan reads the heap only (10^3 rows: p50 3.4 -> 1.8 ms here). Rows
  written before keep their storage until rewritten; new and re-embedded rows are inline.
- The HNSW index rebuilt with m=16, ef_construction=128 (was 16/64): see bench/RESULTS.md.
"""

import pgvector.django.indexes
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("implants", "0002_legacy_import"),
    ]

    operations = [
        migrations.RunSQL("ALTER EXTENSION vector UPDATE", reverse_sql=migrations.RunSQL.noop),
        migrations.RunSQL(
            "ALTER TABLE implants_referenceimage ALTER COLUMN embedding SET STORAGE PLAIN",
            reverse_sql="ALTER TABLE implants_referenceimage ALTER COLUMN embedding SET STORAGE EXTENDED",
        ),
        migrations.RemoveIndex(model_name="referenceimage", name="refimage_embedding_hnsw"),
        migrations.AddIndex(
            model_name="referenceimage",
            index=pgvector.django.indexes.HnswIndex(
                ef_construction=128,
                fields=["embedding"],
                m=16,
                name="refimage_embedding_hnsw",
                opclasses=["vector_cosine_ops"],
            ),
        ),
    ]
