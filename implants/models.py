"""The implant catalogue: manufacturers, their implant systems and reference images.

Writes go through ``implants.services``; nothing here has logic in ``save()``.
"""

from __future__ import annotations

from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.utils.translation import gettext_lazy as _
from pgvector.django import HnswIndex, VectorField

# Read from here by the API, import/export and admin; kept Django-free in implants/description.py
# because the seed catalogue (imported by benches without Django set up) reads it too.
from implants.description import IMPLANT_DESCRIPTION_FIELDS  # noqa: F401
from kernel.storage_keys import reference_image_key
from kernel.text import validate_plain_text

EMBEDDING_DIMENSIONS = 512


class Manufacturer(models.Model):
    # Names follow the one text rule (kernel.text): no control or bidi characters; the services trim.
    name = models.CharField(_("nome"), max_length=120, unique=True, validators=[validate_plain_text])
    slug = models.SlugField(_("slug"), max_length=120, unique=True)
    country = models.CharField(_("país"), max_length=80, blank=True)
    website = models.URLField(_("site"), blank=True)
    created_at = models.DateTimeField(_("criado em"), auto_now_add=True)
    updated_at = models.DateTimeField(_("atualizado em"), auto_now=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("fabricante")
        verbose_name_plural = _("fabricantes")

    def __str__(self) -> str:
        return self.name


class Connection(models.TextChoices):
    EXTERNAL_HEX = "external_hex", _("hexágono externo")
    INTERNAL_HEX = "internal_hex", _("hexágono interno")
    MORSE_TAPER = "morse_taper", _("cone Morse / cônica")
    OTHER = "other", _("outra")


class BodyShape(models.TextChoices):
    TAPERED = "tapered", _("cônico")
    PARALLEL = "parallel", _("cilíndrico (paredes paralelas)")


class Level(models.TextChoices):
    BONE = "bone", _("nível ósseo")
    TISSUE = "tissue", _("nível tecidual")


class ThreadShape(models.TextChoices):
    V = "v", _("rosca em V")
    BUTTRESS = "buttress", _("rosca trapezoidal (buttress)")
    REVERSE_BUTTRESS = "reverse_buttress", _("rosca trapezoidal invertida")
    SQUARE = "square", _("rosca quadrada")


class Apex(models.TextChoices):
    FLAT = "flat", _("plano")
    ROUNDED = "rounded", _("arredondado")
    POINTED = "pointed", _("pontiagudo")


class Collar(models.TextChoices):
    MACHINED = "machined", _("liso (usinado)")
    MICROTHREAD = "microthread", _("com microrroscas")
    ROUGH = "rough", _("tratado")


class Implant(models.Model):
    manufacturer = models.ForeignKey(
        Manufacturer, on_delete=models.PROTECT, related_name="implants", verbose_name=_("fabricante")
    )
    name = models.CharField(_("nome"), max_length=160, validators=[validate_plain_text])
    connection = models.CharField(_("conexão"), max_length=20, choices=Connection.choices)
    body_shape = models.CharField(_("formato do corpo"), max_length=20, choices=BodyShape.choices)
    level = models.CharField(_("nível"), max_length=20, choices=Level.choices, default=Level.BONE)
    thread_shape = models.CharField(_("formato da rosca"), max_length=20, choices=ThreadShape.choices)
    apex = models.CharField(_("ápice"), max_length=20, choices=Apex.choices, blank=True)
    collar = models.CharField(_("colar"), max_length=20, choices=Collar.choices, blank=True)
    platform_switching = models.BooleanField(_("platform switching"), default=False)
    diameters_mm = ArrayField(
        models.DecimalField(max_digits=4, decimal_places=2),
        verbose_name=_("diâmetros (mm)"),
        default=list,
        blank=True,
    )
    lengths_mm = ArrayField(
        models.DecimalField(max_digits=4, decimal_places=1),
        verbose_name=_("comprimentos (mm)"),
        default=list,
        blank=True,
    )
    screwdriver = models.CharField(_("chave protética compatível"), max_length=200, blank=True)
    notes = models.TextField(_("observações"), blank=True)
    is_active = models.BooleanField(
        _("ativo"), default=True, help_text=_("Implantes inativos não aparecem nos resultados.")
    )
    # The old system's row id (``implants.id``): a re-run of import_legacy finds the implant again.
    legacy_id = models.PositiveIntegerField(
        _("id no sistema antigo"), null=True, blank=True, unique=True, editable=False
    )
    # The old free-text ``type`` column, kept as it was next to the fields it was mapped to.
    legacy_type = models.CharField(_("tipo no sistema antigo"), max_length=255, blank=True)
    created_at = models.DateTimeField(_("criado em"), auto_now_add=True)
    updated_at = models.DateTimeField(_("atualizado em"), auto_now=True)

    class Meta:
        ordering = ["manufacturer__name", "name"]
        verbose_name = _("implante")
        verbose_name_plural = _("implantes")
        constraints = [models.UniqueConstraint(fields=["manufacturer", "name"], name="implant_unique_per_manufacturer")]

    def __str__(self) -> str:
        return f"{self.manufacturer.name} {self.name}"


# The features a dentist can read on an X-ray ("refine by what you see"), each with the values it
# may take: the Implant fields above and their choices. The result page offers them, the refine
# service validates against them and the search filters on them.
REFINE_FIELDS: dict[str, type[models.TextChoices]] = {
    "connection": Connection,
    "body_shape": BodyShape,
    "level": Level,
    "thread_shape": ThreadShape,
}


class ReferenceSource(models.TextChoices):
    CATALOG = "catalog", _("catálogo")
    CONFIRMED_CASE = "confirmed_case", _("caso confirmado")
    IMPORTED = "imported", _("importada do sistema antigo")


class ReferenceImage(models.Model):
    implant = models.ForeignKey(
        Implant, on_delete=models.CASCADE, related_name="reference_images", verbose_name=_("implante")
    )
    image = models.ImageField(_("imagem"), upload_to=reference_image_key, max_length=255)
    source = models.CharField(
        _("origem"), max_length=20, choices=ReferenceSource.choices, default=ReferenceSource.CATALOG
    )
    # sha256 of the stored bytes: lets the worker reuse an embedding of identical content.
    content_hash = models.CharField(_("hash do conteúdo"), max_length=64, blank=True, db_index=True)
    # Empty until the worker computes it; only embeddings of the running model are searched.
    embedding = VectorField(dimensions=EMBEDDING_DIMENSIONS, null=True, blank=True, editable=False)
    embedding_model = models.CharField(_("modelo do embedding"), max_length=200, blank=True, editable=False)
    embedded_at = models.DateTimeField(_("embedding calculado em"), null=True, blank=True, editable=False)
    created_at = models.DateTimeField(_("criado em"), auto_now_add=True)
    updated_at = models.DateTimeField(_("atualizado em"), auto_now=True)

    class Meta:
        ordering = ["implant", "id"]
        verbose_name = _("imagem de referência")
        verbose_name_plural = _("imagens de referência")
        indexes = [
            HnswIndex(
                name="refimage_embedding_hnsw",
                fields=["embedding"],
                # Chosen by measurement (bench/search.py; bench/RESULTS.md, issue 15).
                m=16,
                ef_construction=128,
                opclasses=["vector_cosine_ops"],
            ),
            models.Index(fields=["embedding_model"], name="refimage_embedding_model_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.implant} #{self.pk}"


class LookalikeGroup(models.Model):
    """Implants that look alike on a radiograph (e.g. Straumann Bone Level and NobelParallel):
    when the result shows several of them, the page warns and lists what tells them apart
    (``submissions.results.confidence``), and never calls the match "alta"."""

    name = models.CharField(_("nome"), max_length=160, unique=True)
    implants = models.ManyToManyField(Implant, related_name="lookalike_groups", verbose_name=_("implantes"))
    notes = models.TextField(
        _("como diferenciar"), blank=True, help_text=_("Mostrado ao dentista junto do aviso (opcional).")
    )
    created_at = models.DateTimeField(_("criado em"), auto_now_add=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("grupo de implantes parecidos")
        verbose_name_plural = _("grupos de implantes parecidos")

    def __str__(self) -> str:
        return self.name
