"""The specialist-review queue in the admin: open requests first, longest waiting at the top, and
the answer page (the implant — the staff confirmation — or "not identifiable" with a note).

Answering needs the same permission as confirming (``submissions.change_submission``); writes go
through ``submissions.services.review_request_answer``.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import F, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from implants.models import Implant
from kernel.errors import ApplicationError
from submissions import services
from submissions.access import CONFIRM_PERMISSION
from submissions.models import ReviewRequest
from submissions.results.links import file_url
from submissions.results.queries import ranked_matches


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


class AnswerForm(forms.Form):
    implant = forms.ModelChoiceField(
        label=gettext_lazy("Implante do catálogo"),
        queryset=Implant.objects.filter(is_active=True).select_related("manufacturer"),
        required=False,
    )
    answer_note = forms.CharField(
        label=gettext_lazy("Nota ao dentista"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        max_length=1000,
    )


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
            url = reverse("admin:submissions_reviewrequest_answer", args=[obj.pk])
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
        if not request.user.has_perm(CONFIRM_PERMISSION):
            raise PermissionDenied
        review = get_object_or_404(ReviewRequest.objects.select_related("submission", "implant"), pk=pk)
        list_url = reverse("admin:submissions_reviewrequest_changelist")
        data = None
        if request.method == "POST":
            data = request.POST.copy()
            if data.get("candidate"):  # a candidate's button: that implant, whatever the list says
                data["implant"] = data["candidate"]
        form = AnswerForm(data)
        status = 200
        if request.method == "POST" and form.is_valid():
            implant = None if "not_identifiable" in request.POST else form.cleaned_data["implant"]
            if implant is None and "not_identifiable" not in request.POST:
                form.add_error("implant", _("Escolha o implante, ou responda “não identificável”."))
            else:
                try:
                    services.review_request_answer(
                        review_request=review, user=request.user, implant=implant, note=form.cleaned_data["answer_note"]
                    )
                except ApplicationError as exc:
                    form.add_error(None, exc.message)
                    status = exc.status
                else:
                    self.message_user(request, _("Resposta enviada ao dentista."), messages.SUCCESS)
                    return HttpResponseRedirect(list_url)
        elif request.method == "POST":
            status = 400
        submission = review.submission
        context = {
            **self.admin_site.each_context(request),
            "title": _("Responder ao pedido de revisão do envio #%(id)s") % {"id": submission.pk},
            "opts": self.model._meta,
            "review": review,
            "submission": submission,
            "xray_url": file_url(submission.image) or None,
            "matches": [
                (m, file_url(m.reference_image.image if m.reference_image else None) or None)
                for m in ranked_matches().filter(submission=submission)
            ],
            "form": form,
            "list_url": list_url,
        }
        return TemplateResponse(request, "admin/submissions/reviewrequest/answer.html", context, status=status)
