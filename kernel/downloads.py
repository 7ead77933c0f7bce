"""Safe downloads: a remote URL is accepted only on an allow-listed host, and fetched only from one.

Used at intake (is this URL acceptable?) and again by the worker when it downloads (settings may
have changed since, and every redirect is a new URL to check): no request ever goes to an arbitrary
address. The download has a timeout and a size cap, and never holds more than the cap in memory.

Failures come in two kinds:
- network trouble or a 5xx/429 from the host raises ``TransientDownloadError`` (or httpx's own
  error): retrying later may succeed;
- a permanent failure (404, refused access, too big, a refused host) raises ``ApplicationError``
  with a Portuguese reason a person can act on.
"""

from __future__ import annotations

import functools
import ssl
import unicodedata
from collections.abc import Collection, Mapping
from urllib.parse import urljoin, urlsplit

import httpx
from django.conf import settings

from kernel.errors import ApplicationError
from kernel.imaging import size_label

URL_LIMIT = 2000
MAX_REDIRECTS = 3
CHUNK = 64 * 1024


class TransientDownloadError(Exception):
    """A transient download failure: retrying later may succeed."""


def _invalid(field: str) -> ApplicationError:
    return ApplicationError("URL da imagem inválida.", field=field, code="invalid_url")


def _scheme_and_netloc(url: str, *, field: str) -> tuple[str, str]:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise _invalid(field) from exc
    if not parts.hostname or parts.username is not None or parts.password is not None:
        raise _invalid(field)
    scheme = parts.scheme.lower()
    host = parts.hostname.lower()
    default_port = {"https": 443, "http": 80}.get(scheme)
    return scheme, host if port is None or port == default_port else f"{host}:{port}"


def check_remote_url(url: object, *, allowed_hosts: Collection[str], field: str = "file") -> str:
    """Accept a remote image URL only on an allowed host (exact match, https) — never an arbitrary URL.

    An allow-list entry is a host name, or ``host:port`` for a non-default port. Raises a 4xx
    ``ApplicationError``; the caller stores nothing.
    """
    if not isinstance(url, str) or not url.strip():
        raise _invalid(field)
    url = url.strip()
    if len(url) > URL_LIMIT or any(ch.isspace() or unicodedata.category(ch) == "Cc" for ch in url):
        raise _invalid(field)
    scheme, netloc = _scheme_and_netloc(url, field=field)
    schemes = {"https", "http"} if settings.RAIOX_ALLOW_HTTP_DOWNLOADS else {"https"}
    if scheme not in schemes:
        raise ApplicationError("A URL da imagem deve usar https.", field=field, code="url_not_allowed")
    if netloc not in {h.strip().lower() for h in allowed_hosts if h.strip()}:
        raise ApplicationError(
            "Endereço da imagem não permitido: só aceitamos arquivos dos servidores configurados.",
            field=field,
            status=422,
            code="url_not_allowed",
        )
    return url


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """httpx's default verification (certifi's CA bundle, or SSL_CERT_FILE), built once per
    process: loading the bundle took ~40 ms of every download in the worker (bench/RESULTS.md,
    issue 15). An SSLContext is safe to share between threads and connections."""
    return httpx.create_ssl_context()


def download(
    url: str,
    *,
    allowed_hosts: Collection[str],
    headers: Mapping[str, str],
    timeout: float,
    max_bytes: int,
    forbidden_hint: str = "",
) -> bytes:
    """GET ``url`` (and up to ``MAX_REDIRECTS`` redirects, each checked) and return the body.

    ``forbidden_hint`` is added to the message of a 401/403, e.g. which setting opens the host.
    """
    too_big = ApplicationError(
        f"A imagem no servidor de origem passa do limite de {size_label(max_bytes)}.",
        field="file",
        status=413,
        code="file_too_large",
    )
    with httpx.Client(timeout=timeout, follow_redirects=False, verify=_tls_context()) as client:
        for _ in range(MAX_REDIRECTS + 1):
            check_remote_url(url, allowed_hosts=allowed_hosts, field="file")
            with client.stream("GET", url, headers=dict(headers)) as response:
                status = response.status_code
                if status in {301, 302, 303, 307, 308}:
                    url = urljoin(url, response.headers.get("location", ""))
                    continue
                if status == 429 or status >= 500:
                    raise TransientDownloadError(f"HTTP {status}")
                if status in {401, 403}:
                    raise ApplicationError(
                        f"O servidor de origem recusou o acesso à imagem{forbidden_hint}.",
                        field="file",
                        code="remote_forbidden",
                    )
                if status != 200:
                    raise ApplicationError(
                        f"A imagem não está disponível no servidor de origem (HTTP {status}). Envie-a novamente.",
                        field="file",
                        code="remote_missing",
                    )
                declared = response.headers.get("content-length", "")
                if declared.isdigit() and int(declared) > max_bytes:
                    raise too_big
                chunks: list[bytes] = []
                size = 0
                for chunk in response.iter_bytes(CHUNK):
                    size += len(chunk)
                    if size > max_bytes:
                        raise too_big  # stop reading: never hold more than the cap in memory
                    chunks.append(chunk)
                return b"".join(chunks)
    raise ApplicationError("Redirecionamentos demais ao buscar a imagem.", field="file", code="too_many_redirects")
