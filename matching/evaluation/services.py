"""The write of an evaluation: storing a run so the admin shows it."""

from __future__ import annotations

from collections.abc import Sequence

from django.db import transaction

from matching.evaluation.summary import Summary
from matching.models import EvaluationReport


def evaluation_report_create(*, summaries: Sequence[Summary], html: str) -> EvaluationReport:
    """Store a run (the running model first, then --compare); per-query rows stay in report.json."""
    main = summaries[0]
    with transaction.atomic():
        report = EvaluationReport(
            model_id=main.model_id[:200],
            untrained=any(s.untrained for s in summaries),
            dataset=main.dataset[:200],
            queries=main.queries,
            top1=main.top1,
            top5=main.top5,
            summary={"models": [s.as_json(with_results=False) for s in summaries]},
            html=html,
        )
        report.full_clean()
        report.save()
    return report
