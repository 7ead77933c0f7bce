"""Fetching an image the sender left on its own server (Jotform keeps uploads on its upload host).

Runs in the worker, so the webhook is answered at once. The download itself — allow-listed hosts
checked again at download time and on every redirect, timeout, size cap — is
``kernel.downloads.download``; the bytes go through the one image validation every source shares.

Failures come in two kinds:
- network trouble or a 5xx/429 from the host raises ``kernel.downloads.TransientDownloadError``
  (or httpx's own error): the task fails and django-q delivers it again later;
- a permanent failure (404, not an image, too big, a refused host) raises ``ApplicationError``
  with a Portuguese reason, which the task records with ``submission_fail``; a file that does not
  decode raises its subclass ``kernel.imaging.InvalidImage`` (poison: never retried).

The worker (``matching.pipeline``) takes an image in two halves: ``submission_decode_pending_image``
(download, or decode the original kept at intake — the web process only read its headers; no
write, so a batch decodes several at once in threads) and then ``submission_attach_image`` (stores
the normalised PNG). ``submission_prepare_image`` is the two halves for one submission, in order.

A batch splits the first half once more, so that bytes sent before are not decoded again:
``submission_read_pending_original`` (the bytes as sent, with their hash; threads), then
``submission_prepared_twin`` (an earlier submission prepared from the same bytes; the database, so
the batch's main thread), then ``stored_image_copy`` (the twin's normalised PNG and pixel hash) or
``submission_decode_original`` (threads again).
"""

from __future__ import annotations

import hashlib
import io
import logging

import httpx
from django.conf import settings
from django.core.files.storage import default_storage
from PIL import Image

from kernel.downloads import TransientDownloadError, download
from kernel.errors import ApplicationError
from kernel.imaging import ValidatedImage, decode_image
from submissions.fields import allowed_hosts_for
from submissions.messages import MISSING_IMAGE
from submissions.models import Source, Submission
from submissions.services.processing import submission_attach_image

__all__ = [
    "original_hash",
    "remote_image_download",
    "stored_image_copy",
    "submission_decode_original",
    "submission_decode_pending_image",
    "submission_prepare_image",
    "submission_prepared_twin",
    "submission_read_pending_original",
]

logger = logging.getLogger(__name__)


def _download(url: str, *, source: str) -> bytes:
    headers = {"User-Agent": "RaioxAI/1.0", "Accept": "image/*, application/dicom, */*"}
    # Forms that require log-in to view uploads refuse a plain GET; the API key opens them.
    if source == Source.JOTFORM and settings.JOTFORM_API_KEY:
        headers["APIKEY"] = settings.JOTFORM_API_KEY
    return download(
        url,
        allowed_hosts=allowed_hosts_for(source),
        headers=headers,
        timeout=settings.JOTFORM_DOWNLOAD_TIMEOUT,
        max_bytes=settings.RAIOX_MAX_UPLOAD_BYTES,
        forbidden_hint=" (formulário com acesso restrito: configure JOTFORM_API_KEY)",
    )


def _remote_bytes(*, submission_id: int, url: str, source: str) -> bytes:
    try:
        return _download(url, source=source)
    except httpx.HTTPError as exc:
        # Logged by type only: the URL names the dentist's account and file.
        logger.warning("remote image: submission %s download failed (%s)", submission_id, type(exc).__name__)
        raise TransientDownloadError(type(exc).__name__) from exc


def _decode_remote(submission_id: int, data: bytes) -> ValidatedImage:
    image = decode_image(data, field="file")
    logger.info("remote image: submission %s fetched (%s bytes, %s)", submission_id, len(data), image.source_format)
    return image


def remote_image_download(*, submission_id: int, url: str, source: str) -> ValidatedImage:
    """Download and validate a submission's image from its sender's host; no database, no
    storage, so the worker runs several at once (``matching.pipeline``). Raises as the module
    docstring says; ``submission_attach_image`` stores the result."""
    return _decode_remote(submission_id, _remote_bytes(submission_id=submission_id, url=url, source=source))


def original_hash(data: bytes) -> str:
    """sha256 of the bytes as the sender sent them (``Submission.original_hash``): equal bytes
    decode to equal pictures, so they need decoding once."""
    return hashlib.sha256(data).hexdigest()


def _is_region_to_cut(submission: Submission) -> bool:
    return bool(
        not submission.image and not submission.remote_image_url and submission.parent_id and submission.crop_box
    )


def submission_read_pending_original(submission: Submission) -> tuple[bytes, str] | None:
    """The bytes as sent and their ``original_hash``, for a submission whose image is still to
    decode: downloaded when the sender gave a URL, else read from the original kept at intake.
    None when there are none: decoded already, or a region (cut from its film's picture by
    ``submission_decode_pending_image``, not sent). Reads the network and storage only (threads);
    raises as ``submission_decode_pending_image`` says."""
    if submission.content_hash and submission.image:
        return None
    if _is_region_to_cut(submission):
        return None
    if not submission.image:
        if not submission.remote_image_url:
            raise ApplicationError("Nenhuma imagem foi enviada.", field="file", code="missing_file")
        data = _remote_bytes(submission_id=submission.pk, url=submission.remote_image_url, source=submission.source)
    else:
        data = _read_original(submission)
    return data, original_hash(data)


def submission_decode_original(submission: Submission, data: bytes) -> ValidatedImage:
    """Decode the bytes ``submission_read_pending_original`` gave (threads; no database)."""
    if not submission.image:
        return _decode_remote(submission.pk, data)
    return decode_image(data, field="file")


def submission_prepared_twin(*, original_hash: str, exclude: int) -> tuple[str, str] | None:
    """(stored PNG name, pixel hash) of another submission already prepared from the same bytes
    as sent, if any. Any sender's: the same rule as the worker's reuse of an identical picture's
    finding (``matching.pipeline._reuse_finding``, by pixel hash alone) — the bytes are the
    asker's own, so their PNG and hash tell it nothing it did not send."""
    if not original_hash:
        return None
    return (
        Submission.objects.filter(original_hash=original_hash)
        .exclude(pk=exclude)
        .exclude(content_hash="")
        .exclude(image="")
        .values_list("image", "content_hash")
        .first()
    )


def stored_image_copy(*, name: str, content_hash: str) -> ValidatedImage:
    """A prepared submission's normalised PNG as a ``ValidatedImage``, to be stored again under
    another submission's own key (``submission_attach_image``): each submission owns its file, so
    deleting one (retention, the dentist) never takes the other's. Reads the PNG's header only;
    raises ``FileNotFoundError`` when the file went meanwhile (then the caller decodes)."""
    with default_storage.open(name, "rb") as fh:
        content = fh.read()
    with Image.open(io.BytesIO(content), formats=("PNG",)) as picture:
        width, height = picture.size
    return ValidatedImage(content=content, width=width, height=height, source_format="PNG", content_hash=content_hash)


def _read_original(submission: Submission) -> bytes:
    try:
        with default_storage.open(submission.image.name, "rb") as fh:
            return fh.read()
    except FileNotFoundError as exc:  # gone for good: a retry cannot bring it back
        raise ApplicationError(MISSING_IMAGE, field="file", code="missing_file") from exc


def submission_decode_pending_image(submission: Submission) -> ValidatedImage | None:
    """The decoded image a submission still needs, or None when it has one already: downloaded
    when the sender gave a URL, else decoded from the original kept at intake. Reads storage and
    the network but writes nothing, so the worker runs several at once (``matching.pipeline``);
    ``submission_attach_image`` stores the result.

    Raises ``InvalidImage`` (an ``ApplicationError``) for a file that will never decode, and
    ``ApplicationError`` for an original that is gone: the caller fails the submission at once.
    Network and storage trouble raise their own errors (transient: retried).
    """
    if submission.content_hash and submission.image:
        return None  # already decoded (or stored before intake kept originals)
    if _is_region_to_cut(submission):
        return _cut_from_film(submission)
    original = submission_read_pending_original(submission)
    return None if original is None else submission_decode_original(submission, original[0])


def _cut_from_film(submission: Submission) -> ValidatedImage:
    """A region marked at intake or cropped on the result page (``crop_box``): its pixels cut here,
    in the worker, from the film's stored picture decoded as intake measured it (the web process
    checked the box against the film's header only). The film comes with the submission (the
    worker's claim loads it), so the prepare threads read storage only.

    The film's own task may swap its original for the decoded PNG meanwhile (the original is
    deleted at that commit): the file is then not found, a transient error (the task is delivered
    again and reads the film anew)."""
    film = submission.parent
    if film is None or not film.image:
        raise ApplicationError(
            "A radiografia original desta região não foi encontrada. Envie-a novamente.",
            field="file",
            code="missing_file",
        )
    with default_storage.open(film.image.name, "rb") as fh:
        decoded = decode_image(fh.read(), field="file")
    box = submission.crop_box or {}
    with Image.open(io.BytesIO(decoded.content), formats=("PNG",)) as picture:
        x0 = max(0, min(int(box.get("x", 0)), picture.width))
        y0 = max(0, min(int(box.get("y", 0)), picture.height))
        x1 = max(x0, min(x0 + int(box.get("width", 0)), picture.width))
        y1 = max(y0, min(y0 + int(box.get("height", 0)), picture.height))
        piece = picture.crop((x0, y0, x1, y1))
    out = io.BytesIO()
    piece.save(out, format="PNG")
    return decode_image(out.getvalue(), field="file")


def submission_prepare_image(*, submission_id: int) -> Submission:
    """Make sure a submission's image is decoded and normalised (worker side): fetch it when the
    sender gave a URL, else decode the original kept at intake and replace it by its PNG.
    Raises as ``submission_decode_pending_image`` says.
    """
    submission = Submission.objects.get(pk=submission_id)
    if _is_region_to_cut(submission):
        image = _cut_from_film(submission)
        return submission_attach_image(submission_id=submission_id, image=image)
    original = submission_read_pending_original(submission)
    if original is None:
        return submission
    image = submission_decode_original(submission, original[0])
    return submission_attach_image(submission_id=submission_id, image=image, original_hash=original[1])
