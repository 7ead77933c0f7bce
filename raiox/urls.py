from django.conf import settings
from django.contrib import admin
from django.urls import path, re_path
from django.views.static import serve

from raiox.health import healthcheck
from raiox.metrics import metrics_view

urlpatterns = [
    path("healthcheck", healthcheck, name="healthcheck"),
    path("metrics", metrics_view, name="metrics"),
    path("admin/", admin.site.urls),
]

if settings.SERVE_LOCAL_MEDIA:
    # Local files on a developer's machine only; in production media live in a private bucket
    # and are reached through signed URLs.
    urlpatterns += [re_path(r"^media/(?P<path>.*)$", serve, {"document_root": settings.MEDIA_ROOT})]
