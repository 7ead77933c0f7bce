"""Dentists' X-rays (Submission) and the implants found for them (Match).

Writes go through ``submissions.services``; nothing here has logic in ``save()``.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from pgvector.django import VectorField

from implants.models import EMBEDDING_DIMENSIONS, Implant, ReferenceImage
from kernel.storage_keys import submission_image_key
from submissions.validators import validate_fdi_tooth


class Source(models.TextChoices):
    JOTFORM = "jotform", _("Jotform")
    UPLOAD = "upload", _("página de envio")
    WEBHOOK = "webhook", _("webhook")
    API = "api", _("API")


class Status(models.TextChoices):
    RECEIVED = "received", _("recebido")
    PROCESSING = "processing", _("processando")
    DONE = "done", _("concluído")
    FAILED = "failed", _("falhou")


class Submission(models.Model):
    # The only way into a result page: unguessable, never derived from the row id.
    token = models.UUIDField(_("token público"), default=uuid.uuid4, unique=True, editable=False)
    source = models.CharField(_("origem"), max_length=20, choices=Source.choices)
    # Jotform's submissionID (or a webhook's id): repeated deliveries map to one Submission.
    external_id = models.CharField(_("id externo"), max_length=100, blank=True)
    dentist_name = models.CharField(_("nome do dentista"), max_length=200, blank=True)
    dentist_email = models.EmailField(_("e-mail do dentista"), max_length=254, blank=True)
    patient = models.CharField(_("paciente"), max_length=200, blank=True)
    tooth = models.CharField(_("dente"), max_length=2, blank=True, validators=[validate_fdi_tooth])

    image = models.ImageField(_("radiografia"), upload_to=submission_image_key, max_length=255, blank=True)
    # Where the worker must fetch the image from when the sender only gave a URL (Jotform keeps
    # uploads on its own servers); empty once the image is stored.
    remote_image_url = models.URLField(_("URL da imagem"), max_length=2000, blank=True)
    original_filename = models.CharField(_("nome original do arquivo"), max_length=255, blank=True)
    content_hash = models.CharField(_("hash do conteúdo"), max_length=64, blank=True, db_index=True)
    # sha256 of the bytes as sent, set when the worker decoded them: the same bytes sent again are
    # not decoded a second time (their PNG and content_hash are copied; ``services.remote``).
    original_hash = models.CharField(
        _("hash do arquivo original"), max_length=64, blank=True, db_index=True, editable=False
    )

    status = models.CharField(
        _("situação"), max_length=20, choices=Status.choices, default=Status.RECEIVED, db_index=True
    )
    failure_reason = models.TextField(_("motivo da falha"), blank=True)
    attempts = models.PositiveSmallIntegerField(_("tentativas"), default=0)

    embedding = VectorField(dimensions=EMBEDDING_DIMENSIONS, null=True, blank=True, editable=False)
    embedding_model = models.CharField(_("modelo do embedding"), max_length=200, blank=True, editable=False)

    received_at = models.DateTimeField(_("recebido em"), default=timezone.now, db_index=True)
    started_at = models.DateTimeField(_("início do processamento"), null=True, blank=True)
    finished_at = models.DateTimeField(_("fim do processamento"), null=True, blank=True)
    notified_at = models.DateTimeField(_("e-mail enviado em"), null=True, blank=True)
    # Why the result e-mail was not sent (e.g. the address's daily limit), for staff; empty otherwise.
    email_skipped_reason = models.CharField(_("e-mail não enviado"), max_length=200, blank=True)

    # The API user who sent it (``POST /api/match/``): only they (or staff) read it or ask its
    # review through the API (``access_submission_by_token``). Empty for the anonymous
    # routes (upload page, /upload, Jotform, webhook), where the token is the capability.
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        editable=False,
        related_name="+",
        verbose_name=_("cliente da API"),
    )

    # Crop and re-match: a new Submission made from a region of another one.
    parent = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="crops", verbose_name=_("original")
    )
    crop_box = models.JSONField(_("recorte"), null=True, blank=True)
    # "Refine by what you see": feature filters (connection, body_shape, level, thread_shape) the
    # dentist chose; the worker re-ranks with the stored embedding under them.
    refine_filters = models.JSONField(_("filtros"), default=dict, blank=True)

    # What the worker's fixture finder saw (``matching.fixtures``): the fixtures of this picture in
    # reading order (box, axis_deg, apex, score, number; boxes in this picture's pixels; no patient
    # data), None before the finder ran (or when it could not run); the quality problems (codes,
    # their Portuguese in ``submissions.fixtures``); whether both orientations were compared
    # because the apex end could not be told.
    fixtures = models.JSONField(_("implantes encontrados"), null=True, blank=True, editable=False)
    quality_problems = models.JSONField(_("problemas da imagem"), default=list, blank=True, editable=False)
    both_orientations = models.BooleanField(_("duas orientações comparadas"), default=False, editable=False)

    # Staff confirmation: the implant really in the X-ray, and the reference image it became.
    confirmed_implant = models.ForeignKey(
        Implant,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="confirmed_submissions",
        verbose_name=_("implante confirmado"),
    )
    confirmed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    confirmed_at = models.DateTimeField(_("confirmado em"), null=True, blank=True)
    confirmed_reference_image = models.OneToOneField(
        ReferenceImage, on_delete=models.SET_NULL, null=True, blank=True, related_name="confirmed_submission"
    )

    class Meta:
        ordering = ["-received_at"]
        verbose_name = _("envio")
        verbose_name_plural = _("envios")
        constraints = [
            models.UniqueConstraint(
                fields=["source", "external_id"],
                condition=~models.Q(external_id=""),
                name="submission_unique_external_id_per_source",
            )
        ]
        permissions = [("view_patient_data", _("Pode ver dados do paciente"))]
        indexes = [
            # The result e-mails sent to one address lately (its daily limit).
            models.Index(fields=["dentist_email", "notified_at"], name="submission_email_sent_idx"),
        ]

    def __str__(self) -> str:
        # Never the patient: this string ends up in logs and admin breadcrumbs.
        return f"Envio #{self.pk} ({self.get_source_display()})"


# Two durations, two names, each defined once. "Answer time" is what the dentist waits: received ->
# finished, the queue included; the dashboard, the CSV export, the admin column and /metrics'
# ``raiox_submission_answer_seconds`` all read it. "Worker time" is started -> finished, the
# worker's own share (``raiox_submission_worker_seconds``); the gap between them is the queue wait.
ANSWER_TIME = models.ExpressionWrapper(
    models.F("finished_at") - models.F("received_at"), output_field=models.DurationField()
)
WORKER_TIME = models.ExpressionWrapper(
    models.F("finished_at") - models.F("started_at"), output_field=models.DurationField()
)


class Band(models.TextChoices):
    """Bands of the calibrated probability (cut-offs chosen per calibration for a measured
    precision: ``matching.calibration``). NONE: below its "no convincing match" cut-off."""

    HIGH = "alta", _("alta")
    MEDIUM = "media", _("média")
    LOW = "baixa", _("baixa")
    NONE = "nenhuma", _("nenhuma correspondência convincente")


class Match(models.Model):
    submission = models.ForeignKey(Submission, on_delete=models.CASCADE, related_name="matches")
    implant = models.ForeignKey(Implant, on_delete=models.PROTECT, related_name="matches")
    reference_image = models.ForeignKey(
        ReferenceImage, on_delete=models.SET_NULL, null=True, blank=True, related_name="matches"
    )
    rank = models.PositiveSmallIntegerField(_("posição"))
    # The raw similarity, (1 + cosine) / 2: how close the picture is to the reference, not how
    # often such an answer is right. Staff (admin, staff API) and the evaluation read it.
    similarity = models.FloatField(_("similaridade"))
    # What the dentist reads: the probability that this candidate is the implant, from the active
    # calibration of the model that answered (``matching.calibration``), and its band; both null
    # when that model had no calibration yet ("modelo ainda não calibrado").
    probability = models.FloatField(_("probabilidade estimada"), null=True, blank=True)
    band = models.CharField(_("faixa"), max_length=10, choices=Band.choices, blank=True)

    class Meta:
        ordering = ["submission", "rank"]
        verbose_name = _("candidato")
        verbose_name_plural = _("candidatos")
        constraints = [
            models.UniqueConstraint(fields=["submission", "rank"], name="match_unique_rank"),
            models.UniqueConstraint(fields=["submission", "implant"], name="match_unique_implant"),
        ]

    def __str__(self) -> str:
        return f"{self.rank}. {self.implant} ({self.similarity:.2f})"


class Verdict(models.TextChoices):
    IS_THIS = "is_this", _("é este")
    NOT_THIS = "not_this", _("não é este")


class DentistFeedback(models.Model):
    """The dentist's answer on a candidate ("é este" / "não é este"), shown to staff for review."""

    submission = models.ForeignKey(Submission, on_delete=models.CASCADE, related_name="feedback")
    implant = models.ForeignKey(Implant, on_delete=models.CASCADE, related_name="+")
    verdict = models.CharField(_("resposta"), max_length=20, choices=Verdict.choices)
    created_at = models.DateTimeField(_("respondido em"), auto_now_add=True)

    class Meta:
        verbose_name = _("resposta do dentista")
        verbose_name_plural = _("respostas do dentista")
        constraints = [models.UniqueConstraint(fields=["submission", "implant"], name="feedback_unique_per_implant")]

    def __str__(self) -> str:
        return f"{self.get_verdict_display()}: {self.implant_id}"


class ReviewOutcome(models.TextChoices):
    IDENTIFIED = "identified", _("identificado")
    NOT_IDENTIFIABLE = "not_identifiable", _("não identificável")


class ReviewRequest(models.Model):
    """The dentist's request for a specialist's review of one X-ray, and the specialist's answer.

    One per submission (asking twice is the same request); answered once (the first reviewer's
    answer wins). An "identified" answer is also the staff confirmation of the submission
    (``confirmed_implant``), which teaches the matcher.
    """

    submission = models.OneToOneField(
        Submission, on_delete=models.CASCADE, related_name="review_request", verbose_name=_("envio")
    )
    note = models.TextField(_("observação do dentista"), max_length=1000, blank=True)
    requested_at = models.DateTimeField(_("pedido em"), default=timezone.now, db_index=True)

    outcome = models.CharField(_("resposta"), max_length=20, choices=ReviewOutcome.choices, blank=True)
    implant = models.ForeignKey(
        Implant,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="review_answers",
        verbose_name=_("implante identificado"),
    )
    answer_note = models.TextField(_("nota ao dentista"), max_length=1000, blank=True)
    answered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    answered_at = models.DateTimeField(_("respondido em"), null=True, blank=True, db_index=True)
    notified_at = models.DateTimeField(_("e-mail enviado em"), null=True, blank=True)
    # Why the answer's e-mail was not sent (the address's daily limit), for staff; empty otherwise.
    email_skipped_reason = models.CharField(_("e-mail não enviado"), max_length=200, blank=True)

    class Meta:
        ordering = ["requested_at"]
        verbose_name = _("pedido de revisão")
        verbose_name_plural = _("pedidos de revisão")
        constraints = [
            # An identified answer names its implant; "not identifiable" names none.
            models.CheckConstraint(
                condition=(
                    models.Q(outcome="")
                    | models.Q(outcome=ReviewOutcome.IDENTIFIED, implant__isnull=False)
                    | models.Q(outcome=ReviewOutcome.NOT_IDENTIFIABLE, implant__isnull=True)
                ),
                name="review_request_outcome_implant",
            )
        ]

    def __str__(self) -> str:
        return f"Revisão do envio #{self.submission_id}"

    @property
    def is_open(self) -> bool:
        return self.answered_at is None
