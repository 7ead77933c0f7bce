"""Staff say which implant an X-ray shows: the one act behind the admin's "identificar o implante"
page, whether they came from the submission or from the specialist-review queue.

Where the submission has an open review request, identifying it is the specialist's answer
(``review_request_answer``, which confirms); otherwise it is the staff confirmation
(``submission_confirm``). "Not identifiable" exists only as an answer to an open request.
"""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from implants.models import Implant
from kernel.errors import ApplicationError
from submissions.locks import review_requests_select_for_update
from submissions.models import ReviewRequest, Submission
from submissions.services.review import submission_confirm
from submissions.services.review_request import review_request_answer


def submission_identify(
    *,
    submission: Submission,
    user: AbstractBaseUser | None,
    implant: Implant | None = None,
    note: object = "",
    answering: bool = False,
) -> ReviewRequest | None:
    """Record ``implant`` as the one in ``submission``'s X-ray, answering its review request where
    one is open (then ``implant=None`` means "not identifiable" and ``note`` says why). Returns the
    answered request, or None when there was none to answer (a plain confirmation).

    ``answering``: the page showed an open request; if another reviewer answered it meanwhile, this
    is a conflict (409), not a silent re-confirmation over their answer.

    One transaction, locks in the order of ``submissions.locks``: the review request first (the
    first answer wins), then the submission (``submission_confirm``).
    """
    with transaction.atomic():
        review = review_requests_select_for_update().filter(submission_id=submission.pk).first()
        if review is not None and (review.answered_at is None or answering):
            return review_request_answer(review_request=review, user=user, implant=implant, note=note)
        if implant is None:
            raise ApplicationError(
                "Só um pedido de revisão aberto pode ser respondido como “não identificável”; escolha o implante.",
                field="implant",
                code="required",
            )
        submission_confirm(submission=submission, implant=implant, user=user)
    return None
