"""Every write to submissions (see core.py); other modules add their re-export lines below."""

from submissions.services.core import (  # noqa: F401
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
