"""Fixtures of the matching tests: a real `manage.py qcluster` worker process on the test database
(``tests.builders.worker``; the embedded seed catalogue: ``tests.builders.fixtures``)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest

from tests.builders.worker import running_qcluster


@pytest.fixture
def qcluster(transactional_db, tmp_path) -> Iterator[subprocess.Popen]:
    """A real django-q2 worker polling an idle queue every 50 ms."""
    with running_qcluster(tmp_path / "qcluster.log", RAIOX_Q_POLL="0.05") as proc:
        yield proc
