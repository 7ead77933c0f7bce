"""The staff CSV export of the review list (the admin's export action), safe to open in a spreadsheet."""

from __future__ import annotations

from collections.abc import Iterator

from django.db.models import QuerySet
from django.utils import timezone

from kernel.spreadsheet import safe_cell
from submissions.models import ANSWER_TIME, Submission
from submissions.results.queries import with_top_match


def submissions_csv_rows(submissions: QuerySet[Submission], *, with_patient: bool) -> Iterator[list[object]]:
    """The header, then one row per submission (oldest first), safe to open in a spreadsheet.
    The patient's name only ``with_patient`` (staff holding ``view_patient_data``)."""
    header = ["id", "recebido_em", "origem", "situacao", "dentista", "email", "dente"]
    header += ["paciente"] if with_patient else []
    header += ["candidato_1", "similaridade_1", "implante_confirmado", "tempo_s", "motivo_falha"]
    yield header
    rows = with_top_match(submissions.select_related("confirmed_implant__manufacturer")).order_by("received_at")
    for s in rows.annotate(_secs=ANSWER_TIME):
        row: list[object] = [s.pk, timezone.localtime(s.received_at).isoformat(), s.source, s.status, s.dentist_name]
        row += [s.dentist_email, s.tooth] + ([s.patient] if with_patient else [])
        top = f"{s.top_manufacturer} {s.top_implant}" if s.top_implant else ""
        similarity = f"{s.top_similarity:.4f}" if s.top_similarity is not None else ""
        secs = f"{s._secs.total_seconds():.1f}" if s._secs is not None else ""
        row += [top, similarity, str(s.confirmed_implant or ""), secs, s.failure_reason]
        yield [safe_cell(v) for v in row]
