"""Fixtures of the back-office tests: the API schema as served. (Staff roles, people and their API
tokens: ``tests.builders.fixtures``; submissions with known timestamps: ``tests.builders.submissions``.)"""

from __future__ import annotations

import pytest


@pytest.fixture
def openapi(client) -> dict:
    """/api/schema/ as served (what /docs shows)."""
    response = client.get("/api/schema/?format=json")
    assert response.status_code == 200
    return response.json()
