"""The /api/ router: catalogue, submissions (staff), match, token."""

from __future__ import annotations

from django.urls import path
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.routers import DefaultRouter

from implants.api import ImplantViewSet, ManufacturerViewSet, ReferenceImageViewSet
from kernel.parsing import BoundedJSONParser
from submissions.api import MatchResultView, MatchReviewView, MatchView, SubmissionViewSet

# DRF's token view names its own parsers (its JSON one unbounded): ours instead.
obtain_auth_token = ObtainAuthToken.as_view(parser_classes=[FormParser, MultiPartParser, BoundedJSONParser])

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
