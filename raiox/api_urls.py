"""The /api/ router: catalogue, submissions (staff), match, token."""

from __future__ import annotations

from django.urls import path
from rest_framework.authtoken.views import obtain_auth_token
from rest_framework.routers import DefaultRouter

from implants.api import ImplantViewSet, ManufacturerViewSet, ReferenceImageViewSet
from submissions.api import MatchResultView, MatchReviewView, MatchView, SubmissionViewSet

router = DefaultRouter(trailing_slash=True)
router.register("manufacturers", ManufacturerViewSet, basename="manufacturer")
router.register("implants", ImplantViewSet, basename="implant")
router.register("reference-images", ReferenceImageViewSet, basename="reference-image")
router.register("submissions", SubmissionViewSet, basename="submission")

urlpatterns = [
    path("token/", obtain_auth_token, name="api-token"),
    path("match/", MatchView.as_view(), name="api-match"),
    path("match/<uuid:token>/", MatchResultView.as_view(), name="api-match-result"),
    path("match/<uuid:token>/review/", MatchReviewView.as_view(), name="api-match-review"),
    *router.urls,
]
