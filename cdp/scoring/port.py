"""The scoring-endpoint port: a batch of online feature rows (dicts of the fraud view's raw features) in,
one score per row out, all from one model version.

Adapters: `cdp.scoring.inprocess.InProcessEndpoint` (a `ChampionScorer` in this process, given by the
caller: the model encoding lives above the data platform) and `cdp.scoring.sagemaker.SageMakerEndpoint`
(a SageMaker real-time endpoint serving the inference container).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

DEFAULT_THRESHOLD = 0.5  # the decision threshold when neither the settings nor the champion give one


@dataclass(frozen=True)
class Score:
    """One row's fraud probability and its top reason codes (feature, contribution), largest first."""

    probability: float
    reasons: list[tuple[str, float]]


@dataclass(frozen=True)
class ScoredBatch:
    """Scores of a batch of feature rows (input order), all from one model version."""

    model: str
    model_version: int
    threshold: float
    scores: list[Score]

    def checked(self, rows: int, source: str) -> ScoredBatch:
        """This batch if it holds one probability in [0, 1] per each of `rows` rows, else `EndpointError`
        naming `source` (never a value)."""
        if len(self.scores) != rows:
            raise EndpointError(f"endpoint {source} did not return one prediction per row")
        if not all(0.0 <= s.probability <= 1.0 for s in self.scores):
            raise EndpointError(f"endpoint {source} returned a probability outside [0, 1]")
        return self


class EndpointError(RuntimeError):
    """The endpoint answered with something other than one probability per row (names no values)."""


@runtime_checkable
class ScoringEndpoint(Protocol):
    """Scores online feature rows in one batch."""

    def score(self, feature_rows: Sequence[Mapping[str, Any]]) -> ScoredBatch:
        """One score per row, in order, from a single model version."""
        ...

    def close(self) -> None:
        """Stop any background work (a champion reload thread)."""
        ...


@runtime_checkable
class ChampionScorer(Protocol):
    """The champion model scoring in this process (what `InProcessEndpoint` delegates to)."""

    def score(self, feature_rows: Sequence[Mapping[str, Any]]) -> ScoredBatch:
        """One score per row, in order, from the champion version held now."""
        ...

    def close(self) -> None:
        """Stop any background work (a champion reload thread)."""
        ...
