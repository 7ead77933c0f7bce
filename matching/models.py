"""What the workers run, recorded for processes that never load the model (web pages, dashboard)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class WorkerState(models.Model):
    """One row per worker process that built a model: web processes read the latest to know whether
    results come from untrained weights (banner) and which model id is current."""

    hostname = models.CharField(_("máquina"), max_length=255)
    pid = models.PositiveIntegerField(_("processo"))
    model_id = models.CharField(_("modelo"), max_length=200)
    untrained = models.BooleanField(_("pesos não treinados"), default=False)
    device = models.CharField(_("dispositivo"), max_length=40)
    build_seconds = models.FloatField(_("tempo de carga (s)"), default=0.0)
    started_at = models.DateTimeField(_("iniciado em"), default=timezone.now)
    last_seen = models.DateTimeField(_("visto em"), default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-last_seen"]
        verbose_name = _("estado do worker")
        verbose_name_plural = _("estados dos workers")
        constraints = [models.UniqueConstraint(fields=["hostname", "pid"], name="workerstate_unique_process")]

    def __str__(self) -> str:
        return f"{self.hostname}:{self.pid} {self.model_id}"


class EvaluationReport(models.Model):
    """One run of ``manage.py evaluate_matching``: the figures (``summary``, the report.json
    content) and the rendered page, so that staff read the latest accuracy in the admin."""

    created_at = models.DateTimeField(_("criado em"), default=timezone.now, db_index=True)
    model_id = models.CharField(_("modelo"), max_length=200)
    untrained = models.BooleanField(_("pesos não treinados"), default=False)
    dataset = models.CharField(_("conjunto avaliado"), max_length=200)
    queries = models.PositiveIntegerField(_("consultas"), default=0)
    top1 = models.FloatField(_("top-1"), default=0.0)
    top5 = models.FloatField(_("top-5"), default=0.0)
    summary = models.JSONField(_("relatório (report.json)"), default=dict)
    # The report body (tables and inline SVG figures, no script, no inline style) shown in the admin.
    html = models.TextField(_("página do relatório"), blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("avaliação da identificação")
        verbose_name_plural = _("avaliações da identificação")

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.model_id} ({self.dataset})"


class Calibration(models.Model):
    """A calibration of one model's similarities into a probability (``matching.calibration``),
    fitted by ``evaluate_matching --fit-calibration`` on a labelled set. Only an active one fitted
    for the running model id *and* preprocessing version is ever used; activating one deactivates
    the model's previous one, which is kept (roll-back). Each switch is in ``CalibrationActivation``."""

    created_at = models.DateTimeField(_("criada em"), default=timezone.now, db_index=True)
    model_id = models.CharField(_("modelo"), max_length=200, db_index=True)
    preprocess_version = models.CharField(_("versão do pré-processamento"), max_length=40)
    method = models.CharField(_("método"), max_length=40)
    params = models.JSONField(_("parâmetros"), default=dict)
    bands = models.JSONField(_("faixas (probabilidades de corte)"), default=dict)
    dataset = models.CharField(_("conjunto de calibração"), max_length=200)
    queries = models.PositiveIntegerField(_("consultas"), default=0)
    ece_fit = models.FloatField(_("ECE no próprio conjunto"), null=True, blank=True)
    heldout = models.JSONField(_("figuras fora do ajuste"), default=dict, blank=True)
    report = models.ForeignKey(
        EvaluationReport,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="calibrations",
        verbose_name=_("avaliação"),
    )
    is_active = models.BooleanField(_("ativa"), default=False)
    activated_at = models.DateTimeField(_("ativada em"), null=True, blank=True)
    activated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("ativada por"),
    )

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("calibração")
        verbose_name_plural = _("calibrações")
        constraints = [
            models.UniqueConstraint(
                fields=["model_id", "preprocess_version"],
                condition=models.Q(is_active=True),
                name="calibration_one_active_per_model",
            )
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.model_id} ({self.dataset})"


class CalibrationActivation(models.Model):
    """The audit of the switches: who activated (or rolled back to) which calibration, when,
    and which one it replaced."""

    class Action(models.TextChoices):
        ACTIVATE = "activate", _("ativação")
        ROLLBACK = "rollback", _("volta à anterior")
        DEACTIVATE = "deactivate", _("desativação")

    calibration = models.ForeignKey(
        Calibration, on_delete=models.CASCADE, related_name="activations", verbose_name=_("calibração")
    )
    previous = models.ForeignKey(
        Calibration,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("substituiu"),
    )
    action = models.CharField(_("ação"), max_length=20, choices=Action.choices)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("por"),
    )
    at = models.DateTimeField(_("em"), default=timezone.now)

    class Meta:
        ordering = ["-at", "-pk"]
        verbose_name = _("troca de calibração")
        verbose_name_plural = _("trocas de calibração")

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.get_action_display()} #{self.calibration_id}"


class TrainingStatus(models.TextChoices):
    RUNNING = "running", _("treinando")
    DONE = "done", _("concluído")
    FAILED = "failed", _("falhou")


class TrainingRun(models.Model):
    """One run of ``manage.py train_matcher`` (or of the scheduled retraining): what it learned
    from, its learning curve, how the new model compares with the running one on the same
    held-out set, and the checkpoint it wrote. Written only by ``matching.services``."""

    created_at = models.DateTimeField(_("iniciado em"), default=timezone.now, db_index=True)
    finished_at = models.DateTimeField(_("terminado em"), null=True, blank=True)
    status = models.CharField(
        _("situação"), max_length=20, choices=TrainingStatus.choices, default=TrainingStatus.RUNNING
    )
    trigger = models.CharField(_("origem"), max_length=20, default="manual")  # manual | scheduled
    base_model_id = models.CharField(_("modelo de partida"), max_length=200)
    model_id = models.CharField(_("modelo treinado"), max_length=200, blank=True)
    untrained_start = models.BooleanField(_("partiu de pesos não treinados"), default=False)
    device = models.CharField(_("dispositivo"), max_length=40, blank=True)
    # The catalogue and confirmed cases it learned from: implants and images in training and held
    # out, the confirmed cases counted (the scheduled job counts new ones from here).
    sets = models.JSONField(_("conjuntos"), default=dict, blank=True)
    parameters = models.JSONField(_("parâmetros"), default=dict, blank=True)
    # Per epoch: {"epoch", "loss", "heldout_top1", "heldout_top3", "seconds"}.
    curves = models.JSONField(_("curvas"), default=list, blank=True)
    # {"running": {...}, "new": {...}, "better": bool}: top-1/top-3 overall, for implants in
    # training and for implants held out entirely, on the same held-out views.
    results = models.JSONField(_("resultados"), default=dict, blank=True)
    checkpoint_path = models.CharField(_("checkpoint"), max_length=500, blank=True)
    seconds = models.FloatField(_("duração (s)"), default=0.0)
    message = models.TextField(_("mensagem"), blank=True)
    activated_at = models.DateTimeField(_("ativado em"), null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("treinamento do modelo")
        verbose_name_plural = _("treinamentos do modelo")
        # Switching the workers' model (admin and ``train_matcher --activate-run/--deactivate``):
        # staff who may only read the runs get a 403.
        permissions = [("activate_trainingrun", _("Pode ativar um modelo treinado e voltar ao anterior"))]

    def __str__(self) -> str:
        return f"#{self.pk} {self.model_id or self.base_model_id} ({self.get_status_display()})"


class TrainingActivation(models.Model):
    """The audit of the model switches (``matching.services.training_run_activate`` /
    ``_deactivate``): who switched the workers to which trained model, or back, when, from where."""

    class Action(models.TextChoices):
        ACTIVATE = "activate", _("ativação")
        DEACTIVATE = "deactivate", _("volta ao modelo anterior")

    run = models.ForeignKey(
        TrainingRun,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="activations",
        verbose_name=_("treinamento"),  # activated, or rolled back
    )
    action = models.CharField(_("ação"), max_length=20, choices=Action.choices)
    model_id = models.CharField(_("modelo depois"), max_length=200, blank=True)  # "": the configured one
    previous_model_id = models.CharField(_("modelo antes"), max_length=200, blank=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("por"),
    )
    via = models.CharField(_("por onde"), max_length=20, default="command")  # command | admin
    at = models.DateTimeField(_("em"), default=timezone.now)

    class Meta:
        ordering = ["-at", "-pk"]
        verbose_name = _("troca de modelo treinado")
        verbose_name_plural = _("trocas de modelo treinado")

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.get_action_display()} {self.model_id or '(configurado)'}"
