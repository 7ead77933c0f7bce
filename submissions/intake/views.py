"""The machine endpoints ``POST /jotform`` and ``POST /webhook``: parse, call the service, answer JSON.

Both are CSRF-exempt (other servers post to them) and answer errors as
``{"error": <pt-BR message>, "field": ..., "code": ...}``. Request bodies are never logged: Jotform
echoes the webhook URL, secret token included, in every body.

Every request is counted per client address (``kernel.http``): the generous ``machine`` limit
for a sender with the configured token, the ``intake`` limit otherwise; over it, 429 with
``Retry-After``. A repeated delivery (same source and id) is answered ``{"duplicate": true}``;
only a sender with the configured token is also told the first delivery's token and link.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import wraps

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.http.multipartparser import MultiPartParserError
from django.views.decorators.csrf import csrf_exempt

from kernel.errors import ApplicationError, with_retry_after
from kernel.http import check_rate, max_intake_body, secret_matches
from kernel.imaging import file_too_large
from submissions.fields import IntakeRecord
from submissions.intake import jotform, webhook
from submissions.intake.fields import FORM_NAMES, client_names
from submissions.models import Submission
from submissions.results.answer import region_links
from submissions.results.links import result_url
from submissions.services import submission_create, submission_create_with_regions

logger = logging.getLogger(__name__)

View = Callable[[HttpRequest], HttpResponse]


def error_response(exc: ApplicationError) -> JsonResponse:
    return with_retry_after(exc, JsonResponse(exc.as_dict(), status=exc.status))


def _authenticate(request: HttpRequest, expected: str, given: str) -> bool:
    """Count the request against its rate limit, then check its token.

    True when a token is configured and this request carries it: the sender is the one we gave
    the token to, gets the generous ``machine`` limit and is told a repeat's token. Without a
    configured token every request is anonymous (the ``intake`` limit). A wrong token is counted as
    anonymous (guessing is limited too) and refused with 403.
    """
    authenticated = secret_matches(given, expected)
    check_rate(request, "machine" if authenticated else "intake")
    if expected and not authenticated:
        raise ApplicationError("Token inválido.", field="token", status=403, code="forbidden")
    return authenticated


def machine_endpoint(view: View) -> View:
    """POST only, size cap before reading, every failure as a JSON error."""

    @csrf_exempt
    @wraps(view)
    def wrapper(request: HttpRequest) -> HttpResponse:
        if request.method != "POST":
            response = error_response(ApplicationError("Use POST.", status=405, code="method_not_allowed"))
            response["Allow"] = "POST"
            return response
        try:
            # Refuse an oversized body before reading it.
            length = int(request.META.get("CONTENT_LENGTH") or 0)
            if length > max_intake_body():
                raise file_too_large()
            return view(request)
        except ApplicationError as exc:
            return error_response(exc)
        except RequestDataTooBig:
            return error_response(file_too_large())
        except (SuspiciousOperation, MultiPartParserError, ValueError, UnicodeDecodeError):
            return error_response(ApplicationError("Requisição malformada.", code="malformed_request"))

    return wrapper


def _accepted(
    submission: Submission, created: bool, *, authenticated: bool, regions: list[Submission] | None = None
) -> JsonResponse:
    logger.info(
        "intake: %s submission %s %s", submission.source, submission.pk, "created" if created else "repeated delivery"
    )
    if not created and not authenticated:
        # Repeats learn nothing: anyone may send a known id (Jotform's are sequential-ish), so
        # only the sender holding the webhook token is told the first delivery's token and link.
        # The answer is still 2xx, or a real sender would keep retrying its repeat.
        return JsonResponse({"duplicate": True}, status=200)
    body = {
        "token": str(submission.token),
        "status": submission.status,
        "result_url": result_url(submission),
        "duplicate": not created,
    }
    if regions:
        body["regions"] = region_links(regions)
    return JsonResponse(
        body,
        # A repeated delivery is answered 2xx too, or the sender would keep retrying it.
        status=201 if created else 200,
    )


def _create(
    adapter: Callable[[HttpRequest], IntakeRecord],
    request: HttpRequest,
    names: dict[str, str],
    *,
    authenticated: bool,
) -> JsonResponse:
    """Run the route's adapter and the service; errors name the fields as this client sent them.

    A repeat is found by the service before the image is looked at (a retry costs no decoding),
    and is answered by ``_accepted`` without anything of the first delivery."""
    with client_names(names):
        submission, created = submission_create(intake=adapter(request))
    return _accepted(submission, created, authenticated=authenticated)


@machine_endpoint
def jotform_webhook(request: HttpRequest) -> HttpResponse:
    """Jotform's webhook (text parts + rawRequest JSON; file left on Jotform) or the old plain form."""
    authenticated = _authenticate(request, settings.JOTFORM_WEBHOOK_TOKEN, request.GET.get("token", ""))
    if jotform.is_jotform_payload(request):
        return _create(jotform.intake_from_jotform, request, jotform.field_names(), authenticated=authenticated)
    return _create(jotform.intake_from_plain_form, request, FORM_NAMES, authenticated=authenticated)


@machine_endpoint
def generic_webhook(request: HttpRequest) -> HttpResponse:
    """Generic intake: JSON or multipart; documented by ``submissions.intake.schema``."""
    auth = request.headers.get("Authorization", "")
    given = auth.removeprefix("Bearer ").strip() if auth.startswith("Bearer ") else request.GET.get("token", "")
    authenticated = _authenticate(request, settings.RAIOX_WEBHOOK_TOKEN, given)
    with client_names(FORM_NAMES):
        # Marked implants ("regions"), if any, are checked against the image before anything is kept.
        film, created, regions = submission_create_with_regions(
            intake=webhook.intake_from_webhook(request), raw_regions=webhook.regions_from(request)
        )
    return _accepted(film, created, authenticated=authenticated, regions=regions)
