"""Every write to submissions, one module per concern, re-exported here:
``from submissions import services``."""

from submissions.services.core import (  # noqa: F401
    NOTIFY_TASK,
    PROCESS_TASK,
    RESULT_CHANNEL,
    IntakeRecord,
    MatchCandidate,
    SubmissionBusy,
    access_submission_by_token,
    may_read_every_submission,
    submission_attach_image,
    submission_claim_waiting,
    submission_create,
    submission_fail,
    submission_get_by_token,
    submission_record_result,
    submission_release,
    submission_reprocess,
    submission_start_processing,
)
from submissions.services.dentist import (  # noqa: F401
    submission_record_feedback,
    submission_refine,
)
from submissions.services.embedding import submission_set_embedding  # noqa: F401
from submissions.services.found import submission_create_found_regions  # noqa: F401
from submissions.services.lifecycle import (  # noqa: F401
    retention_apply,
    submission_delete,
    submission_requeue_stuck,
    submissions_delete,
)
from submissions.services.notify import submission_mark_notified, submission_notify_dentist  # noqa: F401
from submissions.services.regions import submission_add_region  # noqa: F401
from submissions.services.remote import (  # noqa: F401
    RemoteFetchError,
    remote_image_download,
    stored_image_copy,
    submission_decode_original,
    submission_decode_pending_image,
    submission_prepare_image,
    submission_prepared_twin,
    submission_read_pending_original,
)
from submissions.services.review import submission_confirm, submission_unconfirm  # noqa: F401
from submissions.services.review_request import (  # noqa: F401
    NOTIFY_REVIEW_TASK,
    review_request_answer,
    review_request_create,
    review_request_notify,
)
