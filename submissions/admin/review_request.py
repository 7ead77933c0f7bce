"""The specialist-review queue in the admin: open requests first, longest waiting at the top.

A request is answered on its submission's "identificar o implante" page
(``submissions/admin/identify.py``: the implant — the staff confirmation — or "not identifiable"
with a note), with the confirmation's permission (``CONFIRM_PERMISSION``); the old answer URL
``<id>/responder/`` leads there.
"""

from __future__ import annotations

from django.contrib import admin
from django.db.models import F, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from submissions.access import CONFIRM_PERMISSION
from submissions.admin.identify import identify_url, identify_view
from submissions.models import ReviewRequest


class OpenFilter(admin.SimpleListFilter):
    title = gettext_lazy("situação")
    parameter_name = "aberto"

    def lookups(self, request, model_admin):
        return [("sim", _("aguardando resposta")), ("nao", _("respondidos"))]

    def queryset(self, request, queryset):
        if self.value() == "sim":
            return queryset.filter(answered_at__isnull=True)
        if self.value() == "nao":
            return queryset.filter(answered_at__isnull=False)
        return queryset


@admin.register(ReviewRequest)
class ReviewRequestAdmin(admin.ModelAdmin):
    list_display = ["id", "submission_link", "requested", "waiting", "state", "short_note", "answered_by"]
    list_filter = [OpenFilter, "outcome"]
    list_select_related = ["submission", "answered_by", "implant__manufacturer"]
    list_per_page = 50
    fields = [
        "submission",
        "note",
        "requested_at",
        "outcome",
        "implant",
        "answer_note",
        "answered_by",
        "answered_at",
        "notified_at",
    ]
    readonly_fields = fields

    class Media:
        css = {"all": ["backoffice/dashboard.css"]}

    def get_queryset(self, request: HttpRequest) -> QuerySet[ReviewRequest]:
        # The queue: open requests first, the longest waiting at the top; answered ones after.
        return super().get_queryset(request).order_by(F("answered_at").asc(nulls_first=True), "requested_at")

    def has_add_permission(self, request):
        return False  # only dentists ask

    def has_change_permission(self, request, obj=None):
        return False  # answered through the answer page, never edited

    def has_view_permission(self, request, obj=None):
        return request.user.has_perm("submissions.view_reviewrequest") or request.user.has_perm(CONFIRM_PERMISSION)

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser

    @admin.display(description=gettext_lazy("envio"))
    def submission_link(self, obj: ReviewRequest) -> str:
        return format_html(
            '<a href="{}">{}</a>',
            reverse("admin:submissions_submission_change", args=[obj.submission_id]),
            obj.submission,
        )

    @admin.display(description=gettext_lazy("pedido em"), ordering="requested_at")
    def requested(self, obj: ReviewRequest) -> str:
        return timezone.localtime(obj.requested_at).strftime("%d/%m/%Y %H:%M")

    @admin.display(description=gettext_lazy("espera"))
    def waiting(self, obj: ReviewRequest) -> str:
        end = obj.answered_at or timezone.now()
        hours = (end - obj.requested_at).total_seconds() / 3600
        return f"{hours:.1f} h"

    @admin.display(description=gettext_lazy("resposta"))
    def state(self, obj: ReviewRequest) -> str:
        if obj.answered_at is None:
            url = identify_url(obj.submission_id)
            return format_html('<a class="button" href="{}">{}</a>', url, _("Responder…"))
        if obj.implant_id:
            return str(obj.implant)
        return obj.get_outcome_display()

    @admin.display(description=gettext_lazy("observação"))
    def short_note(self, obj: ReviewRequest) -> str:
        return obj.note[:80]

    def get_urls(self):
        return [
            path(
                "<int:pk>/responder/",
                self.admin_site.admin_view(self.answer_view),
                name="submissions_reviewrequest_answer",
            ),
            *super().get_urls(),
        ]

    def answer_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        """The old answer URL: the submission's "identificar o implante" page (a POST answers here)."""
        review = get_object_or_404(ReviewRequest.objects.only("submission_id"), pk=pk)
        if request.method != "POST":
            return HttpResponseRedirect(identify_url(review.submission_id))
        return identify_view(request, admin_site=self.admin_site, submission_id=review.submission_id, answering=True)
