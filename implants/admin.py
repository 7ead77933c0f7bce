"""Catalogue admin: manufacturers, implants, reference images inline with thumbnails."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import Count, Q
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from implants.models import Implant, Manufacturer, ReferenceImage


def thumbnail(reference: ReferenceImage, size: int = 80) -> str:
    if not reference or not reference.image:
        return "—"
    # .url is a short-lived signed URL on S3, /media/... locally: works on both storages.
    return format_html(
        '<img src="{}" alt="" loading="lazy" style="height:{}px;border-radius:4px;background:#222">',
        reference.image.url,
        size,
    )


@admin.register(Manufacturer)
class ManufacturerAdmin(admin.ModelAdmin):
    list_display = ["name", "country", "implant_count", "active_count"]
    search_fields = ["name", "country"]
    prepopulated_fields = {"slug": ["name"]}

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
    readonly_fields = ["preview", "embedding_state"]

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
class ImplantAdmin(admin.ModelAdmin):
    list_display = ["preview", "name", "manufacturer", "connection", "body_shape", "level", "image_count", "is_active"]
    list_display_links = ["preview", "name"]
    list_filter = ["manufacturer", "connection", "body_shape", "level", "thread_shape", "is_active"]
    search_fields = ["name", "manufacturer__name"]
    list_select_related = ["manufacturer"]
    inlines = [ReferenceImageInline]

    def get_queryset(self, request):
        # Thumbnails read the prefetched images: one query for the page, not one per row.
        return (
            super()
            .get_queryset(request)
            .annotate(_images=Count("reference_images"))
            .prefetch_related("reference_images")
        )

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
    readonly_fields = ["preview", "content_hash", "embedding_model", "embedded_at"]

    @admin.display(description=_("miniatura"))
    def preview(self, obj: ReferenceImage) -> str:
        return thumbnail(obj, size=48)
