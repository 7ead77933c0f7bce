"""Reading an uploaded file from a multipart request, with the size cap applied before reading."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest

from kernel.errors import ApplicationError
from kernel.imaging import size_label
from submissions.intake.common import missing, safe_filename


def too_large() -> ApplicationError:
    return ApplicationError(
        f"Arquivo muito grande: o limite é {size_label(settings.RAIOX_MAX_UPLOAD_BYTES)}.",
        field="file",
        status=413,
        code="file_too_large",
    )


def read_uploaded_file(request: HttpRequest, *, field: str = "file") -> tuple[bytes, str]:
    uploads = request.FILES.getlist(field)
    if not uploads:
        raise missing(field)
    upload = uploads[0]
    if upload.size is not None and upload.size > settings.RAIOX_MAX_UPLOAD_BYTES:
        raise too_large()
    return upload.read(), safe_filename(upload.name)
