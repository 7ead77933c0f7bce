"""``POST /upload``: the old system's upload endpoint, kept with its fields and its JSON answer.

Multipart ``file`` plus optional ``nome``, ``email``, ``paciente``, ``dente``. The image is stored and
queued like every other intake; the request then waits a few seconds (RAIOX_UPLOAD_WAIT_SECONDS)
for a worker and answers the top implants, or 202 with a status URL when the worker is not done.
The web process only polls the database: it never loads the model.
"""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from kernel.errors import ApplicationError
from kernel.http import check_rate
from submissions.intake.form import submit_and_wait
from submissions.intake.views import error_response
from submissions.models import Source
from submissions.serializers import match_result_answer


@csrf_exempt  # an API endpoint for non-browser clients (the old system's); no cookies are used
@require_POST
def upload(request: HttpRequest) -> JsonResponse:
    try:
        check_rate(request, "intake")
        submission = submit_and_wait(request.POST, request.FILES, source=Source.UPLOAD)
    except ApplicationError as exc:
        return error_response(exc)
    body, code = match_result_answer(submission, request=request)
    response = JsonResponse(body, status=code)
    if code == 202:
        response["Location"] = body["status_url"]
    return response
