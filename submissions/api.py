"""Submissions API: staff reads (filters, pagination; patient only with permission) and the match
endpoint for API clients (``POST /api/match/``), which answers like the old ``POST /upload``."""

from __future__ import annotations

import django_filters
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import permissions, status, viewsets
from rest_framework.pagination import PageNumberPagination
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from kernel.errors import ApplicationError
from kernel.filters import BooleanFilter, IsoDateFilter
from kernel.parsing import BoundedJSONParser
from submissions.access import access_submission_by_token, can_see_patient, may_read_every_submission
from submissions.intake.form import submit_and_wait
from submissions.models import Source, Status, Submission
from submissions.results.links import match_api_url
from submissions.results.queries import review_state, with_matches
from submissions.serializers import (
    ErrorSerializer,
    MatchResultSerializer,
    ReviewAskSerializer,
    ReviewRequestSerializer,
    SubmissionSerializer,
    match_result_answer,
)
from submissions.services import review_request_create


class StaffSubmissionPermission(permissions.BasePermission):
    """Staff with the model's view permission (reviewers); everyone else gets 401/403."""

    def has_permission(self, request, view) -> bool:
        return may_read_every_submission(request.user)


class SubmissionPagination(PageNumberPagination):
    page_size_query_param = "page_size"
    max_page_size = 200


class SubmissionFilter(django_filters.FilterSet):
    """The staff list's filters (``kernel.filters``: a value a filter cannot take is a 400 naming it)."""

    status = django_filters.ChoiceFilter(choices=Status.choices, help_text="Situação do envio.")
    source = django_filters.ChoiceFilter(choices=Source.choices, help_text="Por onde chegou.")
    received_after = IsoDateFilter(
        field_name="received_at", lookup_expr="date__gte", help_text="Recebidos a partir desta data (inclusive)."
    )
    received_before = IsoDateFilter(
        field_name="received_at", lookup_expr="date__lte", help_text="Recebidos até esta data (inclusive)."
    )
    confirmed = BooleanFilter(
        field_name="confirmed_implant",
        lookup_expr="isnull",
        exclude=True,
        help_text="Só os com implante confirmado (true) ou só os sem (false).",
    )

    class Meta:
        model = Submission
        fields = ["status", "source", "received_after", "received_before", "confirmed"]


class SubmissionViewSet(viewsets.ReadOnlyModelViewSet):
    """Submissions for staff. The patient's name appears only with ``view_patient_data``."""

    permission_classes = [StaffSubmissionPermission]
    serializer_class = SubmissionSerializer
    filterset_class = SubmissionFilter
    pagination_class = SubmissionPagination
    lookup_value_regex = r"\d+"
    queryset = Submission.objects.none()

    def get_serializer_context(self) -> dict:
        user = getattr(self.request, "user", None)
        return {**super().get_serializer_context(), "show_patient": can_see_patient(user)}

    def get_queryset(self):
        return with_matches(Submission.objects.order_by("-received_at", "-id"))


# --- POST /api/match/ ---------------------------------------------------------------------


ErrorBody = ErrorSerializer


def _match_response(request: Request, submission: Submission) -> Response:
    body, code = match_result_answer(submission, request=request)
    response = Response(body, status=code)
    if code == status.HTTP_202_ACCEPTED:
        response["Location"] = match_api_url(submission)  # where to ask again
    return response


class MatchView(APIView):
    """Send an X-ray, get the most similar implant systems (or 202 and where to ask again)."""

    permission_classes = [permissions.IsAuthenticated]
    parser_classes = [MultiPartParser, FormParser]
    throttle_scope = "images"

    # Its body and answers are intake's, documented from the field specification the code
    # validates with (submissions.intake.schema, applied by raiox.openapi's hook).
    @extend_schema(operation_id="match_create", request=None, responses=None)
    def post(self, request: Request) -> Response:
        submission = submit_and_wait(
            request.data, request.FILES, source=Source.API, regions=request.data.get("regions"), owner=request.user
        )
        return _match_response(request, submission)


class MatchResultView(APIView):
    """The result of an earlier ``POST /api/match/``, by its token (its sender's, or staff's:
    ``access_submission_by_token``)."""

    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(
        operation_id="match_retrieve",
        responses={
            200: MatchResultSerializer,
            202: OpenApiResponse(MatchResultSerializer, description="Ainda processando."),
            404: ErrorBody,
            422: OpenApiResponse(MatchResultSerializer, description="A imagem não pôde ser processada."),
        },
    )
    def get(self, request: Request, token: str) -> Response:
        submission = access_submission_by_token(token, user=request.user)
        return _match_response(request, submission)


class MatchReviewView(APIView):
    """Ask for a specialist's review of an earlier match (``POST``; asking again answers the same
    request with 200), or read its state and answer (``GET``)."""

    permission_classes = [permissions.IsAuthenticated]
    parser_classes = [BoundedJSONParser, FormParser, MultiPartParser]

    @extend_schema(
        operation_id="match_review_create",
        request=ReviewAskSerializer,
        responses={
            201: ReviewRequestSerializer,
            200: OpenApiResponse(ReviewRequestSerializer, description="Já pedido antes: o mesmo pedido."),
            400: ErrorBody,
            404: ErrorBody,
            409: ErrorBody,
        },
    )
    def post(self, request: Request, token: str) -> Response:
        submission = access_submission_by_token(token, user=request.user)
        note = request.data.get("note", "") if hasattr(request.data, "get") else ""
        _review, created = review_request_create(submission=submission, note=note)
        body = ReviewRequestSerializer(review_state(submission)).data
        return Response(body, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)

    @extend_schema(operation_id="match_review_retrieve", responses={200: ReviewRequestSerializer, 404: ErrorBody})
    def get(self, request: Request, token: str) -> Response:
        submission = access_submission_by_token(token, user=request.user)
        state = review_state(submission)
        if state is None:
            raise ApplicationError("Nenhuma revisão pedida para este envio.", code="not_found", status=404)
        return Response(ReviewRequestSerializer(state).data)
