"""Row locks on submissions and review requests, taken in one order so that two transactions
never wait on each other (in the manner of Saleor's ``lock_objects.py``). Every ``select_for_update``
of ``submissions/services`` starts from one of these querysets.

The order, whenever one transaction locks more than one row:

1. a **ReviewRequest before its Submission**: answering a review locks the request (the first
   answer wins), then confirms its submission, which locks the submission (``submission_identify``
   -> ``review_request_answer`` -> ``submission_confirm``); deleting submissions, whose cascade
   deletes their requests, locks the requests first too (``submissions_delete``);
2. a **film before its regions** (child submissions): a crop or the finder's regions lock the film,
   then read and insert its children (``submission_add_region``, ``submission_create_found_regions``);
3. **several rows of one model by primary key**, ascending (``order_by("pk")`` below): two
   deletions of overlapping sets queue on the lowest pk instead of each holding what the other
   wants. The worker's batch claim orders by age instead, and may: it skips locked rows
   (``SKIP LOCKED``) and so never waits.
"""

from __future__ import annotations

from django.db.models import QuerySet

from submissions.models import ReviewRequest, Submission


def submissions_select_for_update(**options: object) -> QuerySet[Submission]:
    """Submissions locked when read, in pk order (``options``: ``of``, ``skip_locked``)."""
    return Submission.objects.select_for_update(**options).order_by("pk")


def review_requests_select_for_update(**options: object) -> QuerySet[ReviewRequest]:
    """Review requests locked when read, in pk order; lock them before their submissions."""
    return ReviewRequest.objects.select_for_update(**options).order_by("pk")
