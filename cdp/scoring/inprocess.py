"""The embedded scoring endpoint: scores in this process with an injected `ChampionScorer`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from cdp.scoring.port import ChampionScorer, ScoredBatch


class InProcessEndpoint:
    """`ScoringEndpoint` over a champion scorer held in this process."""

    def __init__(self, scorer: ChampionScorer) -> None:
        self.scorer = scorer

    def score(self, feature_rows: Sequence[Mapping[str, Any]]) -> ScoredBatch:
        return self.scorer.score(feature_rows).checked(len(feature_rows), "in-process")

    def close(self) -> None:
        """Stop the scorer's background work."""
        self.scorer.close()
