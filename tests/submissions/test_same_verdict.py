"""The same values get the same verdict on every route that takes an X-ray.

Each row of ``CASES`` is sent to every route — Jotform's real webhook (rawRequest), the old plain
form on /jotform, the webhook as JSON and as multipart, the upload page, ``/upload``,
``/api/match/`` and crop & re-match (whose answers are the original's, so only the rows about
them apply) — and each must accept it or refuse it alike: same error code, same message, the
field named as that client sent it, and for a refusal nothing stored (no row, no file).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import quote

import pytest
from django.contrib.auth.models import User
from django.core.cache import cache
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.test import Client
from django.urls import reverse
from rest_framework.authtoken.models import Token

from submissions.models import Source, Submission
from testkit.images import xray_file
from testkit.payloads import jotform_payload, plain_form, replace_part
from tests.builders.storage import storage_keys

pytestmark = pytest.mark.django_db

IMAGE = xray_file((300, 300))
JOTFORM_UPLOAD = "https://www.jotform.com/uploads/drsouza/231234567890123/5812345678901234567/"
VALID = {"nome": "Dra. Ana Souza", "email": "ana@example.com", "paciente": "João", "dente": "36", "file": "rx.png"}


@dataclass(frozen=True)
class Case:
    changes: dict[str, str]
    refused: tuple[str, str] | None = None  # (field as the client named it, code)
    stored_filename: str = "rx.png"


CASES: dict[str, Case] = {
    "valid": Case({}),
    "name-with-control-character": Case({"nome": "Dr\u0007X"}, ("nome", "control_characters")),
    "name-with-bidi-override": Case({"nome": "Dr\u202eX"}, ("nome", "control_characters")),
    "name-201-characters": Case({"nome": "A" * 201}, ("nome", "too_long")),
    "bad-email": Case({"email": "ana(at)example.com"}, ("email", "invalid_email")),
    **{
        f"tooth-{tooth}": Case({"dente": tooth}, ("dente", "invalid_tooth"))
        for tooth in ("58", "88", "19", "00", "5 5", "56")
    },
    # Digits, but not ASCII ones: no FDI tooth.
    "tooth-arabic-indic-digits": Case({"dente": "\u0663\u0666"}, ("dente", "invalid_tooth")),
    "tooth-55-deciduous": Case({"dente": "55"}),
    "tooth-85-deciduous": Case({"dente": "85"}),
    "file-name-with-dot-dot": Case({"file": "../../etc/rx.png"}),
    "file-name-with-nul": Case({"file": "r\x00x.png"}),
}


@dataclass(frozen=True)
class Outcome:
    accepted: bool
    field: str | None = None  # None where the route shows a message only (crop)
    code: str | None = None  # None where the route shows no code (the upload page, crop)
    message: str | None = None


def _json_outcome(response) -> Outcome:
    body = response.json()
    if 200 <= response.status_code < 300:
        return Outcome(True)
    assert 400 <= response.status_code < 500, (response.status_code, body)
    assert set(body) == {"error", "field", "code"}
    return Outcome(False, body["field"], body["code"], body["error"])


def _multipart(values: dict[str, str]) -> tuple[bytes, str]:
    """The old form's multipart body (what the upload page, /upload, /api/match/ and /jotform's
    plain form send), file name byte for byte as given: a browser or curl can send ``../``."""
    return plain_form(
        IMAGE,
        nome=values["nome"].encode(),
        email=values["email"].encode(),
        paciente=values["paciente"].encode(),
        dente=values["dente"].encode(),
        filename=values["file"].encode(),
    )


def _part(body: bytes, name: str) -> bytes:
    marker = f'Content-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
    start = body.index(marker) + len(marker)
    return body[start : body.index(b"\r\n--", start)]


def jotform_raw_request(client: Client, values: dict[str, str]) -> Outcome:
    body, content_type = jotform_payload()
    answers = json.loads(_part(body, "rawRequest"))
    answers.update(
        q3_nome={"first": values["nome"], "last": ""},
        q4_email=values["email"],
        q5_paciente=values["paciente"],
        q6_dente=values["dente"],
        file=[JOTFORM_UPLOAD + quote(values["file"], safe="")],
    )
    body = replace_part(body, "rawRequest", json.dumps(answers).encode())
    return _json_outcome(client.generic("POST", "/jotform", body, content_type=content_type))


def jotform_plain_form(client: Client, values: dict[str, str]) -> Outcome:
    return _json_outcome(client.generic("POST", "/jotform", *_multipart(values)))


def webhook_json(client: Client, values: dict[str, str]) -> Outcome:
    payload = {
        "nome": values["nome"],
        "email": values["email"],
        "paciente": values["paciente"],
        "dente": values["dente"],
        "file": base64.b64encode(IMAGE).decode(),
        "filename": values["file"],
    }
    return _json_outcome(client.generic("POST", "/webhook", json.dumps(payload), content_type="application/json"))


def webhook_multipart(client: Client, values: dict[str, str]) -> Outcome:
    return _json_outcome(client.generic("POST", "/webhook", *_multipart(values)))


def upload_page(client: Client, values: dict[str, str]) -> Outcome:
    body, content_type = _multipart(values)
    response = client.generic("POST", "/enviar/", body, content_type=content_type, HTTP_ACCEPT="application/json")
    if response.status_code == 201:
        return Outcome(True)
    assert response.status_code == 400, response.content
    errors = response.json()["errors"]
    assert len(errors) == 1, errors
    field, messages = next(iter(errors.items()))
    return Outcome(False, field, None, messages[0])


def legacy_upload(client: Client, values: dict[str, str]) -> Outcome:
    return _json_outcome(client.generic("POST", "/upload", *_multipart(values)))


def api_match(client: Client, values: dict[str, str]) -> Outcome:
    user = User.objects.create_user("cliente-api", "cliente@example.com", "x-pass-123")
    token = Token.objects.create(user=user).key
    body, content_type = _multipart(values)
    response = client.generic(
        "POST", "/api/match/", body, content_type=content_type, HTTP_AUTHORIZATION=f"Token {token}"
    )
    return _json_outcome(response)


def crop(client: Client, values: dict[str, str]) -> Outcome:
    """Crop & re-match of an X-ray whose answers were stored before these rules (a row written
    directly, as the old system's imported rows are): the new region goes through the same spec."""
    parent = Submission.objects.create(
        source=Source.UPLOAD,
        dentist_name=values["nome"],
        dentist_email=values["email"],
        patient=values["paciente"],
        tooth=values["dente"],
        image=default_storage.save("uploads/parent.png", ContentFile(IMAGE)),
    )
    response = client.post(
        reverse("submissions:crop", args=[parent.token]), {"x": 10, "y": 10, "width": 200, "height": 200}
    )
    assert response.status_code == 302
    child = Submission.objects.filter(parent=parent).first()
    if child is not None:
        return Outcome(True)
    page = client.get(response["Location"])
    messages = [str(m) for m in page.context["messages"]]
    assert len(messages) == 1, messages
    return Outcome(False, None, None, messages[0])


Route = Callable[[Client, dict[str, str]], Outcome]
ROUTES: dict[str, Route] = {
    "jotform-rawRequest": jotform_raw_request,
    "jotform-plain-form": jotform_plain_form,
    "webhook-json": webhook_json,
    "webhook-multipart": webhook_multipart,
    "upload-page": upload_page,
    "upload": legacy_upload,
    "api-match": api_match,
    "crop": crop,
}
# Crop sends no file name of its own ("recorte.png") and its answers come from a stored row, whose
# columns cannot hold a 201-character name or a 3-character tooth.
NOT_APPLICABLE = {
    ("crop", case) for case in ("name-201-characters", "tooth-5 5", "file-name-with-dot-dot", "file-name-with-nul")
}


@pytest.fixture(autouse=True)
def _intake_settings(settings):
    settings.JOTFORM_FILE_HOSTS = ["www.jotform.com"]
    settings.RAIOX_WEBHOOK_FILE_HOSTS = []
    settings.RAIOX_UPLOAD_WAIT_SECONDS = 0  # no worker here: /upload and /api/match/ answer 202
    cache.clear()  # the API's throttle counts live in the default cache


@pytest.mark.parametrize("case", list(CASES))
def test_every_route_gives_the_same_verdict(case):
    expected = CASES[case]
    values = {**VALID, **expected.changes}
    outcomes: dict[str, Outcome] = {}
    for route, send in ROUTES.items():
        if (route, case) in NOT_APPLICABLE:
            continue
        rows_before, keys_before = set(Submission.objects.values_list("pk", flat=True)), storage_keys()
        outcome = outcomes[route] = send(Client(), values)
        new_rows = Submission.objects.exclude(pk__in=rows_before)
        if route == "crop":
            new_rows = new_rows.exclude(parent__isnull=True)  # the original the test itself stored

        assert outcome.accepted == (expected.refused is None), (route, outcome)
        if expected.refused is None:
            row = new_rows.get()
            assert (row.dentist_name, row.dentist_email, row.tooth) == (
                values["nome"],
                values["email"],
                values["dente"],
            )
            if route != "crop":
                assert row.original_filename == expected.stored_filename, route
        else:
            field, code = expected.refused
            assert outcome.field in (field, None), (route, outcome)
            assert outcome.code in (code, None), (route, outcome)
            assert not new_rows.exists(), route
            new_keys = set(storage_keys()) - set(keys_before)
            assert new_keys <= ({"uploads/parent.png"} if route == "crop" else set()), (route, new_keys)
        Submission.objects.all().delete()

    if expected.refused is not None:
        # One message for one refusal, whichever route it came by.
        assert len({o.message for o in outcomes.values()}) == 1, outcomes
