"""The machine endpoints ``POST /jotform`` and ``POST /webhook``: parse, call the service, answer JSON.

Both are CSRF-exempt (other servers post to them) and answer errors as
``{"error": <pt-BR message>, "field": ..., "code": ...}``. Request bodies are never logged: Jotform
echoes the webhook URL, secret token included, in every body.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable
from functools import wraps

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.http.multipartparser import MultiPartParserError
from django.views.decorators.csrf import csrf_exempt

from kernel.errors import ApplicationError
from submissions.intake import jotform, webhook
from submissions.intake.fields import FORM_NAMES, client_names, file_too_large
from submissions.intake.regions import create_with_regions
from submissions.models import Submission
from submissions.results import region_links, result_url
from submissions.services import IntakeRecord, submission_create

logger = logging.getLogger(__name__)

View = Callable[[HttpRequest], HttpResponse]


def error_response(exc: ApplicationError) -> JsonResponse:
    response = JsonResponse(exc.as_dict(), status=exc.status)
    if exc.status == 503:
        response["Retry-After"] = "30"
    return response


def _token_ok(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())


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
            # Refuse an oversized body before reading it (the form's text parts add a little).
            length = int(request.META.get("CONTENT_LENGTH") or 0)
            if length > settings.RAIOX_MAX_UPLOAD_BYTES * 4 // 3 + 1024 * 1024:
                raise file_too_large()
            return view(request)
        except ApplicationError as exc:
            return error_response(exc)
        except RequestDataTooBig:
            return error_response(file_too_large())
        except (SuspiciousOperation, MultiPartParserError, ValueError, UnicodeDecodeError):
            return error_response(ApplicationError("Requisição malformada.", code="malformed_request"))

    return wrapper


def _accepted(submission: Submission, created: bool, regions: list[Submission] | None = None) -> JsonResponse:
    logger.info(
        "intake: %s submission %s %s", submission.source, submission.pk, "created" if created else "repeated delivery"
    )
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
    adapter: Callable[[HttpRequest], IntakeRecord], request: HttpRequest, names: dict[str, str]
) -> JsonResponse:
    """Run the route's adapter and the service; errors name the fields as this client sent them."""
    with client_names(names):
        submission, created = submission_create(intake=adapter(request))
    return _accepted(submission, created)


@machine_endpoint
def jotform_webhook(request: HttpRequest) -> HttpResponse:
    """Jotform's webhook (text parts + rawRequest JSON; file left on Jotform) or the old plain form."""
    expected = settings.JOTFORM_WEBHOOK_TOKEN
    if expected and not _token_ok(request.GET.get("token", ""), expected):
        raise ApplicationError("Token inválido.", field="token", status=403, code="forbidden")
    if jotform.is_jotform_payload(request):
        return _create(jotform.intake_from_jotform, request, jotform.field_names())
    return _create(jotform.intake_from_plain_form, request, FORM_NAMES)


@machine_endpoint
def generic_webhook(request: HttpRequest) -> HttpResponse:
    """Generic intake: JSON or multipart; see ``webhook.WEBHOOK_REQUEST_SCHEMA``."""
    expected = settings.RAIOX_WEBHOOK_TOKEN
    if expected:
        auth = request.headers.get("Authorization", "")
        given = auth.removeprefix("Bearer ").strip() if auth.startswith("Bearer ") else request.GET.get("token", "")
        if not _token_ok(given, expected):
            raise ApplicationError("Token inválido.", field="token", status=403, code="forbidden")
    with client_names(FORM_NAMES):
        # Marked implants ("regions"), if any, are checked against the image before anything is kept.
        film, created, regions = create_with_regions(
            webhook.intake_from_webhook(request), webhook.regions_from(request)
        )
    return _accepted(film, created, regions)
