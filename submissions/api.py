"""Submissions API: staff reads (filters, pagination; patient only with permission) and the match
endpoint for API clients (``POST /api/match/``), which answers like the old ``POST /upload``."""

from __future__ import annotations

import datetime as dt

from django.utils.dateparse import parse_date
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import permissions, serializers, status, viewsets
from rest_framework.pagination import PageNumberPagination
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from kernel.errors import ApplicationError
from kernel.parsing import BoundedJSONParser
from submissions.intake.form import submit_and_wait
from submissions.models import Source, Status, Submission
from submissions.results import match_api_url, review_state, with_matches
from submissions.serializers import (
    ErrorSerializer,
    MatchResultSerializer,
    ReviewAskSerializer,
    ReviewRequestSerializer,
    SubmissionSerializer,
    match_result_answer,
)
from submissions.services import access_submission_by_token, may_read_every_submission, review_request_create

PATIENT_PERMISSION = "submissions.view_patient_data"


class StaffSubmissionPermission(permissions.BasePermission):
    """Staff with the model's view permission (reviewers); everyone else gets 401/403."""

    def has_permission(self, request, view) -> bool:
        return may_read_every_submission(request.user)


class SubmissionPagination(PageNumberPagination):
    page_size_query_param = "page_size"
    max_page_size = 200


def _date_param(request: Request, name: str) -> dt.date | None:
    raw = request.query_params.get(name)
    if not raw:
        return None
    try:
        value = parse_date(raw)
    except ValueError:
        value = None
    if value is None:
        raise ApplicationError("Data inválida (use AAAA-MM-DD).", field=name)
    return value


@extend_schema(
    parameters=[
        OpenApiParameter("status", str, enum=Status.values),
        OpenApiParameter("source", str, enum=Source.values),
        OpenApiParameter("received_after", dt.date, description="Recebidos a partir desta data (inclusive)."),
        OpenApiParameter("received_before", dt.date, description="Recebidos até esta data (inclusive)."),
        OpenApiParameter("confirmed", bool),
    ]
)
class SubmissionViewSet(viewsets.ReadOnlyModelViewSet):
    """Submissions for staff. The patient's name appears only with ``view_patient_data``."""

    permission_classes = [StaffSubmissionPermission]
    serializer_class = SubmissionSerializer
    pagination_class = SubmissionPagination
    lookup_value_regex = r"\d+"
    queryset = Submission.objects.none()

    def get_serializer_context(self) -> dict:
        user = getattr(self.request, "user", None)
        return {**super().get_serializer_context(), "show_patient": bool(user and user.has_perm(PATIENT_PERMISSION))}

    def get_queryset(self):
        qs = with_matches(Submission.objects.order_by("-received_at", "-id"))
        params = self.request.query_params
        if params.get("status"):
            if params["status"] not in Status.values:
                raise ApplicationError("Situação desconhecida.", field="status")
            qs = qs.filter(status=params["status"])
        if params.get("source"):
            if params["source"] not in Source.values:
                raise ApplicationError("Origem desconhecida.", field="source")
            qs = qs.filter(source=params["source"])
        if after := _date_param(self.request, "received_after"):
            qs = qs.filter(received_at__date__gte=after)
        if before := _date_param(self.request, "received_before"):
            qs = qs.filter(received_at__date__lte=before)
        if params.get("confirmed") in ("true", "false"):
            qs = qs.filter(confirmed_implant__isnull=params["confirmed"] == "false")
        return qs


# --- POST /api/match/ ---------------------------------------------------------------------


MatchResult = MatchResultSerializer
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

    @extend_schema(
        operation_id="match_create",
        request={
            "multipart/form-data": inline_serializer(
                "MatchRequest",
                {
                    "file": serializers.FileField(
                        help_text="A radiografia (JPEG, PNG, WebP, TIFF, BMP, HEIC ou DICOM)."
                    ),
                    "nome": serializers.CharField(required=False, help_text="Nome do dentista."),
                    "email": serializers.EmailField(required=False, help_text="E-mail do dentista."),
                    "paciente": serializers.CharField(required=False, help_text="Paciente (opcional)."),
                    "dente": serializers.CharField(required=False, help_text="Dente, notação FDI (ex.: 36)."),
                    "regions": serializers.CharField(
                        required=False,
                        help_text=(
                            "Implantes marcados (opcional): lista JSON [{x, y, width, height, tooth}] em pixels "
                            "da imagem; cada um é identificado à parte (até RAIOX_MAX_REGIONS, sem sobreposição)."
                        ),
                    ),
                },
            )
        },
        responses={
            200: MatchResult,
            202: OpenApiResponse(MatchResult, description="Ainda processando: consulte o Location."),
            400: ErrorBody,
            413: ErrorBody,
            422: OpenApiResponse(MatchResult, description="A imagem não pôde ser processada."),
            503: ErrorBody,
        },
    )
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
            200: MatchResult,
            202: OpenApiResponse(MatchResult, description="Ainda processando."),
            404: ErrorBody,
            422: OpenApiResponse(MatchResult, description="A imagem não pôde ser processada."),
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
