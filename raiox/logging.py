"""Log plumbing: a request id on every line, and JSON lines when ``LOG_FORMAT=json``.

The request id comes from the ``X-Request-ID`` header set by nginx (or a load balancer) when it is
well-formed, else a fresh one; it is echoed in the response, so a user's report, the nginx access
log and the application log can be joined. Log messages never carry patient names: code logs ids,
statuses and exception types, not the intake's fields.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Callable
from contextvars import ContextVar

from django.core.signals import request_finished
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse
from pythonjsonlogger.json import JsonFormatter as _BaseJsonFormatter

REQUEST_ID_HEADER = "X-Request-ID"
_VALID_ID = re.compile(r"^[A-Za-z0-9._-]{8,128}$")
_request_id: ContextVar[str] = ContextVar("raiox_request_id", default="-")


def current_request_id() -> str:
    return _request_id.get()


class RequestIdFilter(logging.Filter):
    """Adds ``record.request_id`` (``-`` outside a request: worker tasks, commands)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = _request_id.get()
        return True


# A result token is a UUID, and a UUID in a URL is always one (/r/<token>/, /api/match/<token>/…).
_TOKEN = re.compile(r"[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}")


def mask_tokens(text: str) -> str:
    return _TOKEN.sub("<token>", text)


class MaskTokensFilter(logging.Filter):
    """Result tokens out of log lines: Django's request logger writes the path of every 4xx and
    5xx (``Not Found: /r/<uuid>/``), and a token opens a patient's result. Masks the message and
    its arguments, and drops the request object the record carries (its repr holds the path, and
    the JSON formatter writes every extra attribute)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = mask_tokens(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(mask_tokens(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {k: mask_tokens(v) if isinstance(v, str) else v for k, v in record.args.items()}
        if getattr(record, "request", None) is not None:
            record.request = (
                f"{getattr(record.request, 'method', '')} {mask_tokens(getattr(record.request, 'path', ''))}"
            )
        return True


class JsonFormatter(_BaseJsonFormatter):
    """python-json-logger with stable key names for log shippers."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("rename_fields", {"asctime": "time", "levelname": "level", "name": "logger"})
        super().__init__(*args, **kwargs)


class RequestIdMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        incoming = request.headers.get(REQUEST_ID_HEADER, "")
        # A header we did not set could be anything: accept only a plain token, never log raw input.
        request_id = incoming if _VALID_ID.match(incoming) else uuid.uuid4().hex
        request.request_id = request_id
        # Cleared on request_finished, not here: Django logs 4xx/5xx responses ("django.request")
        # after the middleware chain has returned, and those lines need the id too.
        _request_id.set(request_id)
        response = self.get_response(request)
        response[REQUEST_ID_HEADER] = request_id
        return response


@receiver(request_finished, dispatch_uid="raiox.logging.clear_request_id")
def _clear_request_id(**kwargs) -> None:
    _request_id.set("-")
