"""The stream handler (the transform Lambda): Kinesis batches of protected transactions -> scored lake rows.

For each batch (`handler(event, context)`, an `aws:kinesis` event of base64 records):
1. every record is decoded by `aws-lambda-powertools`' `BatchProcessor`; a malformed record is reported
   in `batchItemFailures` (partial-batch response) and the others go on;
2. records whose `txn_id` the handler has already landed (a re-delivery) are dropped;
3. the online features of the rest are computed from the cards' stored state, once: the updated states
   wait in memory (`CardFeatures.features_pending`); the rows are scored in one call of the scoring
   endpoint, written to `transactions_scored` (with the feature view's version and the hash of each
   event's features) and, at or over the threshold, to `fraud_alerts`; when the fraud model has a
   challenger, the same feature rows are scored by it in shadow into `transactions_shadow` (never an
   alert, never a decision; a shadow failure only counts in `shadow_failed`);
4. their ids are claimed in the handler's idempotency index, the cards' online state is advanced (the waiting
   states are written when the cards' stored state has not changed since step 3, else the events are
   applied afresh), then the claims are marked applied.

Idempotency (as the lake sink): files are named after the shard and the sequence number of the batch's
first new record, so a batch re-delivered after a crash before step 4 rewrites the same files; ids claimed
in step 4 are never scored again, so re-delivery adds no rows. A crash between the claim and the state
advance leaves claims not marked applied: the re-delivered batch (the runner re-reads from the same
checkpoint) advances the cards with those events then, so the velocity features count every event exactly
once. An event older than its card's last recorded event is scored and landed but does not
move the card's state (`late_events` counts them).
Events dated outside the accepted window (`inference.event_window`: far in the future, or before the
platform's history) are not scored and never reach a card's state: they are written to `stream_quarantine`
with the reason and claimed, so re-delivery skips them (`quarantined` counts them).
With no fraud champion, or the scoring endpoint failing, the batch is scored by the degraded rules
(`inference.degraded`; rows carry model "rules", version 0) and counted in the `DegradedDecisions`
metric, instead of failing. If writing fails the whole invocation raises, so Kinesis (or the local runner)
retries it. Once a batch is landed, its event-to-alert latencies (arrival on the stream -> decision landed)
are published for the service-level objective (`inference.slo_metrics.EventLatencyMeter`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType
from aws_lambda_powertools.utilities.data_classes.kinesis_stream_event import KinesisStreamRecord

from cdp.idempotency.port import Claim, IdempotencyIndex
from cdp.lake.writer import LakeWriter
from cdp.scoring.port import ScoredBatch, ScoringEndpoint
from cdp.startup_objects import freeze_startup_objects
from cdp.streaming import records
from features.columns import epoch_seconds
from features.online import lake_card_profiles
from inference.card_features import CardFeatures, EventOrderError
from inference.degraded import DegradedDecisions, rules_batch
from inference.event_window import EventWindow
from inference.slo_metrics import EventLatencyMeter
from inference.streaming import scored
from inference.streaming.champion_scorer import FraudChampionScorer
from inference.streaming.shadow import TRANSACTIONS_SHADOW, ChallengerScorer, shadow_table

if TYPE_CHECKING:
    from cdp.backends import Backends

log = logging.getLogger("inference.streaming.handler")

IDEMPOTENCY_CONSUMER = "stream-handler"  # the handler's name in the idempotency index


class MalformedRecordError(ValueError):
    """A stream record is not a protected transaction (names the sequence number, never the data)."""


@dataclass
class HandlerReport:
    """Counts over every batch this handler has processed."""

    records: int = 0  # records received
    malformed: int = 0
    redelivered: int = 0  # records whose txn_id was already landed (or repeated in the batch)
    scored: int = 0
    alerts: int = 0
    late_events: int = 0  # scored, but older than the card's last event: the card's state is not moved
    recovered: int = 0  # landed events whose card state a crash left unapplied, applied on re-delivery
    quarantined: int = 0  # dated outside the accepted window: not scored, state untouched
    degraded: int = 0  # scored by the degraded rules (no champion, or the endpoint failing)
    shadow_scored: int = 0  # also scored by the challenger in shadow (recorded, never acted on)
    shadow_failed: int = 0  # the challenger could not score them: the batch went on without it
    batches: int = 0


def _decode(record: KinesisStreamRecord) -> dict[str, Any]:
    """The lake row of one Kinesis record, or `MalformedRecordError` naming its sequence number."""
    sequence = record.kinesis.sequence_number
    try:
        row = records.decode(record.kinesis.data_as_bytes())
        if not isinstance(row.get("txn_id"), str) or not isinstance(row.get("card_token"), str):
            raise TypeError("txn_id and card_token must be strings")
        return row
    except Exception as error:  # any decoding problem: the message must not echo the record's data
        raise MalformedRecordError(
            f"stream record {sequence}: not a protected transaction ({type(error).__name__})"
        ) from None


def _arrival(record: Mapping[str, Any]) -> float | None:
    """When the record arrived on the stream (epoch seconds), if the event says."""
    value = (record.get("kinesis") or {}).get("approximateArrivalTimestamp")
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


class StreamHandler:
    """A Lambda-signature callable: Kinesis event -> `{"batchItemFailures": [...]}`."""

    def __init__(
        self,
        endpoint: ScoringEndpoint,
        card_features: CardFeatures,
        writer: LakeWriter,
        index: IdempotencyIndex,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC).replace(tzinfo=None),
        window: EventWindow | None = None,
        degraded: DegradedDecisions | None = None,
        model_name: str = "cdp-fraud",
        latency: EventLatencyMeter | None = None,
        shadow: ChallengerScorer | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.shadow = shadow
        self.card_features = card_features
        self.writer = writer
        self.index = index
        self.clock = clock
        self.window = window or EventWindow()
        self.degraded = degraded or DegradedDecisions(None, flush_seconds=0)
        self.model_name = model_name  # the fraud model's registry name (the degraded metric's dimension)
        self.latency = latency
        self.report = HandlerReport()

    def __call__(self, event: Mapping[str, Any], context: Any = None) -> dict[str, list[dict[str, str]]]:
        batch = list(event.get("Records") or [])
        processor = BatchProcessor(
            event_type=EventType.KinesisDataStreams, raise_on_entire_batch_failure=False
        )
        with processor(records=batch, handler=_decode, lambda_context=context):
            outcomes = processor.process()
        decoded = [(raw, row) for status, row, raw in outcomes if status == "success"]
        self.report.batches += 1
        self.report.records += len(batch)
        self.report.malformed += len(batch) - len(decoded)
        self._enrich(decoded)
        return dict(processor.response())

    def close(self) -> None:
        """Stop the endpoint's background work (a champion reload thread). The idempotency index is left
        open: it belongs to whoever built it (`Backends` keeps one per consumer)."""
        self.endpoint.close()
        if self.shadow is not None:
            self.shadow.close()

    def _enrich(self, decoded: Sequence[tuple[Mapping[str, Any], dict[str, Any]]]) -> None:
        fresh: dict[str, tuple[Mapping[str, Any], dict[str, Any]]] = {}  # txn_id -> (event record, row)
        for raw, row in decoded:
            fresh.setdefault(row["txn_id"], (raw, row))
        claims = self.index.lookup(list(fresh))
        self._apply_unapplied(fresh, claims)
        for txn_id in claims:
            del fresh[txn_id]
        self.report.redelivered += len(decoded) - len(fresh)
        if not fresh:
            return
        first = next(iter(fresh.values()))[0]
        shard = str(first.get("eventID", "")).split(":", 1)[0] or "shard"
        suffix = f"{shard}-{first['kinesis']['sequenceNumber']}"
        name = f"scored-{suffix}"
        self._quarantine(fresh, f"quarantine-{suffix}")
        if not fresh:
            return
        rows = [row for _, row in fresh.values()]
        try:
            self._score_and_land(rows, list(fresh), name)
        finally:
            self.card_features.discard_pending()  # a no-op once the cards have advanced
        if self.latency is not None:
            self.latency.landed([_arrival(raw) for raw, _ in fresh.values()])

    def _score_and_land(self, rows: list[dict[str, Any]], txn_ids: list[str], name: str) -> None:
        """Steps 3 and 4 for the batch's new events (`rows`, ids `txn_ids`), files named `name`."""
        try:  # computed once, written by `_advance_cards` below
            features = self.card_features.features_pending(rows)
        except EventOrderError:  # a late event: score from the stored state, advance card by card below
            features = self.card_features.features(rows, record=False)
        result = self._scores(features)
        scored_at = self.clock()
        table = scored.scored_table(
            rows,
            features,
            [s.probability for s in result.scores],
            [s.reasons for s in result.scores],
            result.threshold,
            result.model,
            result.model_version,
            scored_at,
        )
        alerts = scored.alerts_table(table)
        self.writer.write_chunk(scored.TRANSACTIONS_SCORED, table, name)
        if alerts.num_rows:
            self.writer.write_chunk(scored.FRAUD_ALERTS, alerts, name)
        self._shadow(features, table, name, scored_at)
        taken = self.index.record(txn_ids, name)
        if taken:  # only with two consumers on one shard: the other one owns these events' state
            log.error("%d transactions of batch %s were claimed by another batch", len(taken), name)
        claimed = [row for row in rows if row["txn_id"] not in taken]
        self._advance_cards(claimed)
        self.index.mark_applied([row["txn_id"] for row in claimed], name)
        self.report.scored += len(rows)
        self.report.alerts += alerts.num_rows

    def _scores(self, features: list[dict[str, Any]]) -> ScoredBatch:
        """The endpoint's scores, or the degraded rules' when it cannot score (counted, logged by class)."""
        try:
            return self.endpoint.score(features)
        except Exception as error:
            log.warning(
                "scoring endpoint failed (%s): the degraded rules score the batch", type(error).__name__
            )
        self.report.degraded += len(features)
        self.degraded.count(self.model_name, len(features))
        return rules_batch(features)

    def _shadow(self, features: list[dict[str, Any]], table: Any, name: str, scored_at: datetime) -> None:
        """Score the batch's feature rows with the challenger, if any, into `transactions_shadow` (file
        `name`: a re-delivered batch rewrites it). Nothing here may stop or change the batch."""
        if self.shadow is None:
            return
        try:
            challenger = self.shadow.score(features)
            if challenger is None:
                return
            self.writer.write_chunk(TRANSACTIONS_SHADOW, shadow_table(table, challenger, scored_at), name)
        except Exception as error:
            self.report.shadow_failed += len(features)
            log.warning("shadow scoring failed (%s): the batch goes on without it", type(error).__name__)
            return
        self.report.shadow_scored += len(features)

    def _quarantine(self, fresh: dict[str, tuple[Mapping[str, Any], dict[str, Any]]], name: str) -> None:
        """Move the events dated outside the window from `fresh` to `stream_quarantine` (file `name`) and
        claim them, so a re-delivery drops them as already handled."""
        now = self.clock()
        refused = {t: r for t, (_, row) in fresh.items() if (r := self.window.reason(row["ts"], now))}
        if not refused:
            return
        rows = [fresh.pop(t)[1] for t in refused]
        self.writer.write_chunk(
            scored.STREAM_QUARANTINE, scored.quarantine_table(rows, list(refused.values()), now), name
        )
        self.index.record(list(refused), name)
        self.index.mark_applied(list(refused), name)
        self.report.quarantined += len(rows)
        log.warning("%d events dated outside the accepted window were quarantined (%s)", len(rows), name)

    def _apply_unapplied(
        self, batch: Mapping[str, tuple[Mapping[str, Any], dict[str, Any]]], claims: Mapping[str, Claim]
    ) -> None:
        """Advance the cards with claimed events whose batch crashed before it advanced them (in order)."""
        pending = [row for t, (_, row) in batch.items() if t in claims and not claims[t].applied]
        if not pending:
            return
        # A crash after the state advance but before the claims were marked leaves the state ahead of the
        # marks: the card's last event is then at or after these events, so only events strictly newer
        # than the card's last one are applied. (A tie to the second with the card's previous batch cannot
        # be told apart from an applied event: such an event stays out of the state.)
        last = self.card_features.last_event_epochs(r["card_token"] for r in pending)
        newer = [
            r
            for r in pending
            if last[r["card_token"]] is None or epoch_seconds(r["ts"]) > last[r["card_token"]]
        ]
        if newer:
            self._advance_cards(newer)
        by_batch: dict[str, list[str]] = {}
        for row in pending:
            by_batch.setdefault(claims[row["txn_id"]].batch, []).append(row["txn_id"])
        for name, txn_ids in by_batch.items():
            self.index.mark_applied(txn_ids, name)
        self.report.recovered += len(pending)

    def _advance_cards(self, rows: list[dict[str, Any]]) -> None:
        """Record the events in the cards' online state (the pending states when `rows` are the pending
        batch's and the stored state is unchanged); a card with a late event keeps its state."""
        try:
            self.card_features.features(rows, record=True)
            return
        except EventOrderError:
            pass
        by_card: dict[str, list[dict[str, Any]]] = {}
        for row in rows:
            by_card.setdefault(row["card_token"], []).append(row)
        for card_rows in by_card.values():
            try:
                self.card_features.features(card_rows, record=True)
            except EventOrderError:
                self.report.late_events += len(card_rows)
        if self.report.late_events:
            log.warning(
                "%d events older than their card's last event did not move its state", self.report.late_events
            )


def champion_scorer(backends: Backends) -> FraudChampionScorer:
    """The fraud champion scoring in this process, reloaded from the registry as the settings say."""
    from inference.config import ServingConfig
    from inference.holder import ModelHolder
    from inference.loaded import load_version

    config = ServingConfig.from_settings(backends.settings)

    def load(version):  # noqa: ANN001, ANN202 - a ModelVersion -> LoadedModel
        return load_version(version, backends.object_store)

    holder = ModelHolder(config.fraud_model, backends.model_registry, load, config.reload_seconds)
    holder.start()
    return FraudChampionScorer(holder, config.fraud_threshold, config.reason_codes)


def build_handler(
    backends: Backends,
    endpoint: ScoringEndpoint | None = None,
    index: IdempotencyIndex | None = None,
    shadow: ChallengerScorer | None = None,
) -> StreamHandler:
    """The handler over the platform's ports; by default it scores with `backends.scoring_endpoint` (the
    reloaded champion in-process here, the SageMaker endpoint in AWS) and keeps its claims in
    `backends.idempotency_index` (SQLite file here, DynamoDB in AWS). The fraud model's challenger, when
    it has one, is scored in shadow in this process (`shadow`, by default loaded from the registry).
    The first handler built in a process freezes the startup objects (`freeze_startup_objects`)."""
    settings = backends.settings
    if endpoint is None:
        endpoint = backends.scoring_endpoint(lambda: champion_scorer(backends))
    from inference.config import ServingConfig

    config = ServingConfig.from_settings(settings)
    bucket = settings.lake_bucket
    for table in (
        scored.TRANSACTIONS_SCORED,
        scored.FRAUD_ALERTS,
        scored.STREAM_QUARANTINE,
        TRANSACTIONS_SHADOW,
    ):
        backends.catalog.register_table(table.info(bucket))
    if shadow is None:
        from inference.streaming.shadow import challenger_scorer

        shadow = challenger_scorer(backends)
    handler = StreamHandler(
        endpoint=endpoint,
        card_features=CardFeatures(backends.online_store, lambda: lake_card_profiles(backends.catalog)),
        writer=LakeWriter(backends.object_store, bucket),
        index=index or backends.idempotency_index(IDEMPOTENCY_CONSUMER),
        window=config.event_window(),
        degraded=DegradedDecisions(lambda: backends.metrics, flush_seconds=0),
        model_name=config.fraud_model,
        latency=EventLatencyMeter(lambda: backends.metrics, settings.slo_event_to_alert_seconds),
        shadow=shadow,
    )
    freeze_startup_objects()
    return handler


_handler: StreamHandler | None = None


def lambda_handler(event: Mapping[str, Any], context: Any) -> dict[str, list[dict[str, str]]]:
    """The Lambda entry point: builds the handler once per container, then handles each event."""
    global _handler
    if _handler is None:
        from cdp.backends import Backends

        _handler = build_handler(Backends())
    return _handler(event, context)
