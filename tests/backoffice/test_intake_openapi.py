"""One schema for intake: real requests to ``POST /api/match/``, ``/upload``, ``/webhook`` and
``/jotform`` — accepted and refused — and each answer validated against /api/schema/ as served
(status documented, body strictly as documented), and each request against the documented body:
what the server accepts the schema accepts; what the server refuses by a field rule (the FDI
tooth, a limit, a control character, a missing field, too many regions...) the schema refuses
too; what only the image can tell (a region outside it, a file that is no picture) the schema
leaves to the server."""

from __future__ import annotations

import base64
import dataclasses
import io
import json
from urllib.parse import urlencode

import pytest
from django.core.cache import cache
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from submissions.models import Submission
from testkit.images import xray_png
from tests.openapi_check import check, request_errors

pytestmark = pytest.mark.django_db

XRAY = xray_png(7)
WIDTH, HEIGHT = Image.open(io.BytesIO(XRAY)).size
REGION = {"x": 0, "y": 0, "width": 80, "height": 80, "tooth": "46"}


def _file() -> SimpleUploadedFile:
    return SimpleUploadedFile("rx.png", XRAY, "image/png")


@dataclasses.dataclass
class Case:
    label: str
    data: dict
    status: int
    field: str | None = None  # the field the refusal names
    # A refusal by a rule the schema states: the documented body refuses the request too.
    # False: only the server can tell (the request is schema-valid). None: not a body matter.
    schema_refuses: bool | None = True
    media_type: str = "multipart/form-data"
    headers: dict = dataclasses.field(default_factory=dict)


def _send(client, path: str, case: Case):
    data = {k: (_file() if v is _file else v) for k, v in case.data.items()}
    if case.media_type == "application/json":
        return client.post(path, json.dumps(data), content_type="application/json", **case.headers)
    if case.media_type == "application/x-www-form-urlencoded":
        return client.post(path, urlencode(data), content_type=case.media_type, **case.headers)
    if case.media_type == "text/plain":
        return client.post(path, "nome=Ana", content_type="text/plain", **case.headers)
    return client.post(path, data, **case.headers)  # multipart


def exchange(client, openapi: dict, path: str, cases: list[Case]) -> list[dict]:
    """Send every case; check its answer and its request against the schema; return the answers."""
    answers = []
    for case in cases:
        response = _send(client, path, case)
        assert response.status_code == case.status, (case.label, response.status_code, response.content)
        body = check(openapi, path, "post", response)
        if case.field is not None:
            assert body["field"] == case.field, (case.label, body)
        if case.media_type != "text/plain":
            errors = request_errors(openapi, path, "post", case.media_type, case.data)
            if response.status_code < 300 or case.schema_refuses is False:
                assert errors == [], (case.label, errors)
            elif case.schema_refuses:
                assert errors, f"{case.label}: refused by the server ({body}), accepted by the schema"
        answers.append(body)
    return answers


@pytest.fixture
def intake(settings, django_capture_on_commit_callbacks):
    """No worker: /upload and /api/match/ answer 202 at once; tasks are queued, never run."""
    settings.RAIOX_UPLOAD_WAIT_SECONDS = 0
    settings.SITE_URL = "https://raiox.example.com"
    cache.clear()
    with django_capture_on_commit_callbacks(execute=False):
        yield
    cache.clear()


def _form_field_cases(route_has_regions: bool) -> list[Case]:
    """The old form's answers, accepted and refused, as /upload and /api/match/ take them."""
    cases = [
        Case("tudo certo", {"file": _file, "nome": "Dra. Ana", "email": "ana@example.com", "dente": "36"}, 202),
        Case("só o arquivo", {"file": _file}, 202),
        Case("decíduo 55, espaços nas pontas", {"file": _file, "dente": " 55 ", "nome": " Ana "}, 202),
        Case("dente 58 (quadrante 5 só vai a 5)", {"file": _file, "dente": "58"}, 400, "dente"),
        Case("dente 88", {"file": _file, "dente": "88"}, 400, "dente"),
        Case("dente 19", {"file": _file, "dente": "19"}, 400, "dente"),
        Case("dente 3 6", {"file": _file, "dente": "3 6"}, 400, "dente"),
        Case("nome longo demais", {"file": _file, "nome": "A" * 201}, 400, "nome"),
        Case("nome com caractere de controle", {"file": _file, "nome": "Ana\x07"}, 400, "nome"),
        Case("paciente com bidi", {"file": _file, "paciente": "Jo\u202eão"}, 400, "paciente"),
        Case("e-mail inválido", {"file": _file, "email": "ana.example.com"}, 400, "email"),
        Case("sem arquivo", {"nome": "Ana"}, 400, "file"),
        Case(
            "arquivo que não é imagem",
            {"file": SimpleUploadedFile("rx.png", b"not an image at all", "image/png")},
            400,
            "file",
            schema_refuses=False,
        ),
    ]
    if route_has_regions:
        two = [REGION, {**REGION, "x": WIDTH - 80, "tooth": "36"}]
        cases += [
            Case("duas regiões", {"file": _file, "regions": json.dumps(two)}, 202),
            Case(
                "regiões demais",
                {"file": _file, "regions": json.dumps([REGION] * 9)},
                400,
                "regions",
            ),
            Case(
                "região sem dente",
                {"file": _file, "regions": json.dumps([{k: v for k, v in REGION.items() if k != "tooth"}])},
                400,
                "regions",
            ),
            Case(
                "região com dente 88",
                {"file": _file, "regions": json.dumps([{**REGION, "tooth": "88"}])},
                400,
                "regions",
            ),
            Case("região pequena", {"file": _file, "regions": json.dumps([{**REGION, "width": 10}])}, 400, "regions"),
            Case(
                "região fora da imagem",
                {"file": _file, "regions": json.dumps([{**REGION, "x": WIDTH}])},
                400,
                "regions",
                schema_refuses=False,
            ),
            Case(
                "regiões sobrepostas",
                {"file": _file, "regions": json.dumps([REGION, {**REGION, "x": 10}])},
                400,
                "regions",
                schema_refuses=False,
            ),
        ]
    return cases


def test_match_api(client, people, openapi, intake):
    headers = people["plain"].headers
    cases = _form_field_cases(route_has_regions=True)
    for case in cases:
        case.headers = headers
    cases.append(Case("sem token", {"file": _file}, 401, schema_refuses=None))
    answers = exchange(client, openapi, "/api/match/", cases)
    with_regions = next(a for a, c in zip(answers, cases) if c.label == "duas regiões")
    assert [r["tooth"] for r in with_regions["regions"]] == ["46", "36"]


def test_upload(client, openapi, intake, settings):
    exchange(client, openapi, "/upload", _form_field_cases(route_has_regions=False))
    assert "regions" not in openapi["components"]["schemas"]["UploadForm"]["properties"]  # /upload takes none
    settings.RAIOX_RATE_LIMITS = {**settings.RAIOX_RATE_LIMITS, "intake": "1/m"}
    cache.clear()
    exchange(
        client,
        openapi,
        "/upload",
        [Case("primeiro", {"file": _file}, 202), Case("além do limite", {"file": _file}, 429, schema_refuses=None)],
    )


def test_webhook(client, openapi, intake, settings, upload_host):
    settings.RAIOX_WEBHOOK_TOKEN = "hook-secret"
    auth = {"HTTP_AUTHORIZATION": "Bearer hook-secret"}
    as_json = {"media_type": "application/json", "headers": auth}
    encoded = base64.b64encode(XRAY).decode()
    url = upload_host.serve("/imagens/rx.png", XRAY)
    answers = exchange(
        client,
        openapi,
        "/webhook",
        [
            Case(
                "JSON com base64",
                {"nome": "Ana", "email": "ana@example.com", "dente": 46, "id": "ext-1", "file": encoded},
                201,
                **as_json,
            ),
            Case(
                "o mesmo id, com token",
                {"nome": "Ana", "email": "ana@example.com", "id": "ext-1", "file": encoded},
                200,
                **as_json,
            ),
            Case("JSON com URL", {"nome": "Ana", "email": "ana@example.com", "image_url": url}, 201, **as_json),
            Case(
                "multipart com regiões",
                {"nome": "Ana", "email": "ana@example.com", "file": _file, "regions": json.dumps([REGION])},
                201,
                headers=auth,
            ),
            Case(
                "formulário urlencoded com URL",
                {"nome": "Ana", "email": "ana@example.com", "image_url": url, "id": "ext-2"},
                201,
                media_type="application/x-www-form-urlencoded",
                headers=auth,
            ),
            Case("sem e-mail", {"nome": "Ana", "file": encoded}, 400, "email", **as_json),
            Case(
                "dente 58",
                {"nome": "Ana", "email": "a@example.com", "dente": "58", "file": encoded},
                400,
                "dente",
                **as_json,
            ),
            Case(
                "dente 88 como número",
                {"nome": "Ana", "email": "a@example.com", "dente": 88, "file": encoded},
                400,
                "dente",
                **as_json,
            ),
            Case(
                "arquivo e URL",
                {"nome": "Ana", "email": "a@example.com", "file": encoded, "image_url": url},
                400,
                "image_url",
                **as_json,
            ),
            Case("nem arquivo nem URL", {"nome": "Ana", "email": "a@example.com"}, 400, "file", **as_json),
            Case(
                "id com espaço",
                {"nome": "Ana", "email": "a@example.com", "id": "a b", "file": encoded},
                400,
                "id",
                **as_json,
            ),
            Case(
                "nome com NUL", {"nome": "A\x00na", "email": "a@example.com", "file": encoded}, 400, "nome", **as_json
            ),
            Case(
                "regiões demais",
                {"nome": "Ana", "email": "a@example.com", "file": encoded, "regions": [REGION] * 9},
                400,
                "regions",
                **as_json,
            ),
            Case(
                "URL num servidor não permitido",
                {"nome": "Ana", "email": "a@example.com", "image_url": "https://elsewhere.example/x.png"},
                422,
                "image_url",
                schema_refuses=False,
                **as_json,
            ),
            Case("texto puro", {}, 415, schema_refuses=None, media_type="text/plain", headers=auth),
            Case(
                "token errado",
                {"nome": "Ana", "email": "a@example.com", "file": encoded},
                403,
                "token",
                schema_refuses=None,
                media_type="application/json",
                headers={"HTTP_AUTHORIZATION": "Bearer wrong"},
            ),
        ],
    )
    assert answers[1]["duplicate"] is True and answers[1]["token"] == answers[0]["token"]
    assert len(answers[3]["regions"]) == 1
    # A repeat from a sender without the token learns nothing (the 200's other shape).
    settings.RAIOX_WEBHOOK_TOKEN = ""
    again = {"nome": "Ana", "email": "ana@example.com", "id": "ext-1", "file": encoded}
    [repeat] = exchange(
        client, openapi, "/webhook", [Case("reenvio anônimo", again, 200, media_type="application/json")]
    )
    assert repeat == {"duplicate": True}


def _jotform(submission_id: str, url: str, **answers) -> dict:
    raw = {"q3_nome": {"first": "Ana", "last": "Souza"}, "q4_email": "ana@example.com", "file": [url], **answers}
    return {"formID": "241234567890", "submissionID": submission_id, "rawRequest": json.dumps(raw)}


def test_jotform(client, openapi, intake, settings, upload_host):
    url = upload_host.url("/uploads/rx.png")
    plain = {"nome": "Ana", "email": "ana@example.com", "dente": "36", "file": _file}
    exchange(
        client,
        openapi,
        "/jotform",
        [
            Case("entrega do Jotform", _jotform("5901234567890", url, q5_dente="36"), 201),
            Case("a mesma entrega de novo", _jotform("5901234567890", url), 200),
            Case("formulário antigo", plain, 201),
            Case(
                "sem submissionID",
                {k: v for k, v in _jotform("1", url).items() if k != "submissionID"},
                400,
                "submissionID",
            ),
            Case("submissionID inválido", _jotform("59 01", url), 400, "submissionID"),
            Case("formulário antigo sem e-mail", {k: v for k, v in plain.items() if k != "email"}, 400, "email"),
            Case("formulário antigo com dente 58", {**plain, "dente": "58"}, 400, "dente"),
            # rawRequest is a JSON text: its answers are the server's to judge.
            Case(
                "dente 58 no rawRequest",
                _jotform("5901234567891", url, q5_dente="58"),
                400,
                "dente",
                schema_refuses=False,
            ),
            Case(
                "arquivo fora do Jotform",
                _jotform("5901234567892", "https://elsewhere.example/x.png"),
                422,
                "file",
                schema_refuses=False,
            ),
        ],
    )
    assert "302" not in openapi["paths"]["/jotform"]["post"]["responses"]  # never sent
    settings.JOTFORM_WEBHOOK_TOKEN = "jf-secret"
    exchange(
        client,
        openapi,
        "/jotform",
        [Case("token errado", _jotform("5901234567893", url), 403, "token", schema_refuses=None)],
    )
    assert Submission.objects.filter(external_id="5901234567890").count() == 1
