"""Admin: upload several reference images for one implant at once (through the services)."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.translation import gettext_lazy as _

from implants import services
from implants.models import Implant
from kernel.errors import ApplicationError

MAX_FILES = 50


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleImageField(forms.FileField):
    """Django's documented recipe for a field taking several files."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("widget", MultipleFileInput(attrs={"accept": "image/*"}))
        super().__init__(*args, **kwargs)

    def clean(self, data, initial=None):
        single = super().clean
        if isinstance(data, (list, tuple)):
            return [single(d, initial) for d in data]
        return [single(data, initial)]


class BulkUploadForm(forms.Form):
    images = MultipleImageField(label=_("Imagens de referência"), help_text=_("Selecione várias imagens de uma vez."))

    def clean_images(self):
        files = self.cleaned_data["images"]
        if len(files) > MAX_FILES:
            raise forms.ValidationError(_("No máximo %(n)s imagens por envio.") % {"n": MAX_FILES})
        return files


class BulkReferenceUploadMixin:
    """Adds ``<implant>/imagens/`` to the implant admin (linked from its change form)."""

    def get_urls(self):
        urls = super().get_urls()
        view = self.admin_site.admin_view(self.bulk_upload_view)
        return [path("<int:object_id>/imagens/", view, name="implants_implant_bulk_upload"), *urls]

    def bulk_upload_view(self, request, object_id: int):
        implant = get_object_or_404(Implant.objects.select_related("manufacturer"), pk=object_id)
        if not self.has_change_permission(request, implant):
            raise PermissionDenied
        form = BulkUploadForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            files = []
            for upload in form.cleaned_data["images"]:
                upload.seek(0)
                files.append((upload.read(), upload.name or "imagem.png"))
            try:
                created = services.reference_images_create_many(implant=implant, files=files)
            except ApplicationError as exc:
                form.add_error("images", f"{exc.message} Nenhuma imagem foi gravada.")
            else:
                self.message_user(
                    request, _("%(n)s imagens adicionadas; embeddings na fila.") % {"n": len(created)}, messages.SUCCESS
                )
                return redirect(reverse("admin:implants_implant_change", args=[implant.pk]))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "original": implant,
            "form": form,
            "title": _("Enviar várias imagens: %(implant)s") % {"implant": implant},
        }
        return TemplateResponse(request, "admin/implants/implant/bulk_upload.html", context)
