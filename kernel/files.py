"""Storing a file together with the row that points at it, leaving neither alone on failure."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage


@contextmanager
def stored_file(name: str, content: bytes) -> Iterator[str]:
    """Write ``content`` under ``name`` (or a free variant of it) and yield the stored name.

    If the block raises — a validation error, a failed INSERT, a failed COMMIT — the file is
    deleted again, so an aborted intake leaves no orphan object in the bucket. Use it *outside*
    ``transaction.atomic()`` so that a failing commit is inside the guarded block too.
    """
    stored = default_storage.save(name, ContentFile(content))
    try:
        yield stored
    except BaseException:
        default_storage.delete(stored)
        raise
