"""How a result is rendered as JSON: one serializer per shape, so that what the OpenAPI schema says
(drf-spectacular reads these classes) is what the answers contain (``to_representation`` of the
same classes). Used by ``POST /api/match/``, ``GET /api/match/<token>/``, ``POST /upload`` and the
staff API ``/api/submissions/``.
"""

from __future__ import annotations

from django.http import HttpRequest
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from submissions.models import Band, Match, Status, Submission
from submissions.results.answer import MatchResult, match_result
from submissions.results.links import file_url
from submissions.results.queries import card_image_url

# What the schema says the calibrated figures mean: one text for the public and the staff answers.
PROBABILITY_HELP = (
    "Probabilidade estimada (0-1) de que este candidato seja o implante da radiografia: a manchete para o "
    "dentista. Vem da calibração ativa do modelo que respondeu, ajustada para esse modelo e essa versão do "
    "pré-processamento num conjunto rotulado (evaluate_matching): entre as respostas com 0,6, cerca de 60 % "
    "estavam certas. null: o modelo ainda não foi calibrado (não há porcentagem a mostrar)."
)
BAND_MEANING = (
    "Faixa da probabilidade, com cortes escolhidos pela precisão medida na calibração: alta (>= 90 % dos "
    "primeiros candidatos certos nessa faixa), media (>= 60 %), baixa, nenhuma (abaixo do corte de "
    "'nenhuma correspondência convincente'); sem alta quando o conjunto de calibração não a mostrou."
)
BAND_HELP = (
    BAND_MEANING + " Nunca alta entre implantes parecidos nem quando a qualidade da imagem limita a comparação. "
    "null: o modelo ainda não foi calibrado."
)
RAW_SIMILARITY_HELP = (
    "Similaridade bruta (1 + cosseno) / 2 com a referência mais próxima, só para a equipe: não é uma "
    "probabilidade (imagens de implantes diferentes também dão valores altos); veja probability."
)


class MatchImplantSerializer(serializers.Serializer):
    """One candidate (a Match) as the old ``/upload`` answered it (id, name, manufacturer,
    image_url: the old system's contract), with the calibrated ``probability`` and its ``band`` —
    the dentist's headline. ``image_url``: a catalogue image of the implant, never the confirmed
    case (a patient's X-ray) the match may have come from. The raw similarity is not in this public
    answer (it is no probability, and reads "high" between different implants too): staff read it
    in the staff API (``MatchSerializer``) and the admin."""

    id = serializers.IntegerField(source="implant_id")
    name = serializers.CharField(source="implant.name")
    manufacturer = serializers.CharField(source="implant.manufacturer.name")
    image_url = serializers.SerializerMethodField()
    probability = serializers.FloatField(
        read_only=True,
        allow_null=True,
        min_value=0.0,
        max_value=1.0,
        help_text=PROBABILITY_HELP,
    )
    band = serializers.SerializerMethodField(help_text=BAND_HELP)
    rank = serializers.IntegerField()

    @extend_schema_field(serializers.URLField(allow_null=True))
    def get_image_url(self, match: Match) -> str | None:
        url = card_image_url(match)
        if not url:
            return None
        request = self.context.get("request")
        # Locally the storage gives a path (/media/...); a signed S3 URL is already absolute.
        return request.build_absolute_uri(url) if request is not None else url

    @extend_schema_field(serializers.ChoiceField(choices=Band.choices, allow_null=True, help_text=BAND_HELP))
    def get_band(self, match: Match) -> str | None:
        # The rules of the page (look-alikes, image quality) as ``match_result`` applied them.
        return getattr(match, "shown_band", match.band or None)


class RegionLinkSerializer(serializers.Serializer):
    """One implant marked on the film: its own submission and result page."""

    region = serializers.IntegerField()
    tooth = serializers.CharField(allow_blank=True)
    token = serializers.UUIDField()
    status = serializers.ChoiceField(choices=Status.choices)
    result_url = serializers.URLField()
    found = serializers.BooleanField(help_text="Encontrado pelo sistema (não marcado pelo dentista).")
    suggested_quadrant = serializers.IntegerField(
        allow_null=True, min_value=1, max_value=4, help_text="Quadrante FDI sugerido (panorâmica); null: não se sabe."
    )


class FixtureSerializer(serializers.Serializer):
    """One implant fixture the worker found in the picture (the screw, not the crown), in reading
    order (left to right): its box in the picture's pixels, the angle of its long axis from the
    vertical, which end is the apex, and the finder's score. No patient data."""

    box = serializers.ListField(
        child=serializers.IntegerField(), min_length=4, max_length=4, help_text="x0, y0, x1, y1 (pixels)"
    )
    axis_deg = serializers.FloatField()
    apex = serializers.ChoiceField(choices=["down", "up", "unknown"])
    score = serializers.FloatField(min_value=0, max_value=1)


class QualityProblemSerializer(serializers.Serializer):
    """What limits the comparison in this picture, and what the dentist can do about it."""

    code = serializers.ChoiceField(choices=["too_small", "cut_by_edge", "blurred", "flat"])
    message = serializers.CharField()


class MatchResultSerializer(serializers.Serializer):
    """The old ``/upload`` answer: ``implants`` and ``no_convincing_match`` only when done, the
    error fields only when failed. Renders a ``submissions.results.answer.MatchResult``."""

    status = serializers.ChoiceField(choices=Status.choices)
    submission = serializers.UUIDField(source="submission.token")
    result_url = serializers.URLField()
    status_url = serializers.URLField()
    # Not read-only on purpose: drf-spectacular lists read-only fields as required, and these
    # keys are absent unless the status has them.
    no_convincing_match = serializers.BooleanField(required=False)
    implants = MatchImplantSerializer(many=True, required=False)
    error = serializers.CharField(required=False)
    field = serializers.CharField(required=False)
    code = serializers.CharField(required=False)
    # Only when implants were marked (``regions``): one submission per implant, matched on its own.
    regions = RegionLinkSerializer(many=True, required=False)
    # Only when done. ``fixtures``: absent when the finder did not run (results recorded before
    # it existed); ``no_fixture_found``: no implant in the film (no candidates then).
    fixtures = FixtureSerializer(many=True, required=False)
    quality_problems = QualityProblemSerializer(many=True, required=False)
    no_fixture_found = serializers.BooleanField(required=False)

    OPTIONAL = (
        "no_convincing_match",
        "implants",
        "error",
        "field",
        "code",
        "regions",
        "fixtures",
        "quality_problems",
        "no_fixture_found",
    )

    def to_representation(self, instance: MatchResult) -> dict:
        data = super().to_representation(instance)
        for name in self.OPTIONAL:
            if getattr(instance, name) is None:
                data.pop(name, None)
        return data


def match_result_answer(submission: Submission, *, request: HttpRequest | None = None) -> tuple[dict, int]:
    """The JSON body and HTTP status of a match result: 200 done, 422 failed, 202 still pending."""
    body = MatchResultSerializer(match_result(submission), context={"request": request}).data
    return body, {Status.DONE: 200, Status.FAILED: 422}.get(submission.status, 202)


class ErrorSerializer(serializers.Serializer):
    error = serializers.CharField()
    field = serializers.CharField(allow_null=True)
    code = serializers.CharField()


# --- the staff API ------------------------------------------------------------------------------


class MatchSerializer(serializers.ModelSerializer):
    implant_name = serializers.CharField(source="implant.name")
    manufacturer = serializers.CharField(source="implant.manufacturer.name")

    class Meta:
        model = Match
        fields = [
            "rank",
            "implant",
            "implant_name",
            "manufacturer",
            "similarity",
            "probability",
            "band",
            "reference_image",
        ]
        extra_kwargs = {
            "similarity": {"help_text": RAW_SIMILARITY_HELP},
            "probability": {"help_text": PROBABILITY_HELP},
            "band": {
                "help_text": BAND_MEANING + " A gravada pelo worker, antes das regras de parecidos e qualidade "
                "da página; vazio: o modelo ainda não foi calibrado."
            },
        }


# What only staff holding ``view_patient_data`` read of a submission.
PATIENT_FIELDS = ("patient", "token", "original_filename")


class SubmissionSerializer(serializers.ModelSerializer):
    """A submission for staff. The patient's data — name, result token (it opens the patient's
    result page), original file name — only when the context says ``show_patient`` (staff holding
    ``view_patient_data``); otherwise the keys are absent, so the schema has them optional."""

    matches = MatchSerializer(many=True, read_only=True)
    image_url = serializers.SerializerMethodField()
    # Not read-only on purpose: drf-spectacular lists read-only fields as required.
    patient = serializers.CharField(required=False)
    token = serializers.UUIDField(required=False)
    original_filename = serializers.CharField(required=False)

    class Meta:
        model = Submission
        fields = [
            "id",
            "token",
            "source",
            "external_id",
            "status",
            "failure_reason",
            "dentist_name",
            "dentist_email",
            "patient",
            "tooth",
            "original_filename",
            "image_url",
            "embedding_model",
            "received_at",
            "started_at",
            "finished_at",
            "notified_at",
            "confirmed_implant",
            "confirmed_at",
            "matches",
        ]
        read_only_fields = [name for name in fields if name not in PATIENT_FIELDS]

    def to_representation(self, instance: Submission) -> dict:
        data = super().to_representation(instance)
        if not self.context.get("show_patient", False):
            for name in PATIENT_FIELDS:
                data.pop(name, None)
        return data

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_image_url(self, obj: Submission) -> str | None:
        return file_url(obj.image) or None  # short-lived signed URL on S3


# --- the specialist's review (``/api/match/<token>/review/``) ---------------------------------------


class ReviewRequestSerializer(serializers.Serializer):
    """A ``submissions.results.queries.ReviewState``: open until a specialist answers; then ``identified``
    (with the implant) or ``not_identifiable`` (with the specialist's note)."""

    state = serializers.ChoiceField(choices=["open", "identified", "not_identifiable"])
    note = serializers.CharField(allow_blank=True)
    requested_at = serializers.DateTimeField()
    answered_at = serializers.DateTimeField(allow_null=True)
    implant = serializers.IntegerField(source="implant_id", allow_null=True)
    implant_label = serializers.CharField(allow_blank=True)
    answer_note = serializers.CharField(allow_blank=True)


class ReviewAskSerializer(serializers.Serializer):
    note = serializers.CharField(required=False, allow_blank=True, help_text="Observação para o especialista.")
