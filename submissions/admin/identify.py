"""The admin's one "identificar o implante" page: staff say which implant the X-ray shows — or, when
the dentist asked for a specialist's review and it is still open, that it is not identifiable,
with a note. Reached from the submission (its button and the list's action) and from the review
queue; its submit goes through ``services.submission_identify`` (a confirmation that, where a
review request is open, answers it too).

Served at ``/admin/submissions/submission/<id>/confirmar/``; the queue's old
``/admin/submissions/reviewrequest/<id>/responder/`` opens the same page (a GET is redirected, a
POST answered here as well).
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.admin import AdminSite
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.translation import gettext as _

from implants.models import ReferenceImage
from implants.selectors import reference_image_shown_to_staff
from kernel.errors import ApplicationError
from submissions import services
from submissions.access import CONFIRM_PERMISSION, can_see_patient
from submissions.forms import IdentifyForm
from submissions.models import ReviewRequest, Submission
from submissions.results.links import file_url
from submissions.results.queries import ranked_matches


def identify_url(submission_id: int) -> str:
    return reverse("admin:submissions_submission_confirm", args=[submission_id])


def identify_view(
    request: HttpRequest, *, admin_site: AdminSite, submission_id: int, answering: bool = False
) -> HttpResponse:
    """``answering``: the request came through the review request's own URL (it answers that one)."""
    if not request.user.has_perm(CONFIRM_PERMISSION):
        raise PermissionDenied
    submission = get_object_or_404(
        Submission.objects.select_related("confirmed_implant__manufacturer", "confirmed_by"), pk=submission_id
    )
    reviews = ReviewRequest.objects.select_related("implant__manufacturer", "answered_by")
    review = reviews.filter(submission=submission).first()
    change_url = reverse("admin:submissions_submission_change", args=[submission.pk])
    queue_url = reverse("admin:submissions_reviewrequest_changelist")
    posted = request.method == "POST"
    answering = answering or (posted and request.POST.get("answering") == "True")
    review_open = review is not None and (review.answered_at is None or answering)
    form = IdentifyForm(request.POST if posted else None, review_open=review_open)
    status = 200
    if posted and "unconfirm" in request.POST:
        services.submission_unconfirm(submission=submission)
        messages.success(request, _("Confirmação desfeita; a imagem de referência foi removida."))
        return HttpResponseRedirect(change_url)
    if posted and form.is_valid():
        implant = form.cleaned_data["implant"]
        try:
            answered = services.submission_identify(
                submission=submission,
                user=request.user,
                implant=implant,
                note=form.cleaned_data.get("answer_note", ""),
                answering=answering,
            )
        except ApplicationError as exc:
            form.add_error(exc.field if exc.field in form.fields else None, exc.message)
            status = exc.status
        else:
            if answered is not None:
                messages.success(request, _("Resposta enviada ao dentista."))
                return HttpResponseRedirect(queue_url)
            confirmed = _("Implante confirmado: a radiografia virou imagem de referência de %(implant)s.")
            messages.success(request, confirmed % {"implant": implant})
            return HttpResponseRedirect(change_url)
    elif posted:
        status = 400
    with_patient_data = can_see_patient(request.user)
    context = {
        **admin_site.each_context(request),
        "title": _("Identificar o implante do envio #%(id)s") % {"id": submission.pk},
        "opts": Submission._meta,
        "original": submission,
        "submission": submission,
        "review": review,
        "review_open": review_open,
        "xray_url": file_url(submission.image) or None,
        # A candidate's picture, unless it is another patient's X-ray the user may not see.
        "matches": [
            (m, _thumb(m.reference_image, with_patient_data=with_patient_data))
            for m in ranked_matches().filter(submission=submission)
        ],
        "form": form,
        "change_url": change_url,
        "queue_url": queue_url,
    }
    return TemplateResponse(request, "admin/submissions/submission/identify.html", context, status=status)


def _thumb(reference: ReferenceImage | None, *, with_patient_data: bool) -> str | None:
    shown = reference_image_shown_to_staff(reference, with_patient_data=with_patient_data)
    return file_url(shown.image) if shown else None
