"""Helpers shared by the bulk imports (old system, catalogue files): all-or-nothing rows and the
per-row report. Every write still goes through ``implants.services``."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from django.core.files.storage import default_storage
from django.db import transaction

CREATED = "created"
UPDATED = "updated"
LINKED = "linked"
UNCHANGED = "unchanged"
SKIPPED = "skipped"


class RowSkipped(Exception):
    """A row that cannot be imported; the message is the reason shown in the report."""


@dataclass
class RowOutcome:
    key: str  # what identifies the row to the operator: line number, legacy id
    label: str  # manufacturer and name
    status: str
    reason: str = ""
    images: int = 0


@dataclass
class ImportReport:
    outcomes: list[RowOutcome] = field(default_factory=list)
    queued_batches: int = 0

    def add(self, outcome: RowOutcome) -> None:
        self.outcomes.append(outcome)

    def counts(self) -> dict[str, int]:
        counted = Counter(o.status for o in self.outcomes)
        return {status: counted.get(status, 0) for status in (CREATED, UPDATED, LINKED, UNCHANGED, SKIPPED)}

    def lines(self) -> list[str]:
        out = [f"  {o.key}: {o.label} — {o.status}" + (f" ({o.reason})" if o.reason else "") for o in self.outcomes]
        counts = self.counts()
        out.append(
            "Resultado: "
            + ", ".join(f"{n} {status}" for status, n in counts.items() if n or status in (CREATED, SKIPPED))
            + f"; {sum(o.images for o in self.outcomes)} imagens novas"
        )
        return out


@contextmanager
def all_or_nothing() -> Iterator[list[str]]:
    """One row's transaction; the caller appends the names of files it stored. If the row rolls
    back, those files are deleted too, so a failed row leaves neither a row nor an object."""
    stored: list[str] = []
    try:
        with transaction.atomic():
            yield stored
    except BaseException:
        for name in stored:
            default_storage.delete(name)
        raise
