"""Writes of a submission's embedding outside the normal processing (re-embedding command)."""

from __future__ import annotations

from collections.abc import Sequence

from django.db import transaction

from submissions.locks import submissions_select_for_update
from submissions.models import Submission


@transaction.atomic
def submission_set_embedding(*, submission_id: int, embedding: Sequence[float], model_id: str) -> Submission:
    """Replace a submission's stored embedding (e.g. after a model change); its Matches stay
    as they were until it is processed again."""
    submission = submissions_select_for_update().get(pk=submission_id)
    submission.embedding = list(embedding)
    submission.embedding_model = model_id
    submission.save(update_fields=["embedding", "embedding_model"])
    return submission
