from csp.decorators import csp_update
from django.conf import settings
from django.contrib import admin
from django.urls import include, path, re_path
from django.views.static import serve
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from implants.api_legacy import implant_list
from raiox.dashboard import dashboard_view
from raiox.health import healthcheck
from raiox.metrics import metrics_view
from submissions import views as pages
from submissions.api_legacy import upload
from submissions.intake.views import generic_webhook, jotform_webhook

# The dentist's pages, in the "submissions" namespace: upload (/ and /enviar/), the result page
# /r/<token>/ with its status endpoint and actions, and Jotform's thank-you redirect.
dentist_pages = [
    path("", pages.upload, name="upload"),
    path("enviar/", pages.upload, name="upload-page"),
    path("r/<str:token>/", pages.result, name="result"),
    path("r/<str:token>/status.json", pages.result_status, name="result-status"),
    path("r/<str:token>/refinar/", pages.refine, name="refine"),
    path("r/<str:token>/resposta/", pages.feedback, name="feedback"),
    path("r/<str:token>/recortar/", pages.crop, name="crop"),
    path("r/<str:token>/especialista/", pages.review, name="review"),
    path("jotform/obrigado/", pages.jotform_thanks, name="jotform-thanks"),
]

urlpatterns = [
    path("healthcheck", healthcheck, name="healthcheck"),
    path("metrics", metrics_view, name="metrics"),
    path("admin/dashboard/", admin.site.admin_view(dashboard_view), name="admin-dashboard"),
    path("admin/", admin.site.urls),
    # The old system's paths, kept for existing clients.
    path("upload", upload, name="legacy-upload"),
    path("implants", implant_list, name="legacy-implants"),
    re_path(r"^jotform/?$", jotform_webhook, name="jotform"),
    re_path(r"^webhook/?$", generic_webhook, name="webhook"),
    path("", include((dentist_pages, "submissions"))),
    path("api/", include("raiox.api_urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    # Swagger UI (the old path /docs); the split view serves its script as a file, so scripts stay
    # under the strict CSP; Swagger UI sets style attributes from its script, allowed on this page only.
    re_path(
        r"^docs/?$",
        csp_update({"style-src": ["'unsafe-inline'"]})(SpectacularSwaggerSplitView.as_view(url_name="schema")),
        name="docs",
    ),
]

if settings.SERVE_LOCAL_MEDIA:
    # Local files on a developer's machine only; in production media live in a private bucket
    # and are reached through signed URLs.
    # MEDIA_ROOT is read per request (not at import) so that tests pointing it elsewhere are served.
    def _local_media(request, path):
        return serve(request, path, document_root=settings.MEDIA_ROOT)

    urlpatterns += [re_path(r"^media/(?P<path>.*)$", _local_media)]
