"""Production settings: check --deploy is clean with deploy/env.example; the refusals fire."""

from __future__ import annotations

import re

import pytest
from django.conf import settings

from tests.ops.helpers import ROOT, env_example, manage


def real_looking(env: dict[str, str]) -> dict[str, str]:
    """The example's "replace-me-…" placeholders replaced by random values, as an operator does."""
    import secrets

    return {k: secrets.token_urlsafe(48) if "replace-me" in v else v for k, v in env.items()}


@pytest.fixture(scope="module")
def example_env() -> dict[str, str]:
    # Production requires DATABASE_URL: point it at the embedded server the tests already run.
    return {**env_example(), "DATABASE_URL": settings.DATABASE_URL}


@pytest.fixture(scope="module")
def production_env(example_env) -> dict[str, str]:
    return real_looking(example_env)


def test_check_deploy_is_clean_with_the_example_environment_once_its_secrets_are_set(production_env):
    result = manage(["check", "--deploy", "--fail-level", "WARNING"], production_env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_production_refuses_untrained_weights(production_env):
    result = manage(["check"], {**production_env, "RAIOX_ALLOW_UNTRAINED_MODEL": "1"})
    assert result.returncode != 0
    assert "raiox.E001" in result.stderr


def test_production_requires_both_webhook_tokens(production_env):
    """Issue 13: a warning was not enough (the default left /webhook open); now an error, even at
    the default fail level."""
    for name, check_id in (("JOTFORM_WEBHOOK_TOKEN", "raiox.E003"), ("RAIOX_WEBHOOK_TOKEN", "raiox.E004")):
        env = {k: v for k, v in production_env.items() if k != name}
        result = manage(["check", "--deploy"], env)
        assert result.returncode != 0, name
        assert check_id in result.stderr and name in result.stderr


def test_production_refuses_the_example_placeholder_secrets(example_env):
    result = manage(["check", "--deploy"], example_env)
    assert result.returncode != 0
    refused = {line.split(" still reads")[0].split()[-1] for line in result.stderr.splitlines() if "raiox.E005" in line}
    assert {"SECRET_KEY", "RAIOX_CLIENT_ID_KEY", "JOTFORM_WEBHOOK_TOKEN", "RAIOX_WEBHOOK_TOKEN"} <= refused
    assert "RAIOX_METRICS_TOKEN" in refused


def test_worker_refuses_to_start_without_weights(tmp_path):
    env = {"RAIOX_ALLOW_UNTRAINED_MODEL": "0", "RAIOX_CLIP_CACHE_DIR": str(tmp_path / "empty-cache")}
    result = manage(["qcluster"], env, timeout=120)
    assert result.returncode != 0
    assert "raiox.E002" in result.stderr
    assert "RAIOX_ALLOW_UNTRAINED_MODEL=1" in result.stderr


def variables_read_by_settings() -> set[str]:
    """The environment variables the settings package (raiox/settings/*.py) reads."""
    source = "\n".join(path.read_text() for path in sorted((ROOT / "raiox" / "settings").glob("*.py")))
    read = set(re.findall(r"""env(?:_bool|_int|_float|_list|_rate)?\(\s*["']([A-Z0-9_]+)["']""", source))
    read |= set(re.findall(r"""os\.environ(?:\.get\(|\[)\s*["']([A-Z0-9_]+)["']""", source))
    assert read, "no settings found: the pattern no longer matches raiox/settings/"
    return read


def test_env_example_lists_every_setting():
    documented = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", (ROOT / "deploy" / "env.example").read_text(), re.M))
    assert sorted(variables_read_by_settings() - documented) == []


def test_every_raiox_variable_the_deploy_docs_name_is_read_by_settings():
    # The other way round: an operator who sets a RAIOX_* variable that deploy/ (env.example, the
    # README, the units) tells of must not be setting something nothing reads. A name ending in "_"
    # is a prefix ("RAIOX_RATE_LIMIT_*"), not a variable.
    named = {
        name
        for path in (ROOT / "deploy").rglob("*")
        if path.is_file() and path.suffix != ".json"
        for name in re.findall(r"\bRAIOX_[A-Z0-9_]*[A-Z0-9]\b", path.read_text())
    }
    assert "RAIOX_MAX_UPLOAD_BYTES" in named, "the pattern no longer finds the deploy docs' variables"
    assert sorted(named - variables_read_by_settings()) == []


def test_cors_answers_only_configured_origins(client, settings):
    settings.CORS_ALLOWED_ORIGINS = ["https://raiox.example.com"]
    allowed = client.get("/healthcheck", HTTP_ORIGIN="https://raiox.example.com")
    assert allowed["Access-Control-Allow-Origin"] == "https://raiox.example.com"
    other = client.get("/healthcheck", HTTP_ORIGIN="https://evil.example.net")
    assert "Access-Control-Allow-Origin" not in other


def test_pages_carry_a_self_only_content_security_policy(client):
    response = client.get("/admin/login/")
    policy = response["Content-Security-Policy"]
    directives = dict(part.strip().split(" ", 1) for part in policy.split(";") if part.strip())
    assert directives["script-src"] == "'self'"
    assert directives["style-src"] == "'self'"
    assert "'unsafe-inline'" not in policy
    assert directives["frame-ancestors"] == "'none'"
    # The upload page previews the chosen file from a local object URL.
    assert "blob:" in directives["img-src"].split()


def test_swagger_ui_may_style_inline_but_never_run_inline_scripts(client):
    policy = client.get("/docs")["Content-Security-Policy"]
    directives = dict(part.strip().split(" ", 1) for part in policy.split(";") if part.strip())
    assert directives["script-src"] == "'self'"
    assert "'unsafe-inline'" in directives["style-src"].split()


def test_admin_login_locks_out_after_repeated_failures(client, admin_user):
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        response = client.post("/admin/login/", {"username": "admin", "password": "wrong"})
        assert response.status_code == 200  # the form again, with its error
    response = client.post("/admin/login/", {"username": "admin", "password": "wrong"})
    assert response.status_code == 429  # the limit reached: locked out
    # Now even the right password is refused for this username and address.
    response = client.post("/admin/login/?next=/admin/", {"username": "admin", "password": "password"})
    assert response.status_code == 429
    assert "_auth_user_id" not in client.session
    assert client.get("/admin/").status_code == 302


def test_admin_login_still_works_below_the_limit(client, admin_user):
    client.post("/admin/login/", {"username": "admin", "password": "wrong"})
    response = client.post("/admin/login/?next=/admin/", {"username": "admin", "password": "password"})
    assert response.status_code == 302
    assert client.get("/admin/").status_code == 200
