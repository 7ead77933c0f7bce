from django.conf import settings
from django.contrib import admin
from django.urls import include, path, re_path
from django.views.static import serve
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from raiox.health import healthcheck
from submissions.dashboard import dashboard_view

urlpatterns = [
    path("healthcheck", healthcheck, name="healthcheck"),
    path("admin/dashboard/", admin.site.admin_view(dashboard_view), name="admin-dashboard"),
    path("admin/", admin.site.urls),
    path("api/", include("raiox.api_urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    # Swagger UI (the old path /docs); the split view serves its script as a file (strict CSP).
    re_path(r"^docs/?$", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="docs"),
]

if settings.SERVE_LOCAL_MEDIA:
    # Local files on a developer's machine only; in production media live in a private bucket
    # and are reached through signed URLs.
    urlpatterns += [re_path(r"^media/(?P<path>.*)$", serve, {"document_root": settings.MEDIA_ROOT})]
