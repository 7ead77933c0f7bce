"""One application error for business-rule failures, and the handlers that turn it into a 4xx.

Services raise ``ApplicationError``; API views get JSON ``{"error": ..., "field": ...}`` through
``api_exception_handler``; HTML views render the message (in Portuguese) next to the field.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import HttpResponse
from rest_framework import exceptions as drf_exceptions
from rest_framework.response import Response

# Seconds a sender is asked to wait after a 503 (storage or database down: a short outage).
UNAVAILABLE_RETRY_AFTER = 30


class ApplicationError(Exception):
    """A failure the sender can act on: bad input, a duplicate, a refused URL..."""

    def __init__(self, message: str, *, field: str | None = None, status: int = 400, code: str = "invalid"):
        super().__init__(message)
        self.message = str(message)
        self.field = field
        self.status = status
        self.code = code
        # Seconds until a retry may succeed (the ``Retry-After`` header), None when it would not
        # help; a rate limit (kernel.http.RateLimited) sets its own.
        self.retry_after: int | None = UNAVAILABLE_RETRY_AFTER if status == 503 else None

    def as_dict(self) -> dict[str, Any]:
        return {"error": self.message, "field": self.field, "code": self.code}


class ServiceUnavailable(ApplicationError):
    """Storage or database down: the sender should retry later (503); nothing was kept."""

    def __init__(self, message: str = "Serviço temporariamente indisponível; tente novamente em instantes."):
        super().__init__(message, status=503, code="unavailable")


def with_retry_after(exc: ApplicationError, response: HttpResponse) -> HttpResponse:
    """``response`` with the ``Retry-After`` that ``exc`` asks for: the one place the header is set
    (the API's errors, the machine endpoints' JSON, the rate-limited pages)."""
    if exc.retry_after is not None:
        response["Retry-After"] = str(exc.retry_after)
    return response


def application_error_from_validation(exc: DjangoValidationError) -> ApplicationError:
    if hasattr(exc, "error_dict"):
        field, errors = next(iter(exc.error_dict.items()))
        return ApplicationError(" ".join(str(m) for e in errors for m in e.messages), field=field)
    return ApplicationError(" ".join(exc.messages))


def api_exception_handler(exc: Exception, context: dict) -> Response | None:
    if isinstance(exc, DjangoValidationError):
        exc = application_error_from_validation(exc)
    if isinstance(exc, ApplicationError):
        return with_retry_after(exc, Response(exc.as_dict(), status=exc.status))
    # Imported here: rest_framework.views reads the REST_FRAMEWORK settings at import, and those
    # name kernel.parsing's parser, which needs this module (a cycle at module level).
    from rest_framework.views import exception_handler

    response = exception_handler(exc, context)
    if response is not None and isinstance(exc, drf_exceptions.APIException):
        detail = response.data
        field = None
        if isinstance(detail, dict) and "detail" not in detail and detail:
            field, messages = next(iter(detail.items()))
            message = messages[0] if isinstance(messages, list) and messages else messages
        elif isinstance(detail, dict):
            message = detail.get("detail", "")
        else:
            message = detail
        response.data = {"error": str(message), "field": field, "code": getattr(exc, "default_code", "error")}
    return response
