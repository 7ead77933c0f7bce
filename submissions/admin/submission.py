"""Submission review: list with filters, a read-only detail with the X-ray, matches and timeline,
and actions that go through services (re-process, identify the implant — the page of
``submissions/admin/identify.py`` —, un-confirm, export CSV).

Patient data appear only to staff holding ``submissions.view_patient_data``: the patient's name,
the result token (it opens the patient's result page), the original file name (often the
patient's name) and a candidate's picture where it is a confirmed case (another patient's X-ray).
"""

from __future__ import annotations

import csv

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.loader import render_to_string
from django.urls import path
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from implants.models import Manufacturer
from implants.selectors import reference_image_shown_to_staff
from submissions import services
from submissions.access import can_see_patient
from submissions.admin.identify import identify_url, identify_view
from submissions.models import ANSWER_TIME, Submission
from submissions.results.export import submissions_csv_rows
from submissions.results.links import file_url
from submissions.results.queries import ranked_matches, with_top_match


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
        "answer_time",
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
        # The top match and the answer time in the same query as the page (no query per row).
        return with_top_match(super().get_queryset(request)).annotate(answer_time_value=ANSWER_TIME)

    @admin.display(description=gettext_lazy("recebido em"), ordering="received_at")
    def received(self, obj: Submission) -> str:
        return _dt(obj.received_at)[:16]

    @admin.display(description=gettext_lazy("1º candidato"), ordering="top_similarity")
    def top_match(self, obj: Submission) -> str:
        if not getattr(obj, "top_implant", None):
            return "—"
        return _render("_top_match.html", submission=obj, similarity=f"{obj.top_similarity:.2f}")

    @admin.display(description=gettext_lazy("tempo de resposta"))
    def answer_time(self, obj: Submission) -> str:
        duration = obj.answer_time_value
        return "—" if duration is None else f"{duration.total_seconds():.1f} s"

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
            "email_skipped_reason",
            "confirmation",
            "parent",
        ]
        if not can_see_patient(request.user):
            # The candidates' table without other patients' X-rays (confirmed cases).
            fields[fields.index("matches_table")] = "matches_table_catalogue"
            return [name for name in fields if name not in ("token", "original_filename")]
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
        return _render("_xray.html", url=file_url(obj.image))

    @admin.display(description=gettext_lazy("candidatos"))
    def matches_table(self, obj: Submission) -> str:
        return _matches_table(obj, with_patient_data=True)

    @admin.display(description=gettext_lazy("candidatos"))
    def matches_table_catalogue(self, obj: Submission) -> str:
        return _matches_table(obj, with_patient_data=False)

    @admin.display(description=gettext_lazy("respostas do dentista"))
    def feedback_list(self, obj: Submission) -> str:
        feedback = obj.feedback.select_related("implant__manufacturer").order_by("created_at")
        return _render("_feedback.html", feedback=feedback)

    @admin.display(description=gettext_lazy("linha do tempo"))
    def timeline(self, obj: Submission) -> str:
        steps = [
            (_("recebido"), obj.received_at),
            (_("início do processamento"), obj.started_at),
            (_("fim do processamento"), obj.finished_at),
            (_("e-mail ao dentista"), obj.notified_at),
            (_("confirmado pela equipe"), obj.confirmed_at),
        ]
        return _render("_timeline.html", steps=steps)

    @admin.display(description=gettext_lazy("confirmação"))
    def confirmation(self, obj: Submission) -> str:
        confirm_url = identify_url(obj.pk)
        return _render("_confirmation.html", submission=obj, confirm_url=confirm_url)

    # --- actions ----------------------------------------------------------------------------

    @admin.action(description=gettext_lazy("Processar novamente"), permissions=["change"])
    def reprocess(self, request: HttpRequest, queryset: QuerySet[Submission]) -> None:
        count = 0
        for submission_id in queryset.values_list("pk", flat=True):
            services.submission_reprocess(submission_id=submission_id)
            count += 1
        self.message_user(request, _("%(n)d envio(s) enviados para processar de novo.") % {"n": count})

    @admin.action(description=gettext_lazy("Identificar o implante…"), permissions=["change"])
    def confirm(self, request: HttpRequest, queryset: QuerySet[Submission]):
        ids = list(queryset.values_list("pk", flat=True)[:2])
        if len(ids) != 1:
            warning = _("Selecione exatamente um envio para identificar o implante.")
            self.message_user(request, warning, messages.WARNING)
            return None
        return HttpResponseRedirect(identify_url(ids[0]))

    @admin.action(description=gettext_lazy("Desfazer a confirmação"), permissions=["change"])
    def unconfirm(self, request: HttpRequest, queryset: QuerySet[Submission]) -> None:
        count = 0
        for submission in queryset.filter(confirmed_implant__isnull=False):
            services.submission_unconfirm(submission=submission)
            count += 1
        self.message_user(request, _("%(n)d confirmação(ões) desfeita(s).") % {"n": count})

    @admin.action(description=gettext_lazy("Exportar CSV"), permissions=["view"])
    def export_csv(self, request: HttpRequest, queryset: QuerySet[Submission]) -> HttpResponse:
        response = HttpResponse(content_type="text/csv; charset=utf-8")
        stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
        response["Content-Disposition"] = f'attachment; filename="envios-{stamp}.csv"'
        response.write("\ufeff")  # Excel opens UTF-8 correctly with a BOM
        csv.writer(response).writerows(submissions_csv_rows(queryset, with_patient=can_see_patient(request.user)))
        return response

    # --- the "identificar o implante" page (submissions/admin/identify.py) -------------------

    def get_urls(self):
        return [
            path(
                "<int:pk>/confirmar/",
                self.admin_site.admin_view(self.identify_view),
                name="submissions_submission_confirm",
            ),
            *super().get_urls(),
        ]

    def identify_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        return identify_view(request, admin_site=self.admin_site, submission_id=pk)


def _dt(value) -> str:
    return timezone.localtime(value).strftime("%d/%m/%Y %H:%M:%S") if value else "—"


def _matches_table(obj: Submission, *, with_patient_data: bool) -> str:
    rows = []
    for m in ranked_matches().filter(submission=obj):
        shown = reference_image_shown_to_staff(m.reference_image, with_patient_data=with_patient_data)
        rows.append(
            {
                "match": m,
                "image_url": file_url(shown.image if shown else None),
                "restricted": m.reference_image is not None and shown is None,
                "similarity": f"{m.similarity:.3f}",
                "probability": "—"
                if m.probability is None
                else f"{m.probability * 100:.0f} % ({m.get_band_display()})",
                "confirmed": obj.confirmed_implant_id == m.implant_id,
            }
        )
    return _render("_matches.html", rows=rows)


def _render(template: str, **context: object) -> str:
    # The detail's read-only fields: HTML lives in templates, autoescaped; the result is safe.
    return render_to_string(f"admin/submissions/submission/{template}", context)
