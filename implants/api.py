"""Catalogue API: manufacturers and implants (read: any authenticated client; write: catalogue
editors, by model permission), reference images and their upload (through ``implants.services``).

Reference images here are the catalogue's only: a confirmed case (a patient's X-ray) is for
matching, never listed by this API, whoever asks (``implants.selectors``); staff see them in the
admin."""

from __future__ import annotations

import django_filters
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.permissions import DjangoModelPermissions
from rest_framework.request import Request
from rest_framework.response import Response

from implants import services
from implants.models import IMPLANT_DESCRIPTION_FIELDS, Implant, Manufacturer, ReferenceImage
from implants.selectors import catalog_images
from kernel.errors import ApplicationError
from kernel.filters import BooleanFilter
from kernel.imaging import inspect_image


class CatalogPermission(DjangoModelPermissions):
    """Reads for any authenticated client; writes need the model's add/change permission."""

    perms_map = {**DjangoModelPermissions.perms_map, "GET": [], "HEAD": [], "OPTIONS": []}


class ManufacturerSerializer(serializers.ModelSerializer):
    slug = serializers.SlugField(max_length=120, required=False, allow_blank=True)

    class Meta:
        model = Manufacturer
        fields = ["id", "name", "slug", "country", "website"]


class ReferenceImageSerializer(serializers.ModelSerializer):
    image_url = serializers.SerializerMethodField()
    embedded = serializers.SerializerMethodField()

    class Meta:
        model = ReferenceImage
        fields = ["id", "implant", "source", "image_url", "embedded", "embedding_model", "embedded_at", "created_at"]
        read_only_fields = fields

    def get_image_url(self, obj: ReferenceImage) -> str | None:
        if not obj.image:
            return None
        request = self.context.get("request")
        url = obj.image.url  # signed on S3
        return request.build_absolute_uri(url) if request is not None else url

    def get_embedded(self, obj: ReferenceImage) -> bool:
        return obj.embedded_at is not None


class ImplantSerializer(serializers.ModelSerializer):
    manufacturer_name = serializers.CharField(source="manufacturer.name", read_only=True)
    diameters_mm = serializers.ListField(
        child=serializers.DecimalField(max_digits=4, decimal_places=2, min_value=0), required=False, max_length=30
    )
    lengths_mm = serializers.ListField(
        child=serializers.DecimalField(max_digits=4, decimal_places=1, min_value=0), required=False, max_length=30
    )
    reference_image_count = serializers.IntegerField(read_only=True, source="_images")

    class Meta:
        model = Implant
        fields = [
            "id",
            "manufacturer",
            "manufacturer_name",
            "name",
            *IMPLANT_DESCRIPTION_FIELDS,
            "reference_image_count",
        ]


class ReferenceImageUploadSerializer(serializers.Serializer):
    file = serializers.FileField()


# --- the lists' filters (kernel.filters: a value a filter cannot take is a 400 naming it) ---------


class ManufacturerFilter(django_filters.FilterSet):
    name = django_filters.CharFilter(lookup_expr="icontains", help_text="Parte do nome (sem diferenciar maiúsculas).")

    class Meta:
        model = Manufacturer
        fields = ["name"]


class ImplantFilter(django_filters.FilterSet):
    manufacturer = django_filters.ModelChoiceFilter(
        queryset=Manufacturer.objects.all(), help_text="Filtra por fabricante (id de um fabricante existente)."
    )
    active = BooleanFilter(field_name="is_active", help_text="Só ativos (true) ou só inativos (false).")

    class Meta:
        model = Implant
        fields = ["manufacturer", "active"]


class ReferenceImageFilter(django_filters.FilterSet):
    implant = django_filters.ModelChoiceFilter(
        queryset=Implant.objects.all(), help_text="Filtra por implante (id de um implante existente)."
    )
    embedded = BooleanFilter(
        field_name="embedded_at",
        lookup_expr="isnull",
        exclude=True,
        help_text="Só as já indexadas para a busca (true) ou só as pendentes (false).",
    )

    class Meta:
        model = ReferenceImage
        fields = ["implant", "embedded"]


class ManufacturerViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    queryset = Manufacturer.objects.order_by("name")
    serializer_class = ManufacturerSerializer
    filterset_class = ManufacturerFilter
    permission_classes = [CatalogPermission]
    lookup_value_regex = r"\d+"  # ids only: anything else is a 404, not a failed query

    def perform_create(self, serializer):
        serializer.instance = services.manufacturer_save(manufacturer=Manufacturer(**serializer.validated_data))

    def perform_update(self, serializer):
        manufacturer = serializer.instance
        for key, value in serializer.validated_data.items():
            setattr(manufacturer, key, value)
        services.manufacturer_save(manufacturer=manufacturer)


class ImplantViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    serializer_class = ImplantSerializer
    filterset_class = ImplantFilter
    permission_classes = [CatalogPermission]
    lookup_value_regex = r"\d+"  # ids only: anything else is a 404, not a failed query
    queryset = Implant.objects.none()  # for the permission class's model lookup

    def get_queryset(self):
        from django.db.models import Count

        qs = Implant.objects.select_related("manufacturer").annotate(_images=Count("reference_images"))
        return qs.order_by("manufacturer__name", "name")

    def perform_create(self, serializer):
        serializer.instance = services.implant_save(implant=Implant(**serializer.validated_data))
        serializer.instance._images = 0

    def perform_update(self, serializer):
        implant = serializer.instance
        data = dict(serializer.validated_data)
        is_active = data.pop("is_active", None)
        for key, value in data.items():
            setattr(implant, key, value)
        services.implant_save(implant=implant)
        if is_active is not None and is_active != implant.is_active:
            # Deactivation through its service: the implant leaves results at once.
            services.implant_set_active(implant=implant, is_active=is_active)

    @extend_schema(responses=ReferenceImageSerializer(many=True))
    @action(detail=True, methods=["get"], url_path="images")
    def images(self, request: Request, pk: str | None = None) -> Response:
        references = catalog_images().filter(implant=self.get_object())
        return Response(ReferenceImageSerializer(references, many=True, context={"request": request}).data)


class ReferenceImageViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, viewsets.GenericViewSet
):
    """Catalogue reference images; ``POST`` (multipart: ``implant``, ``file``) adds one and queues its
    embedding."""

    queryset = ReferenceImage.objects.none()  # for the permission class's model lookup
    serializer_class = ReferenceImageSerializer
    filterset_class = ReferenceImageFilter
    permission_classes = [CatalogPermission]
    lookup_value_regex = r"\d+"  # ids only: anything else is a 404, not a failed query
    parser_classes = [MultiPartParser, FormParser]
    throttle_scope = "images"

    def get_queryset(self):
        return catalog_images().select_related("implant")

    def get_throttles(self):
        # Only uploads are throttled; reading the catalogue is not.
        return super().get_throttles() if self.request.method == "POST" else []

    @extend_schema(
        request={
            "multipart/form-data": inline_serializer(
                "ReferenceImageUpload",
                {"implant": serializers.IntegerField(), "file": serializers.FileField()},
            )
        },
        responses={201: ReferenceImageSerializer},
    )
    def create(self, request: Request, *args, **kwargs) -> Response:
        implant_id = str(request.data.get("implant", ""))
        if not implant_id.isdigit():
            raise ApplicationError("Informe o implante (id).", field="implant")
        implant = Implant.objects.filter(pk=int(implant_id)).first()
        if implant is None:
            raise ApplicationError("Implante não encontrado.", field="implant", status=404, code="not_found")
        upload = request.FILES.get("file")
        if upload is None:
            raise ApplicationError("Envie a imagem no campo 'file'.", field="file", code="missing_file")
        data = upload.read()
        # The cheap header check names the API field; the service decodes the image (pixels only).
        inspect_image(data, field="file")
        reference = services.reference_image_create(implant=implant, image_bytes=data, filename=upload.name or "")
        return Response(
            ReferenceImageSerializer(reference, context={"request": request}).data, status=status.HTTP_201_CREATED
        )
