"""Admin: the training runs of ``train_matcher`` and of the scheduled retraining — their sets,
learning curves and results, read-only (a run is written by ``matching.services`` only). Staff
with ``matching.activate_trainingrun`` switch the workers to a run's model ("Ativar este modelo")
or back to the one before ("Voltar ao modelo anterior"): the same services as ``train_matcher
--activate-run`` / ``--deactivate`` (same rule: only a run better on its held-out set), audited in
``TrainingActivation``; the re-embedding is queued for the workers (this process never loads the
model)."""

from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST

from matching.models import TrainingActivation, TrainingRun

ACTIVATE_PERMISSION = "matching.activate_trainingrun"


def _quiet(_message: str) -> None:
    pass


CURVE_W, CURVE_H = 360, 120


def _pct(value: object) -> str:
    return f"{float(value or 0) * 100:.1f} %"


def _polyline(points: list[tuple[float, float]]) -> str:
    return " ".join(f"{x:.1f},{y:.1f}" for x, y in points)


def curve_svg(curves: list[dict]) -> str:
    """Loss (scaled to its own maximum) and held-out top-1 per epoch, as inline SVG (attributes
    only: the CSP forbids inline styles)."""
    if not curves:
        return "—"
    last = max(1, curves[-1]["epoch"])
    top_loss = max(p["loss"] for p in curves) or 1.0

    def at(epoch: float, value: float) -> tuple[float, float]:
        return 30 + epoch / last * (CURVE_W - 40), CURVE_H - 20 - value * (CURVE_H - 30)

    loss = _polyline([at(p["epoch"], p["loss"] / top_loss) for p in curves])
    top1 = _polyline([at(p["epoch"], p["heldout_top1"]) for p in curves])
    return format_html(
        '<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" role="img" aria-label="{label}">'
        '<rect x="30" y="10" width="{iw}" height="{ih}" fill="none" stroke="#999"/>'
        '<polyline points="{loss}" fill="none" stroke="#b03030" stroke-width="2"/>'
        '<polyline points="{top1}" fill="none" stroke="#2060b0" stroke-width="2"/>'
        '<text x="32" y="{ty}" font-size="11" fill="#b03030">perda (máx. {top_loss})</text>'
        '<text x="190" y="{ty}" font-size="11" fill="#2060b0">top-1 retido (0–100 %)</text>'
        '<text x="30" y="{h}" font-size="10">0</text><text x="{ex}" y="{h}" font-size="10">{last} épocas</text>'
        "</svg>",
        w=CURVE_W,
        h=CURVE_H,
        iw=CURVE_W - 40,
        ih=CURVE_H - 30,
        label=_("curva de aprendizado"),
        loss=loss,
        top1=top1,
        top_loss=f"{top_loss:.2f}",
        ty=CURVE_H - 6 - 0,
        ex=CURVE_W - 70,
        last=last,
    )


class ActivationInline(admin.TabularInline):
    model = TrainingActivation
    fk_name = "run"
    fields = ("at", "action", "previous_model_id", "model_id", "user", "via")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False


# matching.services and matching.embedder are imported where used, not at the top: this module is
# loaded by every web process (the admin's URLs), which must never import the model code
# (tests/submissions/test_pages.py test_web_pages_never_import_torch).


def _active_run_id() -> int | None:
    from matching.embedder import active_manifest

    manifest = active_manifest()
    return manifest.get("run") if manifest else None


@admin.register(TrainingRun)
class TrainingRunAdmin(admin.ModelAdmin):
    change_form_template = "admin/matching/trainingrun/change_form.html"
    change_list_template = "admin/matching/trainingrun/change_list.html"
    inlines = [ActivationInline]
    list_display = (
        "created_at",
        "status",
        "trigger",
        "model_id",
        "running_top1",
        "new_top1",
        "new_heldout_implants_top3",
        "better",
        "seconds",
        "activated_at",
        "active_now",
    )
    list_filter = ("status", "trigger", "untrained_start")
    fields = (
        "status",
        "trigger",
        "created_at",
        "finished_at",
        "seconds",
        "base_model_id",
        "model_id",
        "untrained_start",
        "device",
        "checkpoint_path",
        "activated_at",
        "message",
        "results_table",
        "curve",
        "sets_summary",
        "parameters",
    )
    readonly_fields = fields

    def has_add_permission(self, request) -> bool:
        return False  # made by `manage.py train_matcher` or the scheduled job

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description=_("ativo agora"), boolean=True)
    def active_now(self, obj: TrainingRun) -> bool:
        return _active_run_id() == obj.pk

    # --- switching the workers' model (the services decide; this only asks and tells) -------------

    def _may_switch(self, request) -> bool:
        return request.user.has_perm(ACTIVATE_PERMISSION)

    def get_urls(self):
        def post(view):
            return self.admin_site.admin_view(require_POST(view))

        return [
            path("<int:pk>/activate/", post(self.activate_view), name="matching_trainingrun_activate"),
            path("deactivate/", post(self.deactivate_view), name="matching_trainingrun_deactivate"),
            *super().get_urls(),
        ]

    def activate_view(self, request, pk: int):
        """ "Ativar este modelo" (POST, CSRF-checked): a refusal is the service's pt-BR message."""
        from matching import services

        run = get_object_or_404(TrainingRun, pk=pk)
        if not self._may_switch(request):
            raise PermissionDenied
        try:
            services.training_run_activate(run_id=run.pk, user=request.user, in_workers=True, log=_quiet)
        except services.ActivationRefused as exc:
            self.message_user(request, exc.message, messages.ERROR)
        else:
            self.message_user(
                request,
                _(
                    "Modelo %(m)s ativado: os workers passam a usá-lo e recalculam o catálogo. Ele começa "
                    "sem calibração: rode evaluate_matching para calibrá-lo."
                )
                % {"m": run.model_id},
            )
        return HttpResponseRedirect(reverse("admin:matching_trainingrun_change", args=[run.pk]))

    def deactivate_view(self, request):
        """ "Voltar ao modelo anterior" (POST): the activation before, or the configured model."""
        from matching import services

        if not self._may_switch(request):
            raise PermissionDenied
        try:
            model_id = services.training_run_deactivate(user=request.user, in_workers=True, log=_quiet)
        except services.ActivationRefused as exc:
            self.message_user(request, exc.message, messages.ERROR)
        else:
            self.message_user(
                request,
                _("Workers de volta a %(m)s; o catálogo será recalculado.")
                % {"m": model_id or _("o modelo configurado")},
            )
        return HttpResponseRedirect(reverse("admin:matching_trainingrun_changelist"))

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra = {"may_switch": self._may_switch(request), "active_run_id": _active_run_id()}
        return super().change_view(request, object_id, form_url, {**(extra_context or {}), **extra})

    def changelist_view(self, request, extra_context=None):
        extra = {"may_switch": self._may_switch(request), "active_run_id": _active_run_id()}
        return super().changelist_view(request, {**(extra_context or {}), **extra})

    @admin.display(description=_("top-1 atual"))
    def running_top1(self, obj: TrainingRun) -> str:
        return _pct(obj.results.get("running", {}).get("all", {}).get("top1")) if obj.results else "—"

    @admin.display(description=_("top-1 novo"))
    def new_top1(self, obj: TrainingRun) -> str:
        return _pct(obj.results.get("new", {}).get("all", {}).get("top1")) if obj.results else "—"

    @admin.display(description=_("top-3 novo, implantes fora do treino"))
    def new_heldout_implants_top3(self, obj: TrainingRun) -> str:
        return _pct(obj.results.get("new", {}).get("heldout_implants", {}).get("top3")) if obj.results else "—"

    @admin.display(description=_("melhor que o atual"), boolean=True)
    def better(self, obj: TrainingRun) -> bool | None:
        return obj.results.get("better") if obj.results else None

    @admin.display(description=_("curva"))
    def curve(self, obj: TrainingRun) -> str:
        return curve_svg(obj.curves or [])

    @admin.display(description=_("resultados no conjunto retido"))
    def results_table(self, obj: TrainingRun) -> str:
        results = obj.results or {}
        if not results:
            return "—"
        groups = (("all", "todos"), ("in_training", "implantes no treino"), ("heldout_implants", "fora do treino"))
        rows = [
            (
                results[key]["model_id"],
                label,
                results[key][group]["queries"],
                _pct(results[key][group]["top1"]),
                _pct(results[key][group]["top3"]),
            )
            for key in ("running", "new")
            for group, label in groups
            if key in results
        ]
        body = format_html_join("", "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>", rows)
        return format_html(
            "<p>{}</p><table><thead><tr><th>modelo</th><th>grupo</th><th>consultas</th><th>top-1</th>"
            "<th>top-3</th></tr></thead><tbody>{}</tbody></table>",
            results.get("set", ""),
            body,
        )

    @admin.display(description=_("conjuntos"))
    def sets_summary(self, obj: TrainingRun) -> str:
        sets = obj.sets or {}
        if not sets:
            return "—"
        return format_html(
            "{} implantes: {} no treino ({} imagens; origens {}), {} retidos inteiros; {} imagens retidas",
            sets.get("implants", 0),
            len(sets.get("train_implants", [])),
            len(sets.get("train_images", [])),
            ", ".join(f"{k} {v}" for k, v in sets.get("train_sources", {}).items()),
            len(sets.get("heldout_implants", [])),
            len(sets.get("heldout_images", [])),
        )
