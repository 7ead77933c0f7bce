"""Every write to submissions, one module per concern; import from here."""

from submissions.services.core import (  # noqa: F401
    PROCESS_TASK,
    IntakeRecord,
    MatchCandidate,
    clean_text,
    submission_attach_image,
    submission_create,
    submission_fail,
    submission_get_by_token,
    submission_record_result,
    submission_reprocess,
    submission_start_processing,
)
from submissions.services.embedding import submission_set_embedding  # noqa: F401
