"""``POST /upload``: the old system's upload endpoint, kept with its fields and its JSON answer.

Multipart ``file`` plus optional ``nome``, ``email``, ``paciente``, ``dente``. The image is stored and
queued like every other intake; the request then waits a few seconds (RAIOX_UPLOAD_WAIT_SECONDS)
for a worker and answers the top implants, or 202 with a status URL when the worker is not done.
The web process only polls the database: it never loads the model.
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from kernel.errors import ApplicationError
from submissions.models import Source
from submissions.results import wait_for_result
from submissions.serializers import match_result_answer
from submissions.services import IntakeRecord, submission_create

# Our field names back to the old form's, so that errors name what the client sent.
OLD_FIELD_NAMES = {"dentist_name": "nome", "dentist_email": "email", "patient": "paciente", "tooth": "dente"}


def _error(exc: ApplicationError) -> JsonResponse:
    body = exc.as_dict()
    body["field"] = OLD_FIELD_NAMES.get(body["field"], body["field"])
    response = JsonResponse(body, status=exc.status)
    if exc.status == 503:
        response["Retry-After"] = "30"
    return response


@csrf_exempt  # an API endpoint for non-browser clients (the old system's); no cookies are used
@require_POST
def upload(request: HttpRequest) -> JsonResponse:
    upload_file = request.FILES.get("file")
    if upload_file is None:
        return _error(
            ApplicationError("Envie a imagem da radiografia no campo 'file'.", field="file", code="missing_file")
        )
    if upload_file.size > settings.RAIOX_MAX_UPLOAD_BYTES:
        limit = settings.RAIOX_MAX_UPLOAD_BYTES // (1024 * 1024)
        return _error(
            ApplicationError(
                f"Arquivo muito grande: o limite é {limit} MB.", field="file", status=413, code="file_too_large"
            )
        )
    intake = IntakeRecord(
        source=Source.UPLOAD,
        dentist_name=request.POST.get("nome", ""),
        dentist_email=request.POST.get("email", ""),
        patient=request.POST.get("paciente", ""),
        tooth=request.POST.get("dente", ""),
        image_bytes=upload_file.read(),
        filename=upload_file.name or "",
    )
    try:
        submission, _ = submission_create(intake=intake)
    except ApplicationError as exc:
        return _error(exc)
    wait_for_result(submission.pk, settings.RAIOX_UPLOAD_WAIT_SECONDS)
    submission.refresh_from_db()
    body, code = match_result_answer(submission, request=request)
    response = JsonResponse(body, status=code)
    if code == 202:
        response["Location"] = body["status_url"]
    return response
