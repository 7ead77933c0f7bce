from __future__ import annotations

import pytest

from testkit.images import bright_post_png
from tests.builders.submissions import submission_received

PATIENT = "Zebulom Quintanilha-Brandão"


@pytest.fixture
def make_submission(db):
    def make(*, source: str = "upload", patient: str = PATIENT, external_id: str = ""):
        return submission_received(
            source=source,
            dentist_name="Dra. Teste",
            dentist_email="dra.teste@example.com",
            patient=patient,
            image=bright_post_png(),
            filename="rx.png",
            external_id=external_id,
        )

    return make
