"""Request bodies byte-for-byte like the real senders', built from the captured wire formats in
``tests/submissions/fixtures`` (CRLF line ends, the same parts in the same order, the same boundary).

- Jotform's webhook: text parts only; answers in ``rawRequest`` (JSON with ``q<N>_`` keys and
  Jotform's ``\\/`` escaping), the upload as a URL on Jotform's file host; ``webhookURL`` echoes
  our token, as Jotform does.
- The old plain form: the answers as fields and the X-ray's bytes as the ``file`` part.

``JotformBodies``/``PlainFormBodies`` make many bodies fast (the benches); ``jotform_payload``,
``plain_form`` and the part editors change one recorded delivery (the tests).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "submissions" / "fixtures"
FORM_ID = "231234567890123"
JOTFORM_UPLOAD = "https:\\/\\/www.jotform.com\\/uploads\\/drsouza\\/231234567890123\\/5812345678901234567\\/"
JOTFORM_SUBMISSION_ID = "5812345678901234567"
PART_NAME = re.compile(rb'name="([^"]+)"')


def _parts(raw: bytes) -> tuple[bytes, list[tuple[str, bytes]]]:
    boundary = raw.split(b"\r\n", 1)[0]
    parts = []
    for chunk in raw.split(boundary)[1:-1]:
        head, _, value = chunk.removeprefix(b"\r\n").partition(b"\r\n\r\n")
        name = PART_NAME.search(head)
        assert name is not None, head
        parts.append((name.group(1).decode(), value.removesuffix(b"\r\n")))
    return boundary, parts


class JotformBodies:
    """Jotform webhook bodies for any submissionID, pointing at an image on ``file_host``."""

    def __init__(self, *, file_host: str, token: str) -> None:
        raw = (FIXTURES / "jotform_webhook.multipart").read_bytes()
        self.boundary, self.parts = _parts(raw)
        self.answers = json.loads(dict(self.parts)["rawRequest"])
        self.file_host = file_host
        self.token = token
        self.content_type = f"multipart/form-data; boundary={self.boundary[2:].decode()}"

    def body(self, submission_id: str, image_name: str, n: int) -> bytes:
        url = f"http://{self.file_host}/uploads/drsouza/{FORM_ID}/{submission_id}/{image_name}"
        answers = {
            **self.answers,
            "q3_nome": {"first": "Ana", "last": f"Souza {n}"},
            "q4_email": f"dentista{n % 50}@example.com",
            "q5_paciente": f"Paciente {n}",
            "q6_dente": "36",
            "temp_upload": {"q7_file": [f"{image_name}#jotformfs-{n:010x}"]},
            "event_id": f"1716204568001_{FORM_ID}_{n:07d}",
            "file": [url],
        }
        values = {
            "submissionID": submission_id,
            "formID": FORM_ID,
            # Jotform escapes '/' in rawRequest; keep the wire format exact.
            "rawRequest": json.dumps(answers, separators=(",", ":")).replace("/", "\\/"),
            "webhookURL": f"https://raiox.example.com/jotform?token={self.token}",
            "pretty": f"Nome:Ana Souza {n}, E-mail:dentista{n % 50}@example.com, Paciente:Paciente {n}, "
            f"Dente:36, Radiografia:{image_name}",
        }
        out = []
        for name, value in self.parts:
            data = values[name].encode() if name in values else value
            out.append(self.boundary + b'\r\nContent-Disposition: form-data; name="' + name.encode() + b'"\r\n\r\n')
            out.append(data + b"\r\n")
        out.append(self.boundary + b"--\r\n")
        return b"".join(out)


class PlainFormBodies:
    """The old form's body with the X-ray's bytes in the request."""

    def __init__(self) -> None:
        raw = (FIXTURES / "plain_form.multipart").read_bytes()
        self.boundary = raw.split(b"\r\n", 1)[0]
        self.template = raw
        self.content_type = f"multipart/form-data; boundary={self.boundary[2:].decode()}"

    def body(self, image: bytes, image_name: str) -> bytes:
        mime = b"image/png" if image_name.endswith(".png") else b"image/jpeg"
        head, tail = self.template.split(b"@@FILE_BYTES@@")
        head = head.replace(b'filename="radiografia.png"', f'filename="{image_name}"'.encode())
        head = head.replace(b"Content-Type: image/png", b"Content-Type: " + mime)
        return head + image + tail


def _boundary(body: bytes) -> str:
    return body.split(b"\r\n", 1)[0][2:].decode()


def load_multipart(name: str) -> tuple[bytes, str]:
    body = (FIXTURES / name).read_bytes()
    return body, f"multipart/form-data; boundary={_boundary(body)}"


def jotform_payload(
    *, upload_base: str | None = None, submission_id: str | None = None, name: str = "jotform_webhook.multipart"
) -> tuple[bytes, str]:
    """The recorded Jotform delivery, its upload URL pointed at ``upload_base`` (e.g. the local host)."""
    body, content_type = load_multipart(name)
    if upload_base is not None:
        body = body.replace(JOTFORM_UPLOAD.encode(), upload_base.replace("/", "\\/").encode())
    if submission_id is not None:
        body = body.replace(JOTFORM_SUBMISSION_ID.encode(), submission_id.encode())
    return body, content_type


def replace_part(body: bytes, name: str, value: bytes) -> bytes:
    """Replace the value of one text part of a multipart body."""
    marker = f'Content-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
    start = body.index(marker) + len(marker)
    end = body.index(b"\r\n--", start)
    return body[:start] + value + body[end:]


def remove_part(body: bytes, name: str) -> bytes:
    boundary = body.split(b"\r\n", 1)[0]
    parts = body.split(boundary + b"\r\n")
    kept = [p for p in parts if f'name="{name}"'.encode() not in p.split(b"\r\n", 1)[0]]
    return (boundary + b"\r\n").join(kept)


def plain_form(file_bytes: bytes, **overrides: bytes) -> tuple[bytes, str]:
    body, content_type = load_multipart("plain_form.multipart")
    body = body.replace(b"@@FILE_BYTES@@", file_bytes)
    for key, value in overrides.items():
        if key == "filename":
            body = body.replace(b'filename="radiografia.png"', b'filename="' + value + b'"')
        elif value is None:
            body = remove_part(body, key)
        else:
            body = replace_part(body, key, value)
    return body, content_type
