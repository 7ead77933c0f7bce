"""Who may reach a submission and what of it they may see, in one place (Zulip's ``access_*``
functions): a public page reaches a submission only through its unguessable token
(``submission_get_by_token``), an API user through ``access_submission_by_token``; staff pages show
patient data only to ``can_see_patient``, and confirm or answer a review with ``CONFIRM_PERMISSION``.

The patient-data permission itself is named once in ``kernel.permissions`` (``VIEW_PATIENT_DATA``),
because ``implants`` — below submissions — checks it too (confirmed cases).
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.http import Http404

from kernel.permissions import may_view_patient_data
from submissions.models import Source, Submission

# Confirming the implant of an X-ray and answering a specialist review (the same act: an
# "identified" answer is the confirmation) need the model's change permission.
CONFIRM_PERMISSION = "submissions.change_submission"


def can_see_patient(user: object) -> bool:
    """Staff pages (admin list, detail, CSV, the staff API) show the patient's name, the result
    token and the original file name only to holders of ``view_patient_data``."""
    return may_view_patient_data(user)


def submission_get_by_token(token: object) -> Submission:
    """The only way a public page reaches a Submission: its unguessable token. 404 otherwise."""
    try:
        return Submission.objects.get(token=token)
    except (Submission.DoesNotExist, ValidationError, ValueError) as exc:
        raise Http404 from exc


def may_read_every_submission(user) -> bool:
    """Staff who read submissions (reviewers, the API's staff reads): logged in, staff, and holding
    the model's view permission."""
    return bool(
        user is not None and user.is_authenticated and user.is_staff and user.has_perm("submissions.view_submission")
    )


def access_submission_by_token(token: object, *, user) -> Submission:
    """The one rule for an API user reaching a submission by its token (``GET /api/match/<token>/``,
    asking or reading its specialist review). 404 otherwise, the answer of an unknown token, so a
    token seen elsewhere tells another API user nothing, not even that the submission exists.

    - Sent through the API (``source=api``: ``POST /api/match/`` and its regions): its ``owner``
      only, or staff who read every submission (``may_read_every_submission``). An API row without
      an owner (its user deleted, or sent before owners were recorded) is staff's alone.
    - Sent by an anonymous route (the upload page, ``/upload``, Jotform, the webhook): the token
      is the capability, as today. Those senders have no account to be checked against; they get
      the token (or its e-mailed link) and the result page ``/r/<token>/`` opens for whoever holds
      it, without logging in (DESIGN.md, Privacy: "reachable only through unguessable tokens"). The
      API then gives a token holder nothing the page does not.

    The result page itself stays a capability for API rows too: the API answer's ``result_url``
    and the result e-mail are the links the owner hands to the dentist, who has no API account."""
    submission = submission_get_by_token(token)
    if submission.source != Source.API:
        return submission
    if may_read_every_submission(user):
        return submission
    if user is not None and user.is_authenticated and submission.owner_id == user.pk:
        return submission
    raise Http404
