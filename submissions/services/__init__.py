"""Every write to submissions lives in this package; import services from here."""

from submissions.services.core import *  # noqa: F403
from submissions.services.core import (  # noqa: F401
    NOTIFY_TASK,
    PROCESS_TASK,
    IntakeRecord,
    MatchCandidate,
    submission_attach_image,
    submission_create,
    submission_fail,
    submission_get_by_token,
    submission_record_result,
    submission_reprocess,
    submission_start_processing,
)
from submissions.services.dentist import (  # noqa: F401
    REFINE_FIELDS,
    submission_crop,
    submission_record_feedback,
    submission_refine,
)
