"""Every write to submissions, one module per concern, re-exported here:
``from submissions import services``.

``IntakeRecord``, ``MatchCandidate`` (``submissions.fields``) and ``RESULT_CHANNEL``
(``kernel.queue``) are re-exported too: they are the argument types and the wake-up of these
services, and ``matching`` reads them as ``services.MatchCandidate`` / ``services.RESULT_CHANNEL``.
"""

from kernel.queue import RESULT_CHANNEL  # noqa: F401
from submissions.fields import IntakeRecord, MatchCandidate  # noqa: F401
from submissions.services.dentist import (  # noqa: F401
    submission_record_feedback,
    submission_refine,
)
from submissions.services.email import review_request_email_answer, submission_email_result  # noqa: F401
from submissions.services.embedding import submission_set_embedding  # noqa: F401
from submissions.services.found import submission_create_found_regions  # noqa: F401
from submissions.services.identify import submission_identify  # noqa: F401
from submissions.services.intake import submission_create, submission_create_with_regions  # noqa: F401
from submissions.services.lifecycle import (  # noqa: F401
    retention_apply,
    submission_delete,
    submission_requeue_stuck,
    submissions_delete,
)
from submissions.services.processing import (  # noqa: F401
    NOTIFY_TASK,
    PROCESS_TASK,
    SubmissionBusy,
    submission_attach_image,
    submission_claim_waiting,
    submission_fail,
    submission_record_result,
    submission_release,
    submission_reprocess,
    submission_start_processing,
)
from submissions.services.regions import submission_add_region  # noqa: F401
from submissions.services.remote import (  # noqa: F401
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
)
