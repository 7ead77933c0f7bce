"""Schemathesis against our own /api/schema/: generated requests (valid and invalid) to every
operation, sent through the Django WSGI app with a superuser's token, never get a server error."""

from __future__ import annotations

import pytest
import schemathesis
from django.contrib.auth.models import User
from django.core import signals
from django.core.cache import cache
from django.db import close_old_connections
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from rest_framework.authtoken.models import Token
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

pytestmark = pytest.mark.django_db

EXAMPLES_PER_OPERATION = 15


@pytest.fixture
def keep_test_connection():
    """The WSGI handler closes the database connection after each request, which would end the
    test's transaction; Django's own test client unhooks it the same way."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def quiet_api(settings, monkeypatch):
    from rest_framework.throttling import ScopedRateThrottle

    settings.RAIOX_UPLOAD_WAIT_SECONDS = 0  # /upload and /api/match answer 202 at once (no worker)
    monkeypatch.setattr(ScopedRateThrottle, "THROTTLE_RATES", {"images": "100000/minute"})
    cache.clear()
    yield
    cache.clear()


def test_no_server_errors(catalog, keep_test_connection, quiet_api):
    from raiox.wsgi import application

    user = User.objects.create_superuser("schemathesis", "st@example.com", "x-pass-123")
    headers = {"Authorization": f"Token {Token.objects.create(user=user).key}"}
    schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", application)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 20

    failures: list[str] = []
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, suppress_health_check=list(HealthCheck))
            def run(case):
                response = case.call(headers=headers)
                case.validate_response(response, checks=[not_a_server_error])

            try:
                run()
            except Unsatisfiable:
                assert mode == GenerationMode.NEGATIVE  # no parameters: there is no invalid request to make
            except Exception as exc:  # collect every operation's failure, then report them all
                failures.append(f"{operation.label} [{mode.value}]: {str(exc)[:1500]}")
    assert not failures, "\n\n".join(failures)
