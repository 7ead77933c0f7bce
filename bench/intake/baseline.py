"""The old design, for comparison only: CLIP inside the request.

A bench-only WSGI app (``gunicorn -c deploy/gunicorn.conf.py bench.intake.baseline:application``),
never routed by the product. For each Jotform webhook it does what the old FastAPI server did before
answering: parse the webhook, download the X-ray from Jotform's file host, decode it, embed it with
CLIP and search pgvector, then answer with the top implants. It stores nothing, so it is, if
anything, cheaper than the old service. It reuses the product's own parsing, download, validation,
embedder and search, so the only difference measured is *where* the work happens.
"""

from __future__ import annotations

import json
import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "raiox.settings")

import django

django.setup()

from django.conf import settings  # noqa: E402
from django.core.handlers.wsgi import WSGIRequest  # noqa: E402
from django.db import close_old_connections  # noqa: E402

from kernel.errors import ApplicationError  # noqa: E402

# The worker's own download and the full decode it applies to downloaded bytes (as the old
# system's request did).
from kernel.imaging import decode_image as validate_image  # noqa: E402
from matching.embedder import get_embedder  # noqa: E402
from matching.search import nearest_implants  # noqa: E402
from submissions.intake import jotform  # noqa: E402
from submissions.services.remote import _download  # noqa: E402

# Built at import, before the worker accepts a request: the model load is not part of any latency.
EMBEDDER = get_embedder()


def _respond(start_response, status: str, payload: dict) -> list[bytes]:
    body = json.dumps(payload).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


def application(environ, start_response):
    if environ["REQUEST_METHOD"] != "POST":
        return _respond(start_response, "200 OK", {"ready": True, "model": EMBEDDER.model_id})
    close_old_connections()
    request = WSGIRequest(environ)
    try:
        if request.GET.get("token", "") != settings.JOTFORM_WEBHOOK_TOKEN:
            return _respond(start_response, "403 Forbidden", {"error": "token"})
        intake = jotform.intake_from_jotform(request)
        image = validate_image(_download(intake.remote_image_url, source=intake.source))
        vector = EMBEDDER.embed_bytes(image.content)
        hits = nearest_implants(vector, model_id=EMBEDDER.model_id)
    except ApplicationError as exc:
        return _respond(start_response, f"{exc.status} Error", exc.as_dict())
    finally:
        close_old_connections()
    return _respond(
        start_response,
        "200 OK",
        {"matches": [{"implant": h.implant_id, "similarity": round(h.similarity, 4)} for h in hits]},
    )
