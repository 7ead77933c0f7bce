"""Catalogue admin: manufacturers, implants, reference images inline with thumbnails.

Every save goes through ``implants.services``: a new or replaced picture clears the embedding and
queues a new one; deactivating an implant removes it from results at once.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Prefetch, Q
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from implants import services
from implants.admin_bulk import BulkReferenceUploadMixin
from implants.models import IMPLANT_DESCRIPTION_FIELDS, Implant, LookalikeGroup, Manufacturer, ReferenceImage
from implants.selectors import reference_images_for


def thumbnail(reference: ReferenceImage, size: int = 80) -> str:
    if not reference or not reference.image:
        return "—"
    # .url is a short-lived signed URL on S3, /media/... locally: works on both storages.
    # A class, not style=: the Content-Security-Policy allows no inline styles.
    css = "rx-thumb-sm" if size <= 48 else "rx-thumb"
    return format_html('<img src="{}" alt="" loading="lazy" class="{}">', reference.image.url, css)


def _uploaded_bytes(upload) -> tuple[bytes, str]:
    upload.seek(0)
    return upload.read(), getattr(upload, "name", "") or "imagem.png"


def _may_touch_confirmed_cases(request, references) -> bool:
    """Whether ``request.user`` may act on ``references`` (every one visible to them)."""
    return not references.exclude(pk__in=reference_images_for(request.user).values("pk")).exists()


class CatalogueCss:
    css = {"all": ["backoffice/dashboard.css"]}


@admin.register(Manufacturer)
class ManufacturerAdmin(admin.ModelAdmin):
    list_display = ["name", "country", "implant_count", "active_count"]
    search_fields = ["name", "country"]
    prepopulated_fields = {"slug": ["name"]}

    def save_model(self, request, obj, form, change):
        services.manufacturer_save(manufacturer=obj)

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(_implants=Count("implants"), _active=Count("implants", filter=Q(implants__is_active=True)))
        )

    @admin.display(description=_("implantes"), ordering="_implants")
    def implant_count(self, obj: Manufacturer) -> int:
        return obj._implants

    @admin.display(description=_("ativos"), ordering="_active")
    def active_count(self, obj: Manufacturer) -> int:
        return obj._active


class ReferenceImageInline(admin.TabularInline):
    model = ReferenceImage
    extra = 0
    fields = ["preview", "image", "source", "embedding_state"]
    readonly_fields = ["preview", "source", "embedding_state"]

    def get_queryset(self, request):
        # Confirmed cases (patients' X-rays) only for staff with view_patient_data.
        return reference_images_for(request.user)

    @admin.display(description=_("miniatura"))
    def preview(self, obj: ReferenceImage) -> str:
        return thumbnail(obj)

    @admin.display(description=_("embedding"))
    def embedding_state(self, obj: ReferenceImage) -> str:
        # Test the field against None: a numpy array in a boolean context raises.
        if obj.pk is None or obj.embedding is None:
            return str(_("pendente"))
        return obj.embedding_model


@admin.register(Implant)
class ImplantAdmin(BulkReferenceUploadMixin, admin.ModelAdmin):
    list_display = ["preview", "name", "manufacturer", "connection", "body_shape", "level", "image_count", "is_active"]
    list_display_links = ["preview", "name"]
    list_filter = ["manufacturer", "connection", "body_shape", "level", "thread_shape", "is_active"]
    search_fields = ["name", "manufacturer__name"]
    list_select_related = ["manufacturer"]
    # The old system's type stays editable next to the fields it was mapped to.
    fields = ["manufacturer", "name", *IMPLANT_DESCRIPTION_FIELDS, "legacy_type"]
    inlines = [ReferenceImageInline]
    actions = ["deactivate", "activate"]
    Media = CatalogueCss

    def save_model(self, request, obj, form, change):
        if change and "is_active" in form.changed_data:
            services.implant_set_active(implant=obj, is_active=obj.is_active)
        services.implant_save(implant=obj)

    def save_formset(self, request, form, formset, change):
        if formset.model is not ReferenceImage:
            return super().save_formset(request, form, formset, change)
        # Reference images: each change through a service, so embeddings stay right.
        for inline_form in formset.forms:
            reference = inline_form.instance
            if not inline_form.has_changed() and reference.pk is None:
                continue
            if inline_form in formset.deleted_forms:
                if reference.pk is not None:
                    services.reference_image_delete(reference=ReferenceImage.objects.get(pk=reference.pk))
                continue
            upload = inline_form.cleaned_data.get("image")
            if reference.pk is None and upload:
                data, name = _uploaded_bytes(upload)
                services.reference_image_create(implant=form.instance, image_bytes=data, filename=name)
            elif reference.pk is not None and "image" in inline_form.changed_data and upload:
                data, name = _uploaded_bytes(upload)
                stored = ReferenceImage.objects.get(pk=reference.pk)
                services.reference_image_replace_file(reference=stored, image_bytes=data, filename=name)
        formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []

    @admin.action(description=_("Desativar (some dos resultados na hora)"), permissions=["change"])
    def deactivate(self, request, queryset):
        for implant in queryset.filter(is_active=True):
            services.implant_set_active(implant=implant, is_active=False)
        self.message_user(request, _("Implantes desativados."), messages.SUCCESS)

    @admin.action(description=_("Reativar"), permissions=["change"])
    def activate(self, request, queryset):
        for implant in queryset.filter(is_active=False):
            services.implant_set_active(implant=implant, is_active=True)
        self.message_user(request, _("Implantes reativados."), messages.SUCCESS)

    def get_queryset(self, request):
        # Thumbnails read the prefetched images: one query for the page, not one per row.
        return (
            super()
            .get_queryset(request)
            .annotate(_images=Count("reference_images"))
            .prefetch_related(Prefetch("reference_images", queryset=reference_images_for(request.user)))
        )

    def has_delete_permission(self, request, obj=None):
        # Deleting an implant deletes its confirmed cases (patients' X-rays) with it: only for
        # staff who may see them. (Not obj.reference_images: the page's prefetch filters it.)
        if obj is not None and not _may_touch_confirmed_cases(request, ReferenceImage.objects.filter(implant=obj)):
            return False
        return super().has_delete_permission(request, obj)

    def delete_queryset(self, request, queryset):
        if not _may_touch_confirmed_cases(request, ReferenceImage.objects.filter(implant__in=queryset)):
            raise PermissionDenied
        super().delete_queryset(request, queryset)

    @admin.display(description=_("imagem"))
    def preview(self, obj: Implant) -> str:
        first = next(iter(obj.reference_images.all()), None)
        return thumbnail(first, size=48)

    @admin.display(description=_("imagens"), ordering="_images")
    def image_count(self, obj: Implant) -> int:
        return obj._images


@admin.register(ReferenceImage)
class ReferenceImageAdmin(admin.ModelAdmin):
    list_display = ["preview", "implant", "source", "embedding_model", "embedded_at"]
    list_filter = ["source", "implant__manufacturer", "embedding_model"]
    search_fields = ["implant__name", "implant__manufacturer__name"]
    list_select_related = ["implant__manufacturer"]
    readonly_fields = ["preview", "source", "content_hash", "embedding_model", "embedded_at"]
    Media = CatalogueCss

    def get_queryset(self, request):
        # Confirmed cases (patients' X-rays) only for staff with view_patient_data: without it
        # they are not listed, and their change, move and delete pages answer "not found".
        return reference_images_for(request.user).select_related("implant__manufacturer")

    def save_model(self, request, obj, form, change):
        upload = form.cleaned_data.get("image")
        if not change:
            data, name = _uploaded_bytes(upload)
            created = services.reference_image_create(implant=obj.implant, image_bytes=data, filename=name)
            obj.pk = created.pk  # the admin's redirect and log entry need the new row
            obj.image.name = created.image.name
            return
        if "image" in form.changed_data and upload:
            data, name = _uploaded_bytes(upload)
            stored = ReferenceImage.objects.get(pk=obj.pk)
            services.reference_image_replace_file(reference=stored, image_bytes=data, filename=name)
        # Only the picture is editable besides the implant; moving it keeps its embedding.
        elif "implant" in form.changed_data:
            stored = ReferenceImage.objects.get(pk=obj.pk)
            stored.implant = obj.implant
            services.reference_image_move(reference=stored)

    def delete_model(self, request, obj):
        services.reference_image_delete(reference=obj)

    def delete_queryset(self, request, queryset):
        for reference in queryset:
            services.reference_image_delete(reference=reference)

    @admin.display(description=_("miniatura"))
    def preview(self, obj: ReferenceImage) -> str:
        return thumbnail(obj, size=48)


@admin.register(LookalikeGroup)
class LookalikeGroupAdmin(admin.ModelAdmin):
    list_display = ["name", "members"]
    search_fields = ["name", "implants__name", "implants__manufacturer__name"]
    filter_horizontal = ["implants"]

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("implants__manufacturer")

    @admin.display(description=_("implantes"))
    def members(self, obj: LookalikeGroup) -> str:
        return ", ".join(str(i) for i in obj.implants.all())
