"""Every write to submissions, one module per concern; import services from here."""

from submissions.services.core import (  # noqa: F401
    NOTIFY_TASK,
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
from submissions.services.review import submission_confirm, submission_unconfirm  # noqa: F401
