from django.conf import settings
from django.contrib import admin
from django.urls import path, re_path
from django.views.static import serve

from implants.api_legacy import implant_list
from raiox.health import healthcheck
from submissions.api_legacy import upload
from submissions.intake.views import generic_webhook, jotform_webhook

urlpatterns = [
    path("healthcheck", healthcheck, name="healthcheck"),
    path("admin/", admin.site.urls),
    # The old system's paths, kept for existing clients.
    path("upload", upload, name="legacy-upload"),
    path("implants", implant_list, name="legacy-implants"),
    re_path(r"^jotform/?$", jotform_webhook, name="jotform"),
    re_path(r"^webhook/?$", generic_webhook, name="webhook"),
]

if settings.SERVE_LOCAL_MEDIA:
    # Local files on a developer's machine only; in production media live in a private bucket
    # and are reached through signed URLs.
    urlpatterns += [re_path(r"^media/(?P<path>.*)$", serve, {"document_root": settings.MEDIA_ROOT})]
