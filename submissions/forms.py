"""The upload page's form: the same fields as the Jotform form (nome, email, paciente, dente, file).

The form only *renders* (labels, HTML limits, the camera capture); what is accepted is decided by
the intake specification, through the same adapter as ``/upload`` (``intake_from_form``), so the
page refuses exactly what every other route refuses, with the same messages. The image itself is
checked inside ``submission_create`` (one validation for every source); its errors come back on
``file``.
"""

from __future__ import annotations

from django import forms
from django.forms.utils import ErrorDict
from django.utils.translation import gettext_lazy as _

from implants.models import Implant
from kernel.errors import ApplicationError
from submissions import fields
from submissions.fields import IntakeRecord
from submissions.intake.fields import FORM_NAMES, client_names
from submissions.intake.form import PAGE_REQUIRED, intake_from_form
from submissions.models import Source
from submissions.validators import FDI_TOOTH_PATTERN


class UploadForm(forms.Form):
    nome = forms.CharField(label=_("Seu nome"), max_length=fields.NAME_LIMIT)
    email = forms.EmailField(
        label=_("Seu e-mail"),
        max_length=fields.EMAIL_LIMIT,
        help_text=_("Enviaremos o link do resultado para este endereço."),
    )
    paciente = forms.CharField(label=_("Paciente"), max_length=fields.PATIENT_LIMIT)
    dente = forms.CharField(
        label=_("Dente (notação FDI)"),
        max_length=2,
        help_text=_("Dois dígitos, por exemplo 36 ou 11."),
        widget=forms.TextInput(attrs={"inputmode": "numeric", "pattern": FDI_TOOTH_PATTERN, "autocomplete": "off"}),
    )
    file = forms.FileField(
        label=_("Radiografia"),
        help_text=_("JPEG, PNG, WebP, TIFF, BMP, HEIC ou DICOM."),
        widget=forms.ClearableFileInput(attrs={"accept": "image/*,.dcm,.heic", "capture": "environment"}),
    )

    intake: IntakeRecord | None = None

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.fields["nome"].widget.attrs["autocomplete"] = "name"
        self.fields["email"].widget.attrs["autocomplete"] = "email"
        self.fields["paciente"].widget.attrs["autocomplete"] = "off"

    def full_clean(self) -> None:
        """Validation is the spec's, not the form fields': every refusal shown next to its field."""
        self._errors = ErrorDict()
        self.cleaned_data = {}
        if not self.is_bound:
            return
        try:
            with client_names(FORM_NAMES):
                self.intake = intake_from_form(self.data, self.files, source=Source.UPLOAD, required=PAGE_REQUIRED)
        except ApplicationError as exc:
            for error in getattr(exc, "errors", [exc]):
                self.add_refusal(error)

    def add_refusal(self, exc: ApplicationError) -> None:
        """An intake or service refusal, whose ``field`` is already the form's name for it."""
        self.add_error(exc.field if exc.field in self.fields else None, exc.message)


class CropForm(forms.Form):
    x = forms.FloatField(min_value=0)
    y = forms.FloatField(min_value=0)
    width = forms.FloatField(min_value=1)
    height = forms.FloatField(min_value=1)
    # The implant's tooth (FDI), checked by the intake spec; empty: the film's tooth.
    tooth = forms.CharField(required=False, max_length=10)


class ThankYouQuery(forms.Form):
    """The query string of the Jotform thank-you redirect: ``sid``, Jotform's submission id (ASCII
    digits only; anything else shows the plain "recebido" page)."""

    sid = forms.RegexField(regex=r"\A[0-9]{1,30}\Z", max_length=30, strip=True)


class IdentifyForm(forms.Form):
    """The admin's "identificar o implante" page: a candidate's button or any active catalogue
    implant; with an open review request, also "not identifiable" and a note to the dentist."""

    implant = forms.ModelChoiceField(
        label=_("Implante do catálogo"),
        queryset=Implant.objects.filter(is_active=True).select_related("manufacturer"),
        required=False,
    )
    answer_note = forms.CharField(
        label=_("Nota ao dentista"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        max_length=1000,
    )
    # The page showed an open review request (see ``submission_identify``'s ``answering``).
    answering = forms.BooleanField(required=False, widget=forms.HiddenInput)

    def __init__(self, data=None, *, review_open: bool) -> None:
        if data is not None and data.get("candidate"):  # a candidate's button: that implant, whatever the list says
            data = data.copy()
            data["implant"] = data["candidate"]
        super().__init__(data, initial={"answering": review_open})
        self.review_open = review_open
        if not review_open:
            del self.fields["answer_note"]

    def clean(self) -> dict:
        data = super().clean()
        self.not_identifiable = self.review_open and "not_identifiable" in self.data
        if self.not_identifiable:
            data["implant"] = None
        elif data.get("implant") is None and "implant" not in self.errors:
            message = (
                _("Escolha o implante, ou responda “não identificável”.")
                if self.review_open
                else _("Escolha o implante.")
            )
            self.add_error("implant", message)
        return data
