"""What one evaluation run gives, typed: ``Summary`` (one model on one set) and its parts, each a
frozen dataclass whose ``as_json`` is the shape report.json and ``EvaluationReport.summary`` have
always stored (``{"models": [summary, ...]}``; the row leaves the per-query ``results`` out) and
whose ``from_json`` reads it back, reports stored before issue 20 and 21 too (their missing
sections are empty or None).
"""

from __future__ import annotations

import types
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar, Self, Union, get_args, get_origin, get_type_hints


def _to_json(value: Any) -> Any:
    if isinstance(value, JsonRecord):
        return value.as_json()
    if isinstance(value, list | tuple):
        return [_to_json(v) for v in value]
    if isinstance(value, dict):
        return {k: _to_json(v) for k, v in value.items()}
    return value


def _from_json(hint: Any, value: Any) -> Any:
    if value is None:
        return None
    origin, args = get_origin(hint), get_args(hint)
    if origin in (Union, types.UnionType):
        return _from_json(next(a for a in args if a is not type(None)), value)
    if isinstance(hint, type) and issubclass(hint, JsonRecord):
        return hint.from_json(value)
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_from_json(args[0], v) for v in value)
        return tuple(_from_json(a, v) for a, v in zip(args, value, strict=True))
    if origin is list:
        return [_from_json(args[0], v) for v in value]
    if origin is dict and args:
        return {k: _from_json(args[1], v) for k, v in value.items()}
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


class JsonRecord:
    """``as_json``/``from_json`` for a dataclass of JSON values, records, tuples, lists, dicts and
    ``X | None`` (read from its type hints). ``JSON_NAMES``: the stored key of a field named
    otherwise; a key missing from the stored dict takes the field's default."""

    JSON_NAMES: ClassVar[dict[str, str]] = {}

    def as_json(self) -> dict:
        return {self.JSON_NAMES.get(f.name, f.name): _to_json(getattr(self, f.name)) for f in fields(self)}  # type: ignore[arg-type]

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Self:
        hints = get_type_hints(cls)
        kwargs = {}
        for f in fields(cls):  # type: ignore[arg-type]
            key = cls.JSON_NAMES.get(f.name, f.name)
            if key in data:
                kwargs[f.name] = _from_json(hints[f.name], data[key])
        return cls(**kwargs)


@dataclass
class QueryResult(JsonRecord):
    source: str  # file path, "referência #12", "envio #7" (never patient data)
    truth_id: int
    hits: list[tuple[int, float]]  # (implant id, similarity), best first
    embed_ms: float
    search_ms: float
    condition: str = ""  # the generated film's condition (lower, upper, crown, panoramic, phone)
    found: bool = True  # False: the finder found no fixture where the truth has one (counted wrong)

    @property
    def rank(self) -> int | None:
        for i, (implant_id, _) in enumerate(self.hits, 1):
            if implant_id == self.truth_id:
                return i
        return None

    @property
    def top1(self) -> tuple[int, float] | None:
        return self.hits[0] if self.hits else None

    def as_json(self) -> dict:
        return super().as_json() | {"rank": self.rank}


@dataclass(frozen=True)
class ManufacturerFigures(JsonRecord):
    queries: int
    top1: float
    top5: float


@dataclass(frozen=True)
class Hubness(JsonRecord):
    """How unevenly the first answers spread over the catalogue (``figures.hubness``)."""

    top_share: float
    skewness: float
    implants_never_first: int


@dataclass(frozen=True)
class ConditionFigures(JsonRecord):
    queries: int
    fixture_found: float
    top1: float
    top3: float
    hubness: Hubness


@dataclass(frozen=True)
class ConfusedPair(JsonRecord):
    truth: str  # "<manufacturer> <implant>"
    predicted: str
    count: int


@dataclass(frozen=True)
class Share(JsonRecord):
    """First answers with a label or in a band, and the share of them right (None: no answer)."""

    queries: int
    right: float | None


@dataclass(frozen=True)
class SimilarityFigures(JsonRecord):
    """The raw similarity read as the probability: its ECE, and the share right per similarity label."""

    ece: float | None
    bands: dict[str, Share]


@dataclass(frozen=True)
class Assessment(JsonRecord):
    """``matching.calibration.assess``: a calibration's figures on a set."""

    queries: int
    ece: float | None
    mean_probability: float | None
    top1: float | None
    bands: dict[str, Share]


@dataclass(frozen=True, kw_only=True)
class CalibratedFigures(JsonRecord):
    """The figures of the model's active ``matching.Calibration`` on the set (``assess``, stored
    flat beside which calibration it was)."""

    calibration_id: int
    fitted_on: str
    params: dict[str, Any]  # the calibration's stored params and cutoffs, as matching.calibration reads them
    cutoffs: dict[str, Any]
    queries: int
    ece: float | None
    mean_probability: float | None
    top1: float | None
    bands: dict[str, Share]
    per_condition: dict[str, Assessment] = field(default_factory=dict)
    method: str = ""  # the calibration's method (matching.calibration.METHODS; "" in reports from before it)


@dataclass(frozen=True)
class NoMatchFigures(JsonRecord):
    """The queries below ``RAIOX_MIN_SIMILARITY`` ("no convincing match") and the right answers they hide."""

    min_similarity: float
    queries: int
    share: float
    hid_right_top1: int
    hid_right_in_top5: int


@dataclass(frozen=True)
class Latency(JsonRecord):  # milliseconds
    embed_p50: float
    embed_p95: float
    search_p50: float
    search_p95: float
    total_p50: float


@dataclass(frozen=True)
class SimilarityBin(JsonRecord):
    """One of the ten bins of the first candidate's similarity (the calibration table)."""

    JSON_NAMES: ClassVar[dict[str, str]] = {"low": "from", "high": "to"}

    low: float
    high: float
    queries: int
    right: float


@dataclass(frozen=True)
class ThresholdChoice(JsonRecord):
    similarity: float
    margin: float
    coverage: float
    precision: float


@dataclass(frozen=True)
class Suggested(JsonRecord):
    """Cut-offs read from the measured calibration (``figures.suggest_thresholds``)."""

    basis: int
    min_similarity: float | None = None
    note: str = ""  # why there is no min_similarity (stored only then)
    high: ThresholdChoice | None = None
    medium: ThresholdChoice | None = None

    def as_json(self) -> dict:
        out = super().as_json()
        if not self.note:
            del out["note"]
        return out


@dataclass(frozen=True)
class Thresholds(JsonRecord):
    """The settings in force during the run (stored by setting name)."""

    JSON_NAMES: ClassVar[dict[str, str]] = {
        "min_similarity": "RAIOX_MIN_SIMILARITY",
        "high_similarity": "RAIOX_CONFIDENCE_HIGH_SIMILARITY",
        "high_margin": "RAIOX_CONFIDENCE_HIGH_MARGIN",
        "medium_similarity": "RAIOX_CONFIDENCE_MEDIUM_SIMILARITY",
        "medium_margin": "RAIOX_CONFIDENCE_MEDIUM_MARGIN",
    }

    min_similarity: float
    high_similarity: float
    high_margin: float
    medium_similarity: float
    medium_margin: float


@dataclass(frozen=True, kw_only=True)
class Summary(JsonRecord):
    """Every figure of one model on one labelled set (``figures.summarise``)."""

    model_id: str
    untrained: bool
    dataset: str
    queries: int
    implants: int
    top1: float
    top3: float
    top5: float
    per_manufacturer: dict[str, ManufacturerFigures]
    per_condition: dict[str, ConditionFigures] = field(default_factory=dict)  # generated films only
    hubness: Hubness | None = None  # None: stored before issue 20
    confused_pairs: tuple[ConfusedPair, ...]
    confidence_labels: dict[str, Share]  # "alta", "media", "baixa"
    similarity_as_probability: SimilarityFigures | None = None  # None: stored before issue 21
    calibrated: CalibratedFigures | None = None  # None: no active calibration
    no_convincing_match: NoMatchFigures
    latency_ms: Latency
    calibration: tuple[SimilarityBin, ...]
    similarity_right: tuple[float, ...]
    similarity_wrong: tuple[float, ...]
    suggested: Suggested
    current: Thresholds
    results: tuple[QueryResult, ...] = ()  # per query: in report.json, not in the stored row

    def as_json(self, *, with_results: bool = True) -> dict:
        out = super().as_json()
        if not with_results:
            del out["results"]
        return out


def stored_summaries(summary: Mapping[str, Any]) -> list[Summary]:
    """The summaries of an ``EvaluationReport.summary`` (or a report.json): the running model first."""
    return [Summary.from_json(model) for model in summary.get("models", [])]
