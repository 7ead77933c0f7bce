"""The upload page's form: the same fields as the Jotform form (nome, email, paciente, dente, file).

The form checks presence and shape; the image itself is checked by ``validate_image`` inside
``submission_create`` (one validation for every source), whose errors come back on ``file``.
"""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.utils.translation import gettext_lazy as _

from submissions.validators import validate_fdi_tooth

# ApplicationError.field (service/model names) -> the form field shown to the dentist.
SERVICE_FIELD_TO_FORM = {
    "dentist_name": "nome",
    "dentist_email": "email",
    "patient": "paciente",
    "tooth": "dente",
    "file": "file",
    "image": "file",
}


class UploadForm(forms.Form):
    nome = forms.CharField(label=_("Seu nome"), max_length=200)
    email = forms.EmailField(
        label=_("Seu e-mail"), max_length=254, help_text=_("Enviaremos o link do resultado para este endereço.")
    )
    paciente = forms.CharField(label=_("Paciente"), max_length=200)
    dente = forms.CharField(
        label=_("Dente (notação FDI)"),
        max_length=2,
        validators=[validate_fdi_tooth],
        help_text=_("Dois dígitos, por exemplo 36 ou 11."),
        widget=forms.TextInput(attrs={"inputmode": "numeric", "pattern": "[1-8][1-8]", "autocomplete": "off"}),
    )
    file = forms.FileField(
        label=_("Radiografia"),
        help_text=_("JPEG, PNG, WebP, TIFF, BMP, HEIC ou DICOM."),
        widget=forms.ClearableFileInput(attrs={"accept": "image/*,.dcm,.heic", "capture": "environment"}),
    )

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.fields["nome"].widget.attrs["autocomplete"] = "name"
        self.fields["email"].widget.attrs["autocomplete"] = "email"
        self.fields["paciente"].widget.attrs["autocomplete"] = "off"

    def clean_file(self) -> object:
        upload = self.cleaned_data["file"]
        if upload.size > settings.RAIOX_MAX_UPLOAD_BYTES:
            raise forms.ValidationError(
                _("Arquivo muito grande: o limite é %(mb)d MB."),
                params={"mb": settings.RAIOX_MAX_UPLOAD_BYTES // 2**20},
            )
        return upload

    def add_service_error(self, field: str | None, message: str) -> None:
        self.add_error(SERVICE_FIELD_TO_FORM.get(field or "", None), message)


class CropForm(forms.Form):
    x = forms.FloatField(min_value=0)
    y = forms.FloatField(min_value=0)
    width = forms.FloatField(min_value=1)
    height = forms.FloatField(min_value=1)
