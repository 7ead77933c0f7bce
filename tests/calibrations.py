"""A stored, active calibration for tests: fixed parameters and cut-offs (``matching.calibration``),
activated through the service the admin uses."""

from __future__ import annotations

from matching.calibration import calibration_activate
from matching.canonical import PREPROCESS_VERSION
from matching.models import Calibration

RUNNING_MODEL = f"ViT-B-32/untrained-seed0+{PREPROCESS_VERSION}"


def active_calibration(
    model_id: str = RUNNING_MODEL,
    *,
    preprocess_version: str = PREPROCESS_VERSION,
    temperature: float = 0.01,
    rest: float = 0.0,
    k: int = 3,
    high: float | None = 0.0,
    medium: float | None = 0.0,
    no_match: float = 0.0,
    user=None,
    dataset: str = "conjunto de teste",
) -> Calibration:
    """By default every answer is "alta" (cut-offs at 0) and the rest term is negligible: a test
    that asserts "never alta" then shows that a rule, not the calibration, took it away."""
    calibration = Calibration.objects.create(
        model_id=model_id,
        preprocess_version=preprocess_version,
        method="softmax-temperature",
        params={"temperature": temperature, "rest": rest, "k": k},
        bands={"high": high, "medium": medium, "no_match": no_match},
        dataset=dataset,
        queries=100,
    )
    return calibration_activate(calibration_id=calibration.pk, user=user)
