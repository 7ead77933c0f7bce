"""Permission names checked by more than one app.

``VIEW_PATIENT_DATA``: who may see patient data — a patient's name, a result token, the original
file name, a confirmed case (a patient's X-ray kept as a reference image). It is declared on
``submissions.Submission`` (``Meta.permissions``), and checked by the submissions admin and API
and by the implants admin and selectors (confirmed cases); implants sits below submissions, so
the name lives here, once.
"""

from __future__ import annotations

VIEW_PATIENT_DATA = "submissions.view_patient_data"


def may_view_patient_data(user: object) -> bool:
    """Whether ``user`` (None for no one) holds ``VIEW_PATIENT_DATA``."""
    return bool(user is not None and getattr(user, "has_perm", None) and user.has_perm(VIEW_PATIENT_DATA))
