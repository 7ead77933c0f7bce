"""What changes behind PgBouncer in transaction mode (deploy/README.md "Several droplets"): each
transaction may run on another server connection, shared with other clients. So nothing may rely
on session state: no LISTEN (``RAIOX_DB_LISTEN = False``: the worker and a waiting ``/upload`` poll)
and the search's HNSW settings are ``SET LOCAL``, alive for one transaction only — a plain ``SET``
would stay on the server connection for whichever client gets it next."""

from __future__ import annotations

import re

import numpy as np
import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django_q.models import OrmQ

from implants.models import Implant, ReferenceImage
from kernel.queue import NotifyingORMBroker, notifications
from matching.search import EF_SEARCH, _one_round_trip, forget_images_per_implant, nearest_implants
from tests.ops.helpers import env_example, manage

MODEL_ID = "test/pgbouncer"


def _listening_channels() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_listening_channels()")
        return cursor.fetchone()[0]


def _ef_search() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SHOW hnsw.ef_search")
        return cursor.fetchone()[0]


def test_the_transaction_mode_settings_come_from_the_environment(settings):
    """What deploy/README.md tells the operator to set behind the pool reaches Django."""
    env = {**env_example(), "DATABASE_URL": settings.DATABASE_URL}
    show = (
        "from django.conf import settings; from django.db import connection; "
        "print(settings.RAIOX_DB_LISTEN, connection.settings_dict['DISABLE_SERVER_SIDE_CURSORS'], "
        "connection.settings_dict['CONN_MAX_AGE'])"
    )
    assert manage(["shell", "--no-imports", "-c", show], env).stdout.split() == ["True", "False", "60"]
    pooled = {**env, "RAIOX_DB_LISTEN": "0", "DB_DISABLE_SERVER_SIDE_CURSORS": "1", "DB_CONN_MAX_AGE": "0"}
    result = manage(["shell", "--no-imports", "-c", show], pooled)
    assert result.stdout.split() == ["False", "True", "0"], result.stderr


@pytest.mark.django_db(transaction=True)
def test_with_listening_off_nothing_listens_and_the_worker_still_takes_tasks(settings):
    # On (the default): a waiting request LISTENs on its connection for the worker's NOTIFY...
    with notifications("submission_result"):
        assert _listening_channels() == 1
    assert _listening_channels() == 0
    # ...and the worker's pusher on a connection of its own.
    listening = NotifyingORMBroker(list_key="pgbouncer-test")
    assert listening.dequeue() is None
    assert listening._listen_conn is not None
    listening._listen_conn.close()

    # ...off: no LISTEN is sent at all (PgBouncer would leave it on a pooled server connection).
    settings.RAIOX_DB_LISTEN = False
    with notifications("submission_result") as wait:
        assert _listening_channels() == 0
        assert wait(0.01) is False  # it sleeps; the caller reads the status again
    broker = NotifyingORMBroker(list_key="pgbouncer-test")
    task_id = broker.enqueue("payload")
    taken = broker.dequeue()  # the queue is read, not waited on
    assert taken == [(task_id, "payload")]
    assert getattr(broker, "_listen_conn", None) is None  # no listening connection was opened
    assert broker.dequeue() is None  # empty: it slept the poll interval instead
    OrmQ.objects.filter(pk=task_id).delete()


@pytest.fixture
def vectors(catalog):
    rng = np.random.default_rng(7)
    rows = []
    for implant in Implant.objects.all()[:8]:
        for _ in range(4):
            v = rng.normal(size=512)
            rows.append(
                ReferenceImage(
                    implant=implant,
                    image="referencia/v.png",
                    embedding=(v / np.linalg.norm(v)).tolist(),
                    embedding_model=MODEL_ID,
                )
            )
    ReferenceImage.objects.bulk_create(rows)
    forget_images_per_implant()
    query = rng.normal(size=512)
    return (query / np.linalg.norm(query)).tolist()


@pytest.mark.django_db(transaction=True)
def test_ef_search_holds_for_its_own_transaction_and_never_leaks_to_the_next(vectors):
    # Autocommit, as a web or worker process runs: the search sends SET LOCAL with its statement.
    with CaptureQueriesContext(connection) as queries:
        assert nearest_implants(vectors, model_id=MODEL_ID, k=3, ef_search=EF_SEARCH + 23)
    searches = [q["sql"] for q in queries.captured_queries if "<=>" in q["sql"]]
    applied = {re.search(r"SET LOCAL hnsw\.ef_search = (\d+);", sql).group(1) for sql in searches}
    assert len(applied) == 1 and int(applied.pop()) >= EF_SEARCH + 23
    default = _ef_search()
    assert default == "40"  # pgvector's default: nothing stayed on the (possibly shared) connection

    # Within the one message the setting is in force, and gone with its implicit transaction.
    assert _one_round_trip("SET LOCAL hnsw.ef_search = 123;", "SELECT current_setting('hnsw.ef_search')", ()) == [
        ("123",)
    ]
    assert _ef_search() == default

    # Inside an outer transaction it lasts until that transaction ends, not one statement longer.
    with transaction.atomic(), CaptureQueriesContext(connection) as queries:
        nearest_implants(vectors, model_id=MODEL_ID, k=3, ef_search=EF_SEARCH + 23)
        sql = next(q["sql"] for q in queries.captured_queries if "<=>" in q["sql"])
        assert _ef_search() == re.search(r"SET LOCAL hnsw\.ef_search = (\d+);", sql).group(1)
    assert _ef_search() == default

    # What the search avoids: a plain SET stays on the connection for the next transaction (under
    # PgBouncer's transaction mode, another client's).
    with connection.cursor() as cursor:
        cursor.execute("SET hnsw.ef_search = 77")
    assert _ef_search() == "77"
    with connection.cursor() as cursor:
        cursor.execute("RESET hnsw.ef_search")
