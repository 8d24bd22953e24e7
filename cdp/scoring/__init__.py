"""The scoring-endpoint port of the stream handler: online feature rows in, fraud scores out, in batches
(the champion in-process here, a SageMaker endpoint in AWS; `Backends.scoring_endpoint` picks one)."""

from __future__ import annotations

from cdp.scoring.port import ChampionScorer, EndpointError, Score, ScoredBatch, ScoringEndpoint

__all__ = ["ChampionScorer", "EndpointError", "Score", "ScoredBatch", "ScoringEndpoint"]
