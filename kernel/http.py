"""Who is asking, and how often: the client's address behind the configured proxies, and the
per-address abuse limits of the anonymous write endpoints.

One place for both, so that the rate limits, the login lockouts (django-axes, through
``AXES_CLIENT_IP_CALLABLE``), the thank-you page and the ``/metrics`` allow-list agree on who the
client is.

Limits are counted by django-ratelimit in the shared cache (a database table every web process
sees; ``kernel.cache.AtomicDatabaseCache`` makes its counter atomic). Each limit is a group with a
rate from ``settings.RAIOX_RATE_LIMITS`` (``"30/10m"``: 30 requests per 10 minutes per address):

- ``intake``: anonymous intake — ``POST /upload``, the upload page, ``/webhook`` and ``/jotform``
  without a configured-and-matching token, crop & re-match;
- ``machine``: ``/webhook`` and ``/jotform`` with the right token (Jotform posts every dentist's
  form from a few addresses of its own, so this limit is generous);
- ``actions``: feedback and refine on the result page;
- ``thankyou``: Jotform's thank-you redirect (its own settings, RAIOX_THANKYOU_RATE_*).

nginx (``deploy/nginx/raiox.conf``) limits the same locations per address in front: a burst is
refused there before it reaches a web worker; these limits are the ones that count over minutes
and that hold when the app is reached another way.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
from collections.abc import Callable
from functools import wraps

from django.conf import settings
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django_ratelimit.core import get_usage

from kernel.errors import ApplicationError, with_retry_after

logger = logging.getLogger(__name__)


def secret_matches(given: str | None, expected: str | None) -> bool:
    """Whether a token a client sent is the configured one, in constant time. False when none is
    configured. Compared as UTF-8 bytes: ``hmac.compare_digest`` refuses ``str`` with non-ASCII
    characters (a TypeError, a 500), and a header may carry any character a client types."""
    if not expected or given is None:
        return False
    return hmac.compare_digest(given.encode("utf-8", "replace"), expected.encode("utf-8", "replace"))


def client_address(request: HttpRequest) -> str:
    """The client's address, trusting ``X-Forwarded-For`` only as far as RAIOX_TRUSTED_PROXY_COUNT.

    Each trusted proxy appends the address it saw, so the client is the entry that the outermost
    trusted proxy appended: the ``count``-th from the end. Entries further left were written by
    the client itself and are never believed. A list shorter than expected (a request that came
    round the proxies) falls back to its leftmost entry; no usable address gives REMOTE_ADDR.
    """
    remote = request.META.get("REMOTE_ADDR", "") or ""
    proxies = settings.RAIOX_TRUSTED_PROXY_COUNT
    if not proxies:
        return remote
    forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()]
    if not forwarded:
        return remote
    candidate = forwarded[-min(proxies, len(forwarded))]
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return remote


class RateLimited(ApplicationError):
    """Too many requests from one address: 429 with ``Retry-After``."""

    def __init__(self, retry_after: int):
        minutes = max(1, -(-retry_after // 60))
        super().__init__(
            f"Muitas solicitações seguidas deste endereço. Tente de novo em {minutes} minuto(s).",
            status=429,
            code="rate_limited",
        )
        self.retry_after = retry_after


def _address_key(group: str, request: HttpRequest) -> str:
    # IPv6 clients usually hold a whole /64: count the network, as django-ratelimit does for "ip".
    address = client_address(request) or "unknown"
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if ip.version == 6:
        return str(ipaddress.ip_network(f"{ip}/64", strict=False).network_address)
    return str(ip)


def check_rate(request: HttpRequest, group: str, *, rate: str | None = None) -> None:
    """Count this request against ``group``'s limit for its client; raise ``RateLimited`` when over.

    ``rate`` defaults to ``settings.RAIOX_RATE_LIMITS[group]``."""
    rate = settings.RAIOX_RATE_LIMITS.get(group) if rate is None else rate
    if not rate:  # "off" in the environment (settings.env_rate): no limit
        return
    try:
        usage = get_usage(request, group=group, key=_address_key, rate=rate, increment=True)
    except DatabaseError:
        # The count lives in the database: when it is down the request goes on uncounted and
        # meets the outage where it is answered properly (503 with Retry-After, nothing kept).
        logger.warning("rate limit %s not counted: the shared cache is unreachable", group)
        return
    if usage is not None and usage["should_limit"]:
        raise RateLimited(max(1, usage["time_left"]))


def rate_limit_page(group: str) -> Callable:
    """A page view's POST counted against ``group``; over the limit, a pt-BR page (or the upload
    page's JSON shape for its script) with 429 and ``Retry-After``. GET is never limited here."""

    def decorator(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @wraps(view)
        def wrapper(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
            if request.method == "POST":
                try:
                    check_rate(request, group)
                except RateLimited as exc:
                    return with_retry_after(exc, _limited_page(request, exc))
            return view(request, *args, **kwargs)

        return wrapper

    return decorator


def wants_json(request: HttpRequest) -> bool:
    """True when a page's POST came from its own script asking for JSON (the upload page sends the
    form with XMLHttpRequest, for the progress bar); without JavaScript the same view answers HTML."""
    return "application/json" in request.headers.get("Accept", "")


def base64_length(size: int) -> int:
    """The longest base64 text of ``size`` bytes (4 characters per 3 bytes, padding included)."""
    return size * 4 // 3 + 4


def max_intake_body() -> int:
    """The largest body an intake endpoint reads: the largest file as base64 text (a JSON body; as
    multipart's raw bytes it is smaller) plus room for the other fields."""
    return base64_length(settings.RAIOX_MAX_UPLOAD_BYTES) + settings.UPLOAD_BODY_SLACK_BYTES


def _limited_page(request: HttpRequest, exc: RateLimited) -> HttpResponse:
    if wants_json(request):
        return JsonResponse({"errors": {"__all__": [exc.message]}}, status=429)
    return render(request, "429.html", {"message": exc.message}, status=429)
