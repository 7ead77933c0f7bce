"""The dentist's pages: upload, result (with status polling), refine, feedback, crop, and the
Jotform thank-you redirect.

Thin views: parse the request, call a service or selector, render. Public pages reach a
Submission only through ``submission_get_by_token`` (the result token is the capability), except
the Jotform thank-you redirect, which finds it by Jotform's own id once and sends the browser on
to its tokened page. Nothing here imports ``matching`` (torch
stays out of web processes).
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.contrib import messages
from django.core.cache import caches
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from implants.models import REFINE_FIELDS
from kernel.errors import ApplicationError, with_retry_after
from kernel.http import RateLimited, check_rate, rate_limit_page, wants_json
from submissions.access import submission_get_by_token
from submissions.forms import CropForm, ThankYouQuery, UploadForm
from submissions.intake.crop import crop_create
from submissions.intake.fields import FORM_NAMES, client_names
from submissions.models import Source, Submission
from submissions.results.links import result_path
from submissions.results.page import submission_result_page
from submissions.results.queries import finding
from submissions.services import (
    review_request_create,
    submission_create,
    submission_record_feedback,
    submission_refine,
)

logger = logging.getLogger(__name__)


def _upload_context(form: UploadForm) -> dict:
    return {
        "form": form,
        "max_bytes": settings.RAIOX_MAX_UPLOAD_BYTES,
        "max_mb": settings.RAIOX_MAX_UPLOAD_BYTES // 2**20,
    }


@require_http_methods(["GET", "POST"])
@rate_limit_page("intake")
def upload(request: HttpRequest) -> HttpResponse:
    if request.method == "GET":
        return render(request, "submissions/upload.html", _upload_context(UploadForm()))
    form = UploadForm(request.POST, request.FILES)
    status = 400
    if form.is_valid():
        try:
            with client_names(FORM_NAMES):
                submission, _created = submission_create(intake=form.intake)
        except ApplicationError as exc:
            form.add_refusal(exc)
            status = exc.status
        else:
            url = result_path(submission)
            if wants_json(request):
                return JsonResponse({"redirect": url}, status=201)
            return redirect(url)
    if wants_json(request):
        errors = {name: [str(m) for m in msgs] for name, msgs in form.errors.items()}
        return JsonResponse({"errors": errors}, status=status)
    return render(request, "submissions/upload.html", _upload_context(form), status=status)


def _result_context(request: HttpRequest, submission: Submission) -> dict:
    return {"view": submission_result_page(submission), "submission": submission}


@never_cache
@require_GET
def result(request: HttpRequest, token: str) -> HttpResponse:
    submission = submission_get_by_token(token)
    return render(request, "submissions/result.html", _result_context(request, submission))


@never_cache
@require_GET
def result_status(request: HttpRequest, token: str) -> JsonResponse:
    """Polled by the result page while the X-ray is being analysed. No patient data in here."""
    submission = submission_get_by_token(token)
    context = _result_context(request, submission)
    view = context["view"]
    return JsonResponse(
        {
            "status": view.status,
            "status_label": view.status_label,
            "state": view.state_key,
            "is_done": view.is_done,
            "is_failed": view.is_failed,
            # Keep polling while a marked region is still being analysed.
            "is_pending": view.is_pending or view.regions_pending,
            # The worker swaps the original for its decoded PNG: the page follows the new file.
            "image_url": view.image_url,
            # What the finder saw (boxes only, no patient data), what to fix, "nothing found".
            **finding(submission),
            # Each candidate's calibrated probability (0-100; null: the model is not calibrated yet)
            # and its label's level, as the page shows them.
            "candidates": [
                {"rank": c.rank, "probability_percent": c.probability_percent, "level": c.confidence.level}
                for c in view.cards
            ],
            "no_convincing_match": view.no_convincing_match,
            "html": render_to_string("submissions/_result_body.html", context, request=request),
        }
    )


def _back(submission: Submission) -> HttpResponse:
    return redirect(result_path(submission))


@require_POST
@rate_limit_page("actions")
def refine(request: HttpRequest, token: str) -> HttpResponse:
    submission = submission_get_by_token(token)
    filters = {name: request.POST.get(name, "") for name in REFINE_FIELDS}
    if "limpar" in request.POST:
        filters = {}
    try:
        submission_refine(submission=submission, filters=filters)
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, _("Buscando de novo com as características escolhidas…"))
    return _back(submission)


@require_POST
@rate_limit_page("actions")
def feedback(request: HttpRequest, token: str) -> HttpResponse:
    submission = submission_get_by_token(token)
    try:
        implant_id = int(request.POST.get("implant_id", ""))
    except ValueError:
        messages.error(request, _("Resposta inválida."))
        return _back(submission)
    verdict = request.POST.get("verdict", "")
    try:
        submission_record_feedback(submission=submission, implant_id=implant_id, verdict=verdict)
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        if verdict == "not_this":
            messages.success(request, _("Obrigado! Removemos este candidato e estamos buscando outros."))
        else:
            messages.success(request, _("Obrigado! Sua resposta foi registrada para conferência da equipe."))
    return _back(submission)


@require_POST
@rate_limit_page("actions")
def review(request: HttpRequest, token: str) -> HttpResponse:
    """The dentist asks for a specialist's review (once: asking again changes nothing)."""
    submission = submission_get_by_token(token)
    try:
        _review, created = review_request_create(submission=submission, note=request.POST.get("note", ""))
    except ApplicationError as exc:
        messages.error(request, exc.message)
    else:
        if created:
            messages.success(request, _("Pedido enviado! Um especialista vai revisar a radiografia."))
        else:
            messages.info(request, _("Você já pediu a revisão desta radiografia; aguarde a resposta."))
    return _back(submission)


@require_POST
@rate_limit_page("intake")
def crop(request: HttpRequest, token: str) -> HttpResponse:
    submission = submission_get_by_token(token)
    form = CropForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Desenhe um retângulo em volta do implante antes de recortar."))
        return _back(submission)
    try:
        child = crop_create(submission, form.cleaned_data)
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return _back(submission)
    return _back(child)


# --- Jotform's thank-you redirect ------------------------------------------------------------
#
# Jotform redirects the dentist's browser to /jotform/obrigado/?sid={submissionID} after the form
# is sent. Jotform's submission ids are sequential-ish and the redirect carries no secret, so the
# sid alone must never open a result page. The rule (why it is safe):
#   * the first browser session that asks for a sid *whose submission exists* claims it (an
#     atomic ``cache.add``); the dentist's own browser arrives within seconds of sending (and keeps
#     asking while the webhook is pending), before anyone could learn the id; nobody can claim an
#     id ahead of its submission;
#   * a second session asking for the same sid marks it "contested", and from then on nobody is
#     redirected: a guesser can at worst make the dentist wait for the e-mail, never see a result;
#   * only submissions received in the last RAIOX_THANKYOU_WINDOW_SECONDS are ever redirected,
#     so old ids are worthless;
#   * lookups are rate-limited per client address (``kernel.http.client_address``: the real
#     client behind nginx, not nginx's address, which every dentist would share);
#   * the pending page (webhook not arrived yet) refreshes for RAIOX_THANKYOU_PENDING_SECONDS at
#     most, then says the link goes by e-mail;
#   * the page shows the same generic "recebido" text whether the sid exists, is pending, is old
#     or is someone else's: it reveals nothing, and the result link always goes by e-mail too.
# Claims live in the "shared" cache (a database table, common to every web process).

CONTESTED = "contested"


def _rate_limited(request: HttpRequest) -> RateLimited | None:
    try:
        check_rate(
            request,
            "thankyou",
            rate=f"{settings.RAIOX_THANKYOU_RATE_LIMIT}/{settings.RAIOX_THANKYOU_RATE_WINDOW_SECONDS}s",
        )
    except RateLimited as exc:
        return exc
    return None


def _still_waiting(request: HttpRequest, sid: str) -> bool:
    """True while this browser has waited less than RAIOX_THANKYOU_PENDING_SECONDS for ``sid``'s
    webhook: the page refreshes itself that long and then says the link goes by e-mail."""
    first_seen = request.session.setdefault("thankyou_since", {}).setdefault(sid, timezone.now().timestamp())
    request.session.modified = True
    return timezone.now().timestamp() - first_seen < settings.RAIOX_THANKYOU_PENDING_SECONDS


def _claim(request: HttpRequest, sid: str) -> bool:
    """True when this browser session is the only one that ever asked for ``sid``."""
    if not request.session.session_key:
        request.session["jotform"] = True  # a session is needed to tell browsers apart
        request.session.save()
    session_key = request.session.session_key
    cache = caches[settings.RAIOX_SHARED_CACHE]
    key = f"thankyou-claim:{sid}"
    timeout = settings.RAIOX_THANKYOU_WINDOW_SECONDS * 2
    if cache.add(key, session_key, timeout=timeout):
        return True
    holder = cache.get(key)
    if holder == session_key:
        return True
    if holder != CONTESTED:
        logger.warning("jotform thank-you: submission id asked for by a second browser; not redirecting")
        cache.set(key, CONTESTED, timeout=timeout)
    return False


@never_cache
@require_GET
def jotform_thanks(request: HttpRequest) -> HttpResponse:
    query = ThankYouQuery(request.GET)
    sid = query.cleaned_data["sid"] if query.is_valid() else None
    context = {"pending": True, "limited": False, "late": False}
    limited = _rate_limited(request)
    if limited is not None:
        context.update(pending=False, limited=True)
        response = render(request, "submissions/jotform_thanks.html", context, status=429)
        return with_retry_after(limited, response)
    if sid is None:
        context["pending"] = False
        return render(request, "submissions/jotform_thanks.html", context)
    submission = Submission.objects.filter(source=Source.JOTFORM, external_id=sid).only("token", "received_at").first()
    if submission is None:
        # The webhook has not arrived yet: say "recebido" and look again shortly, for a while.
        # No claim is taken for an id with no submission: claiming future ids ahead of their
        # submissions would let a guesser hold them (and be the one redirected when they arrive).
        if not _still_waiting(request, sid):
            context.update(pending=False, late=True)
        return render(request, "submissions/jotform_thanks.html", context)
    age = (timezone.now() - submission.received_at).total_seconds()
    if age > settings.RAIOX_THANKYOU_WINDOW_SECONDS or not _claim(request, sid):
        context["pending"] = False
        return render(request, "submissions/jotform_thanks.html", context)
    return redirect(result_path(submission))
