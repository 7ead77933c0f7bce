"""Storing a file together with the row that points at it, leaving neither alone on failure."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction


@contextmanager
def stored_file(name: str, content: bytes) -> Iterator[str]:
    """Write ``content`` under ``name`` (or a free variant of it), open a transaction, and yield
    the stored name: the block saves the row that points at it.

    If the block raises — a validation error, a failed INSERT, a failed COMMIT — the file is
    deleted again, so an aborted intake leaves no orphan object in the bucket. Once the row is
    committed the file is never deleted here, even if something raises after the COMMIT (a
    ``transaction.on_commit`` callback such as queueing the task): the committed row points at it.

    Nested in an outer ``transaction.atomic()`` the block is a savepoint and the file counts as
    kept once the *outer* transaction commits.
    """
    stored = default_storage.save(name, ContentFile(content))
    committed = False

    def mark_committed() -> None:
        nonlocal committed
        committed = True

    try:
        with transaction.atomic():
            # Registered first, so it runs first after the COMMIT, before any callback the block adds.
            transaction.on_commit(mark_committed)
            yield stored
    except BaseException:
        if not committed:
            default_storage.delete(stored)
        raise
