"""Submission review: list with filters, a read-only detail with the X-ray, matches and timeline,
and actions that go through services (re-process, confirm, un-confirm, export CSV).

Patient names appear only to staff holding ``submissions.view_patient_data``.
"""

from __future__ import annotations

import csv

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import F, OuterRef, QuerySet, Subquery
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from implants.models import Implant, Manufacturer
from kernel.errors import ApplicationError
from submissions import services
from submissions.models import Match, Submission

PATIENT_PERMISSION = "submissions.view_patient_data"
CONFIRM_PERMISSION = "submissions.change_submission"

# The dashboard is linked from the admin index.
admin.site.index_template = "admin/raiox_index.html"
admin.site.site_header = gettext_lazy("Raiox AI — administração")
admin.site.site_title = gettext_lazy("Raiox AI")


def can_see_patient(request: HttpRequest) -> bool:
    return request.user.has_perm(PATIENT_PERMISSION)


def _image_url(field_file) -> str | None:
    # .url: a short-lived signed URL on S3, /media/... locally.
    return field_file.url if field_file else None


class TopManufacturerFilter(admin.SimpleListFilter):
    title = gettext_lazy("fabricante do 1º candidato")
    parameter_name = "top_manufacturer"

    def lookups(self, request, model_admin):
        return list(Manufacturer.objects.order_by("name").values_list("pk", "name"))

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(matches__rank=1, matches__implant__manufacturer_id=self.value())
        return queryset


class ConfirmedFilter(admin.SimpleListFilter):
    title = gettext_lazy("confirmado")
    parameter_name = "confirmed"

    def lookups(self, request, model_admin):
        return [("yes", _("confirmado")), ("no", _("não confirmado"))]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(confirmed_implant__isnull=False)
        if self.value() == "no":
            return queryset.filter(confirmed_implant__isnull=True)
        return queryset


class ConfirmForm(forms.Form):
    implant = forms.ModelChoiceField(
        label=gettext_lazy("Implante do catálogo"),
        queryset=Implant.objects.filter(is_active=True).select_related("manufacturer"),
    )


@admin.register(Submission)
class SubmissionAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "received",
        "source",
        "status",
        "dentist_name",
        "top_match",
        "confirmed_implant",
        "processing_time",
    ]
    list_filter = [
        "status",
        "source",
        ("received_at", admin.DateFieldListFilter),
        TopManufacturerFilter,
        ConfirmedFilter,
    ]
    search_fields = ["dentist_name", "dentist_email"]
    list_select_related = ["confirmed_implant__manufacturer"]
    date_hierarchy = "received_at"
    actions = ["reprocess", "confirm", "unconfirm", "export_csv"]
    ordering = ["-received_at"]
    list_per_page = 50

    class Media:
        css = {"all": ["backoffice/dashboard.css"]}

    # --- list -----------------------------------------------------------------------------

    def get_queryset(self, request):
        # The top match in the same query as the page (no query per row).
        first = Match.objects.filter(submission=OuterRef("pk"), rank=1)
        return (
            super()
            .get_queryset(request)
            .annotate(
                _top_implant=Subquery(first.values("implant__name")[:1]),
                _top_manufacturer=Subquery(first.values("implant__manufacturer__name")[:1]),
                _top_similarity=Subquery(first.values("similarity")[:1]),
            )
        )

    @admin.display(description=gettext_lazy("recebido em"), ordering="received_at")
    def received(self, obj: Submission) -> str:
        return _dt(obj.received_at)[:16]

    @admin.display(description=gettext_lazy("1º candidato"), ordering="_top_similarity")
    def top_match(self, obj: Submission) -> str:
        if not getattr(obj, "_top_implant", None):
            return "—"
        return format_html(
            '{} {} <span class="rx-note">{}</span>',
            obj._top_manufacturer,
            obj._top_implant,
            f"{obj._top_similarity:.2f}",
        )

    @admin.display(description=gettext_lazy("tempo"))
    def processing_time(self, obj: Submission) -> str:
        if obj.finished_at is None:
            return "—"
        return f"{(obj.finished_at - obj.received_at).total_seconds():.1f} s"

    # --- detail: read-only, patient only with permission ----------------------------------

    def get_fields(self, request, obj=None):
        fields = [
            "xray",
            "token",
            "source",
            "external_id",
            "status",
            "failure_reason",
            "attempts",
            "dentist_name",
            "dentist_email",
            "tooth",
            "original_filename",
            "embedding_model",
            "matches_table",
            "feedback_list",
            "timeline",
            "confirmation",
            "parent",
        ]
        if can_see_patient(request):
            fields.insert(fields.index("tooth"), "patient")
        return fields

    def get_readonly_fields(self, request, obj=None):
        return self.get_fields(request, obj)

    def has_add_permission(self, request):
        return False  # submissions come from dentists, never typed in by staff

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser

    # Deleting goes through the one service, which deletes the stored files (and crops) too.
    def delete_model(self, request, obj: Submission) -> None:
        services.submission_delete(submission=obj)

    def delete_queryset(self, request, queryset: QuerySet[Submission]) -> None:
        services.submissions_delete(submission_ids=list(queryset.values_list("pk", flat=True)))

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = {
            **(extra_context or {}),
            "show_save": False,
            "show_save_and_continue": False,
            "show_save_and_add_another": False,
            "can_confirm": self.has_change_permission(request),
        }
        return super().change_view(request, object_id, form_url, extra_context)

    @admin.display(description=gettext_lazy("radiografia"))
    def xray(self, obj: Submission) -> str:
        url = _image_url(obj.image)
        if not url:
            return _("(ainda não armazenada)")
        return format_html(
            '<a href="{}" target="_blank" rel="noopener"><img src="{}" alt="" class="rx-xray"></a>',
            url,
            url,
        )

    @admin.display(description=gettext_lazy("candidatos"))
    def matches_table(self, obj: Submission) -> str:
        matches = obj.matches.select_related("implant__manufacturer", "reference_image").order_by("rank")
        rows = [
            (
                m.rank,
                _image_url(m.reference_image.image) if m.reference_image else "",
                m.implant.manufacturer.name,
                m.implant.name,
                f"{m.similarity:.3f}",
                "✔" if obj.confirmed_implant_id == m.implant_id else "",
            )
            for m in matches
        ]
        if not rows:
            return "—"
        body = format_html_join(
            "",
            '<tr><td>{}</td><td><img src="{}" alt="" class="rx-thumb"></td>'
            "<td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            rows,
        )
        return format_html(
            '<table class="rx-matches"><thead><tr><th>#</th><th></th><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr>'
            "</thead><tbody>{}</tbody></table>",
            _("fabricante"),
            _("implante"),
            _("similaridade"),
            _("confirmado"),
            body,
        )

    @admin.display(description=gettext_lazy("respostas do dentista"))
    def feedback_list(self, obj: Submission) -> str:
        feedback = obj.feedback.select_related("implant__manufacturer").order_by("created_at")
        if not feedback:
            return "—"
        return format_html_join(
            "", "<div>{}: {} ({})</div>", ((f.get_verdict_display(), f.implant, _dt(f.created_at)) for f in feedback)
        )

    @admin.display(description=gettext_lazy("linha do tempo"))
    def timeline(self, obj: Submission) -> str:
        steps = [
            (_("recebido"), obj.received_at),
            (_("início do processamento"), obj.started_at),
            (_("fim do processamento"), obj.finished_at),
            (_("e-mail ao dentista"), obj.notified_at),
            (_("confirmado pela equipe"), obj.confirmed_at),
        ]
        return format_html(
            '<ol class="rx-timeline">{}</ol>',
            format_html_join("", "<li>{}: {}</li>", ((label, _dt(when)) for label, when in steps)),
        )

    @admin.display(description=gettext_lazy("confirmação"))
    def confirmation(self, obj: Submission) -> str:
        confirm_url = reverse("admin:submissions_submission_confirm", args=[obj.pk])
        if obj.confirmed_implant_id is None:
            return format_html('<a class="button" href="{}">{}</a>', confirm_url, _("Confirmar o implante…"))
        return format_html(
            '{} <span class="rx-note">({}, {})</span> <a class="button" href="{}">{}</a>',
            obj.confirmed_implant,
            obj.confirmed_by or "—",
            _dt(obj.confirmed_at),
            confirm_url,
            _("Alterar ou desfazer…"),
        )

    # --- actions ----------------------------------------------------------------------------

    @admin.action(description=gettext_lazy("Processar novamente"), permissions=["change"])
    def reprocess(self, request: HttpRequest, queryset: QuerySet[Submission]) -> None:
        count = 0
        for submission_id in queryset.values_list("pk", flat=True):
            services.submission_reprocess(submission_id=submission_id)
            count += 1
        self.message_user(request, _("%(n)d envio(s) enviados para processar de novo.") % {"n": count})

    @admin.action(description=gettext_lazy("Confirmar o implante…"), permissions=["change"])
    def confirm(self, request: HttpRequest, queryset: QuerySet[Submission]):
        ids = list(queryset.values_list("pk", flat=True)[:2])
        if len(ids) != 1:
            self.message_user(request, _("Selecione exatamente um envio para confirmar."), messages.WARNING)
            return None
        return HttpResponseRedirect(reverse("admin:submissions_submission_confirm", args=[ids[0]]))

    @admin.action(description=gettext_lazy("Desfazer a confirmação"), permissions=["change"])
    def unconfirm(self, request: HttpRequest, queryset: QuerySet[Submission]) -> None:
        count = 0
        for submission in queryset.filter(confirmed_implant__isnull=False):
            services.submission_unconfirm(submission=submission)
            count += 1
        self.message_user(request, _("%(n)d confirmação(ões) desfeita(s).") % {"n": count})

    @admin.action(description=gettext_lazy("Exportar CSV"), permissions=["view"])
    def export_csv(self, request: HttpRequest, queryset: QuerySet[Submission]) -> HttpResponse:
        with_patient = can_see_patient(request)
        response = HttpResponse(content_type="text/csv; charset=utf-8")
        stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
        response["Content-Disposition"] = f'attachment; filename="envios-{stamp}.csv"'
        response.write("\ufeff")  # Excel opens UTF-8 correctly with a BOM
        writer = csv.writer(response)
        header = ["id", "recebido_em", "origem", "situacao", "dentista", "email", "dente"]
        header += ["paciente"] if with_patient else []
        header += ["candidato_1", "similaridade_1", "implante_confirmado", "tempo_s", "motivo_falha"]
        writer.writerow(header)
        rows = queryset.select_related("confirmed_implant__manufacturer").order_by("received_at")
        for s in rows.annotate(_secs=F("finished_at") - F("received_at")):
            row = [s.pk, timezone.localtime(s.received_at).isoformat(), s.source, s.status, s.dentist_name]
            row += [s.dentist_email, s.tooth] + ([s.patient] if with_patient else [])
            top = f"{s._top_manufacturer} {s._top_implant}" if s._top_implant else ""
            similarity = f"{s._top_similarity:.4f}" if s._top_similarity is not None else ""
            secs = f"{s._secs.total_seconds():.1f}" if s._secs is not None else ""
            row += [top, similarity, str(s.confirmed_implant or ""), secs, s.failure_reason]
            writer.writerow([_csv_safe(v) for v in row])
        return response

    # --- the confirm page -------------------------------------------------------------------

    def get_urls(self):
        return [
            path(
                "<int:pk>/confirmar/",
                self.admin_site.admin_view(self.confirm_view),
                name="submissions_submission_confirm",
            ),
            *super().get_urls(),
        ]

    def confirm_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        submission = get_object_or_404(self.get_queryset(request), pk=pk)
        if not self.has_change_permission(request, submission):
            raise PermissionDenied
        change_url = reverse("admin:submissions_submission_change", args=[pk])
        form = ConfirmForm(request.POST or None)
        if request.method == "POST":
            try:
                if "unconfirm" in request.POST:
                    services.submission_unconfirm(submission=submission)
                    self.message_user(request, _("Confirmação desfeita; a imagem de referência foi removida."))
                    return HttpResponseRedirect(change_url)
                if form.is_valid():
                    services.submission_confirm(
                        submission=submission, implant=form.cleaned_data["implant"], user=request.user
                    )
                    self.message_user(
                        request,
                        _("Implante confirmado: a radiografia virou imagem de referência de %(implant)s.")
                        % {"implant": form.cleaned_data["implant"]},
                        messages.SUCCESS,
                    )
                    return HttpResponseRedirect(change_url)
            except ApplicationError as exc:
                form.add_error(None, exc.message)
        matches = submission.matches.select_related("implant__manufacturer", "reference_image").order_by("rank")
        context = {
            **self.admin_site.each_context(request),
            "title": _("Confirmar o implante do envio #%(id)s") % {"id": pk},
            "opts": self.model._meta,
            "original": submission,
            "submission": submission,
            "xray_url": _image_url(submission.image),
            "matches": [(m, _image_url(m.reference_image.image) if m.reference_image else None) for m in matches],
            "form": form,
            "change_url": change_url,
        }
        return TemplateResponse(request, "admin/submissions/submission/confirm.html", context)


def _dt(value) -> str:
    return timezone.localtime(value).strftime("%d/%m/%Y %H:%M:%S") if value else "—"


def _csv_safe(value: object) -> object:
    # A cell starting with = + - @ would run as a formula in a spreadsheet: quote it.
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value
