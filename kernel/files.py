"""Files kept together with the rows that point at them: no orphan file, no lost file.

The one rule, for every write that stores or drops a stored file:

- a file stored for a row (``stored_file``) is deleted again if the row's transaction rolls back —
  its own, or any outer transaction it is nested in (a bulk import's row, a confirmation that
  links the new reference image to its submission);
- a file a row stops pointing at (the row deleted, the file replaced) is deleted only once that
  change is committed (``delete_files_on_commit``): a rolled-back change keeps its file.

Callers open plain ``transaction.atomic()`` blocks; nothing here has to be told where the
outermost one is.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from django.core.files.base import ContentFile
from django.core.files.storage import Storage, storages
from django.db import transaction

logger = logging.getLogger(__name__)


class _UncommittedFile:
    """A stored file whose row is not committed yet.

    Django has no "on rollback" hook, but it keeps each ``on_commit`` callback in the connection's
    list until the outermost COMMIT runs it, and drops it from that list when its savepoint or
    the whole transaction rolls back (or the connection closes mid-transaction). ``keep`` is such
    a callback: run, the row is committed and the file stays; dropped un-run, the row is gone and
    CPython frees this object at once (reference counting), which deletes the file.

    So every other ``on_commit`` callback must be ``robust=True`` (``enqueue_on_commit`` and
    ``delete_files_on_commit`` are): Django stops at the first callback that raises and drops the
    rest, which would look like a rollback to a file registered after it.
    """

    __slots__ = ("name", "settled", "storage")

    def __init__(self, storage: Storage, name: str) -> None:
        self.storage = storage  # the storage it was written to, even if settings change meanwhile
        self.name = name
        self.settled = False

    def keep(self) -> None:
        self.settled = True

    def discard(self) -> None:
        if not self.settled:
            self.settled = True
            self.storage.delete(self.name)

    def __del__(self) -> None:
        try:
            self.discard()
        except Exception as exc:  # a destructor cannot raise; an unreachable bucket is logged
            logger.error("files: could not delete the file of a rolled-back row (%s)", type(exc).__name__)


@contextmanager
def stored_file(name: str, content: bytes) -> Iterator[str]:
    """Write ``content`` under ``name`` (or a free variant of it), open a transaction, and yield
    the stored name: the block saves the row that points at it.

    If the block raises — a validation error, a failed INSERT, a failed COMMIT — the file is
    deleted again, so an aborted intake leaves no orphan object in the bucket. Once the row is
    committed the file is never deleted here, even if something raises after the COMMIT (a
    ``transaction.on_commit`` callback such as queueing the task): the committed row points at it.

    Nested in an outer ``transaction.atomic()`` the block is a savepoint: the file stays once the
    *outer* transaction commits, and is deleted if the outer transaction rolls back instead.
    """
    storage = storages["default"]
    stored = storage.save(name, ContentFile(content))
    uncommitted = _UncommittedFile(storage, stored)
    try:
        with transaction.atomic():
            # Registered first, so it runs first after the COMMIT, before any callback the block adds.
            transaction.on_commit(uncommitted.keep, robust=True)
            yield stored
    except BaseException:
        uncommitted.discard()
        raise


def delete_files_on_commit(names: Iterable[str]) -> None:
    """Delete these stored files once the current transaction commits (at once outside one); a
    rollback keeps them, with the rows that still point at them. A file that cannot be deleted is
    logged, not raised: the rows are committed by then."""
    storage = storages["default"]
    doomed = [name for name in names if name]
    if not doomed:
        return

    def delete() -> None:
        for name in doomed:
            try:
                storage.delete(name)
            except Exception as exc:
                logger.error("files: could not delete a file (%s)", type(exc).__name__)

    transaction.on_commit(delete, robust=True)
