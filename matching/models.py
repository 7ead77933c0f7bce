"""What the workers run, recorded for processes that never load the model (web pages, dashboard)."""

from __future__ import annotations

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
