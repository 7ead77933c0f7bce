"""Object keys in the bucket, following the old system's folders.

- ``referencia/<uuid>.<ext>``: catalogue reference images;
- ``clientes/<client id>/<uuid>.<ext>``: X-rays sent by dentists (Jotform, webhook), where the
  client id is a keyed hash of the e-mail so that the e-mail never appears in a key;
- ``uploads/<uuid>.<ext>``: direct uploads (upload page, ``/upload``, the API).

Keys never contain anything the sender typed: not the file name, not the patient, not the e-mail.
"""

from __future__ import annotations

import hashlib
import hmac
import posixpath
import uuid

from django.conf import settings

# Originals are kept as received until the worker has decoded them (then replaced by a PNG), so
# the extension follows the content the intake recognised, never the sender's file name.
SAFE_EXTENSIONS = {".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".bmp", ".heic", ".dcm"}


def _extension(filename: str) -> str:
    ext = posixpath.splitext(filename or "")[1].lower()
    return ext if ext in SAFE_EXTENSIONS else ".png"


def client_id_for_email(email: str) -> str:
    """A stable, non-reversible folder name for a dentist's e-mail (HMAC-SHA256, 16 hex chars)."""
    normalised = (email or "").strip().lower()
    if not normalised:
        return "anonimo"
    key = settings.RAIOX_CLIENT_ID_KEY.encode()
    return hmac.new(key, normalised.encode(), hashlib.sha256).hexdigest()[:16]


def reference_image_key(instance: object, filename: str) -> str:
    return f"referencia/{uuid.uuid4().hex}{_extension(filename)}"


def submission_image_key(instance: object, filename: str) -> str:
    source = getattr(instance, "source", "")
    ext = _extension(filename)
    if source in {"jotform", "webhook"}:
        return f"clientes/{client_id_for_email(getattr(instance, 'dentist_email', ''))}/{uuid.uuid4().hex}{ext}"
    return f"uploads/{uuid.uuid4().hex}{ext}"
