"""Admin: the calibrations fitted by ``evaluate_matching --fit-calibration``; staff activate one (or
go back to the previous one) here or from its evaluation report, audited in ``CalibrationActivation``.
The workers read the active calibration per batch: no restart."""

from __future__ import annotations

from django.contrib import admin, messages
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST

from kernel.errors import ApplicationError
from matching.calibration import calibration_activate, calibration_rollback
from matching.models import Calibration, CalibrationActivation


def _activated(calibration: Calibration) -> str:
    return _("Calibração %(c)s ativa para %(m)s.") % {"c": calibration.pk, "m": calibration.model_id}


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.0f} %"


class ActivationInline(admin.TabularInline):
    model = CalibrationActivation
    fk_name = "calibration"
    fields = ("at", "action", "user", "previous")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Calibration)
class CalibrationAdmin(admin.ModelAdmin):
    list_display = (
        "pk",
        "created_at",
        "model_id",
        "preprocess_version",
        "dataset",
        "queries",
        "ece_fit",
        "heldout_ece",
        "cutoffs",
        "is_active",
        "activated_by",
        "activated_at",
    )
    list_filter = ("is_active", "model_id", "preprocess_version")
    readonly_fields = [f.name for f in Calibration._meta.fields]
    inlines = [ActivationInline]
    actions = ["activate_selected", "roll_back_selected"]

    def has_add_permission(self, request) -> bool:
        return False  # fitted by `manage.py evaluate_matching --fit-calibration`, never by hand

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # kept for the roll-back and the audit

    @admin.display(description=_("ECE fora do ajuste"))
    def heldout_ece(self, obj: Calibration) -> str:
        return str(obj.heldout.get("ece", "—")) if obj.heldout else "—"

    @admin.display(description=_("cortes alta / média / sem correspondência"))
    def cutoffs(self, obj: Calibration) -> str:
        b = obj.bands
        return f"{_pct(b.get('high'))} / {_pct(b.get('medium'))} / < {_pct(b.get('no_match'))}"

    def _may_switch(self, request) -> bool:
        return request.user.has_perm("matching.change_calibration")

    @admin.action(description=_("Ativar a calibração selecionada (os workers passam a usá-la)"), permissions=["change"])
    def activate_selected(self, request, queryset) -> None:
        if not self._may_switch(request):
            self.message_user(request, _("Sem permissão para ativar calibrações."), messages.ERROR)
            return
        if queryset.count() != 1:
            self.message_user(request, _("Selecione exatamente uma calibração."), messages.ERROR)
            return
        calibration = calibration_activate(calibration_id=queryset.get().pk, user=request.user)
        self.message_user(
            request, _("Calibração %(c)s ativa para %(m)s.") % {"c": calibration.pk, "m": calibration.model_id}
        )

    @admin.action(description=_("Voltar à calibração anterior do modelo"), permissions=["change"])
    def roll_back_selected(self, request, queryset) -> None:
        if not self._may_switch(request):
            self.message_user(request, _("Sem permissão para trocar calibrações."), messages.ERROR)
            return
        for model_id, version in set(queryset.values_list("model_id", "preprocess_version")):
            try:
                now = calibration_rollback(model_id=model_id, preprocess_version=version, user=request.user)
            except ApplicationError as exc:
                self.message_user(request, exc.message, messages.ERROR)
                continue
            if now is None:
                self.message_user(
                    request, _("%(m)s voltou a ficar sem calibração.") % {"m": model_id}, messages.WARNING
                )
            else:
                self.message_user(request, _("%(m)s voltou à calibração %(c)s.") % {"m": model_id, "c": now.pk})

    def get_urls(self):
        view = self.admin_site.admin_view(require_POST(self.activate_view))
        return [path("<int:pk>/activate/", view, name="matching_calibration_activate"), *super().get_urls()]

    def activate_view(self, request, pk: int):
        """The "activate" button of an evaluation report's calibration (POST, CSRF-checked)."""
        calibration = get_object_or_404(Calibration, pk=pk)
        if not self._may_switch(request):
            from django.core.exceptions import PermissionDenied

            raise PermissionDenied
        calibration_activate(calibration_id=calibration.pk, user=request.user)
        self.message_user(
            request, _("Calibração %(c)s ativa para %(m)s.") % {"c": calibration.pk, "m": calibration.model_id}
        )
        back = request.POST.get("next", "")
        if not back.startswith("/admin/"):
            back = reverse("admin:matching_calibration_change", args=[calibration.pk])
        return HttpResponseRedirect(back)
