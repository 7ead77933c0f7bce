"""Checking real requests and answers against /api/schema/ as served (jsonschema, strictly).

``check``: an answer's status is documented and its JSON is what the schema says (objects closed:
a key the schema does not document fails too). ``request_errors``: what a documented request body
refuses of a request (objects as documented: intake ignores keys it does not know); a multipart
part the schema encodes as JSON (``encoding: {contentType: application/json}``) is read as JSON
first, as OpenAPI says, and an uploaded file stands as a string (``format: binary``)."""

from __future__ import annotations

import json
from collections.abc import Mapping

from jsonschema import Draft202012Validator, FormatChecker


def json_schema(node: object, components: dict, *, close: bool = True) -> object:
    """OpenAPI 3.0 schema -> JSON Schema: refs inlined, ``nullable`` as a null type, and (``close``)
    objects closed (``additionalProperties: false``) so that an undocumented key fails."""
    if isinstance(node, list):
        return [json_schema(item, components, close=close) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        return json_schema(components[node["$ref"].rsplit("/", 1)[1]], components, close=close)
    out = {
        key: json_schema(value, components, close=close)
        for key, value in node.items()
        if key not in ("nullable", "readOnly")
    }
    if close and out.get("type") == "object" and "properties" in out:
        out.setdefault("additionalProperties", False)
    if node.get("nullable"):
        if "enum" in out:
            out["enum"] = [*out["enum"], None]
        return {"anyOf": [out, {"type": "null"}]}
    return out


def _errors(schema: object, instance: object) -> list[str]:
    validator = Draft202012Validator(schema, format_checker=FormatChecker())
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(instance)]


def check(openapi: dict, path: str, method: str, response) -> dict:
    """Validate one real answer against the schema of (path, method, status); returns its JSON."""
    documented = openapi["paths"][path][method]["responses"]
    assert str(response.status_code) in documented, f"{method.upper()} {path}: {response.status_code} undocumented"
    schema = documented[str(response.status_code)]["content"]["application/json"]["schema"]
    body = response.json()
    errors = _errors(json_schema(schema, openapi["components"]["schemas"]), body)
    assert not errors, f"{method.upper()} {path} {response.status_code}: {errors}"
    return body


def request_errors(openapi: dict, path: str, method: str, media_type: str, body: Mapping) -> list[str]:
    """What the documented ``media_type`` body of (path, method) refuses of ``body``."""
    content = openapi["paths"][path][method]["requestBody"]["content"]
    assert media_type in content, f"{method.upper()} {path}: {media_type} undocumented"
    entry = content[media_type]
    if media_type == "application/json":
        instance = dict(body)
    else:  # a form: every part is text, a file stands as its (binary) string
        instance = {key: value if isinstance(value, str) else "<arquivo>" for key, value in body.items()}
        for name, encoding in entry.get("encoding", {}).items():
            if encoding.get("contentType") == "application/json" and isinstance(instance.get(name), str):
                try:
                    instance[name] = json.loads(instance[name])
                except ValueError:
                    pass  # left as text: the schema refuses it
    return _errors(json_schema(entry["schema"], openapi["components"]["schemas"], close=False), instance)
