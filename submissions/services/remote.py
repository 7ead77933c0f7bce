"""Fetching an image the sender left on its own server (Jotform keeps uploads on its upload host).

Runs in the worker, so the webhook is answered at once. Only hosts on the source's allow-list are
contacted, again at download time (settings may have changed since intake), and every redirect is
checked the same way: no request to an arbitrary address. The download has a timeout and a size
cap; the bytes go through the one image validation every source shares.

Failures come in two kinds:
- network trouble or a 5xx/429 from the host raises ``RemoteFetchError`` (or httpx's own error):
  the task fails and django-q delivers it again later;
- a permanent failure (404, not an image, too big, a refused host) raises ``ApplicationError``
  with a Portuguese reason, which the task records with ``submission_fail``; a file that does not
  decode raises its subclass ``kernel.imaging.InvalidImage`` (poison: never retried).

``submission_prepare_image`` is the worker's one entry: it also decodes an original kept at intake
(the web process only read its headers) and replaces it by the normalised PNG.
"""

from __future__ import annotations

import logging
from urllib.parse import urljoin

import httpx
from django.conf import settings
from django.core.files.storage import default_storage

from kernel.errors import ApplicationError
from kernel.imaging import decode_image, size_label
from submissions.intake.common import allowed_hosts_for, check_remote_url
from submissions.models import Source, Submission
from submissions.services.core import submission_attach_image

logger = logging.getLogger(__name__)

MAX_REDIRECTS = 3
CHUNK = 64 * 1024


class RemoteFetchError(Exception):
    """A transient download failure: retrying later may succeed."""


def _headers(source: str) -> dict[str, str]:
    headers = {"User-Agent": "RaioxAI/1.0", "Accept": "image/*, application/dicom, */*"}
    # Forms that require log-in to view uploads refuse a plain GET; the API key opens them.
    if source == Source.JOTFORM and settings.JOTFORM_API_KEY:
        headers["APIKEY"] = settings.JOTFORM_API_KEY
    return headers


def _download(url: str, *, source: str) -> bytes:
    allowed = allowed_hosts_for(source)
    cap = settings.RAIOX_MAX_UPLOAD_BYTES
    too_big = ApplicationError(
        f"A imagem no servidor de origem passa do limite de {size_label(cap)}.",
        field="file",
        status=413,
        code="file_too_large",
    )
    with httpx.Client(timeout=settings.JOTFORM_DOWNLOAD_TIMEOUT, follow_redirects=False) as client:
        for _ in range(MAX_REDIRECTS + 1):
            check_remote_url(url, allowed_hosts=allowed, field="file")
            with client.stream("GET", url, headers=_headers(source)) as response:
                status = response.status_code
                if status in {301, 302, 303, 307, 308}:
                    url = urljoin(url, response.headers.get("location", ""))
                    continue
                if status == 429 or status >= 500:
                    raise RemoteFetchError(f"HTTP {status}")
                if status in {401, 403}:
                    raise ApplicationError(
                        "O servidor de origem recusou o acesso à imagem (formulário com acesso restrito: "
                        "configure JOTFORM_API_KEY).",
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
                if declared.isdigit() and int(declared) > cap:
                    raise too_big
                chunks: list[bytes] = []
                size = 0
                for chunk in response.iter_bytes(CHUNK):
                    size += len(chunk)
                    if size > cap:
                        raise too_big  # stop reading: never hold more than the cap in memory
                    chunks.append(chunk)
                return b"".join(chunks)
    raise ApplicationError("Redirecionamentos demais ao buscar a imagem.", field="file", code="too_many_redirects")


def submission_fetch_remote_image(*, submission_id: int) -> Submission:
    """Download, validate and store the image of a submission created with only a URL."""
    submission = Submission.objects.get(pk=submission_id)
    if submission.image:
        return submission
    if not submission.remote_image_url:
        raise ApplicationError("Nenhuma imagem foi enviada.", field="file", code="missing_file")
    try:
        data = _download(submission.remote_image_url, source=submission.source)
    except httpx.HTTPError as exc:
        # Logged by type only: the URL names the dentist's account and file.
        logger.warning("remote image: submission %s download failed (%s)", submission_id, type(exc).__name__)
        raise RemoteFetchError(type(exc).__name__) from exc
    image = decode_image(data, field="file")
    logger.info("remote image: submission %s fetched (%s bytes, %s)", submission_id, len(data), image.source_format)
    return submission_attach_image(submission_id=submission_id, image=image)


def submission_prepare_image(*, submission_id: int) -> Submission:
    """Make sure a submission's image is decoded and normalised (worker side): fetch it when the
    sender gave a URL, else decode the original kept at intake and replace it by its PNG.

    Raises ``InvalidImage`` (an ``ApplicationError``) for a file that will never decode: the
    caller fails the submission at once. Storage trouble raises its own error (transient).
    """
    submission = Submission.objects.get(pk=submission_id)
    if submission.content_hash and submission.image:
        return submission  # already decoded (or stored before intake kept originals)
    if not submission.image:
        return submission_fetch_remote_image(submission_id=submission_id)
    try:
        with default_storage.open(submission.image.name, "rb") as fh:
            data = fh.read()
    except FileNotFoundError as exc:  # gone for good: a retry cannot bring it back
        raise ApplicationError(
            "A imagem desta radiografia não foi encontrada. Envie-a novamente.", field="file", code="missing_file"
        ) from exc
    image = decode_image(data, field="file")
    return submission_attach_image(submission_id=submission_id, image=image)
