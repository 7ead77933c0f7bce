"""Simultaneous requests, for the tests of what a lock or a constraint decides."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

from django.db import connection


def at_once(works: Sequence[Callable[[], object]], *, timeout: float | None = None) -> list:
    """Run each of ``works`` in its own thread, all released together at a barrier (so they
    overlap as simultaneous requests do); each thread closes its own database connection. Their
    results in order (None where one raised: pytest shows the thread's exception)."""
    barrier = threading.Barrier(len(works), timeout=timeout)
    results: list = [None] * len(works)

    def run(i: int) -> None:
        try:
            barrier.wait()
            results[i] = works[i]()
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(works))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results
