"""The public REST API: fraud scores, customer profiles, the models served, a forced reload, and customers'
answers to fraud notices.

Fraud scores read the cards' online state and never write it (the stream records events). With no
fraud champion, or the champion failing, they come from the degraded rules (`"model": "rules"`)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Annotated

import anyio.to_thread
from fastapi import APIRouter, Depends, HTTPException, Path, Request
from fastapi.exceptions import RequestValidationError

from cdp.scoring.port import ScoredBatch
from inference.auth import AUTH_ERRORS, require_scope
from inference.config import ServingConfig
from inference.degraded import rules_batch
from inference.fraud_scoring import decision_threshold, encode, encode_rows, score_frame
from inference.schemas import (
    USER_TOKEN,
    BatchScoreRequest,
    BatchScoreResponse,
    CustomerProfile,
    ErrorResponse,
    FraudScore,
    ModelInfo,
    ModelsResponse,
    NoticeReply,
    NoticeReplyResult,
    ReasonCode,
    ScoreRequest,
    Segment,
    Transaction,
    batch_score_request,
)

log = logging.getLogger("cdp.inference.scoring")

_ERRORS = {
    **AUTH_ERRORS,
    400: {"model": ErrorResponse, "description": "The body is not valid JSON"},
    422: {"model": ErrorResponse, "description": "The request does not match the schema"},
    503: {"model": ErrorResponse, "description": "No champion model loaded"},
}


def _check_times(config: ServingConfig, txns: list[Transaction], field: str) -> None:
    """422 (a schema error naming the field, e.g. `body.transactions.1.ts`, never its value) when a
    transaction is dated outside the accepted window (`inference.event_window`)."""
    window = config.event_window()
    now = datetime.now(UTC).replace(tzinfo=None)
    errors = [
        {
            "loc": ("body", field, i, "ts") if field == "transactions" else ("body", field, "ts"),
            "msg": f"ts is {reason}",
            "type": "value_error",
        }
        for i, txn in enumerate(txns)
        if (reason := window.reason(txn.ts, now)) is not None
    ]
    if errors:
        raise RequestValidationError(errors)


def _model_scores(request: Request, config: ServingConfig, feature_rows: list[dict]) -> ScoredBatch | None:
    """The champion's scores, or None when there is no champion or it fails (degraded mode)."""
    model = request.app.state.serving.holders[config.fraud_model].loaded  # one version per request
    if model is None:
        return None
    try:
        inputs = encode_rows(model, feature_rows) if model.one_hot else encode(model, feature_rows)
        scores = score_frame(model, inputs, config.reason_codes)
    except Exception as error:  # the model failing must not fail the decision: the rules answer
        log.warning("fraud model %s v%s failed: %s", model.name, model.version, type(error).__name__)
        return None
    return ScoredBatch(model.name, model.version, decision_threshold(model, config.fraud_threshold), scores)


def _score(request: Request, config: ServingConfig, txns: list[Transaction]) -> list[FraudScore]:
    """Scores against the cards' online state (never written here: only the stream records events)."""
    serving = request.app.state.serving
    feature_rows = serving.card_features.features([t.as_row() for t in txns])
    batch = _model_scores(request, config, feature_rows)
    if batch is None:
        batch = rules_batch(feature_rows)
        serving.degraded.count(config.fraud_model, len(txns))
    return [
        FraudScore(
            txn_id=t.txn_id,
            probability=s.probability,
            decision="alert" if s.probability >= batch.threshold else "pass",
            threshold=batch.threshold,
            reasons=[ReasonCode(feature=f, contribution=c) for f, c in s.reasons],
            model=batch.model,
            model_version=batch.model_version,
        )
        for t, s in zip(txns, batch.scores, strict=True)
    ]


async def _score_off_loop(
    request: Request, config: ServingConfig, txns: list[Transaction], *, inline: bool = False
) -> list[FraudScore]:
    """`_score` from an async route. `inline` (one transaction): on the event loop when the online store
    reads in process and the cards' attributes are loaded: about half a millisecond of CPU, less than a
    hop to a worker thread and back (it may wait for a batch computing its features under the cards'
    lock, as a thread would). Otherwise in a worker thread (a remote store must never block the loop):
    one hop, where a sync route costs two (its call, then the check of its answer)."""
    serving = request.app.state.serving
    if inline and serving.features_in_process and serving.card_features.profiles_loaded:
        return _score(request, config, txns)
    return await anyio.to_thread.run_sync(_score, request, config, txns)


def public_router(config: ServingConfig) -> APIRouter:
    router = APIRouter(prefix="/v1", responses=_ERRORS)

    @router.post(
        "/fraud/score",
        tags=["fraud"],
        summary="Score one transaction",
        response_model=FraudScore,
        dependencies=[Depends(require_scope("fraud:score"))],
    )
    async def score(body: ScoreRequest, request: Request) -> FraudScore:
        _check_times(config, [body.transaction], "transaction")
        return (await _score_off_loop(request, config, [body.transaction], inline=True))[0]

    async def score_batch(body: BatchScoreRequest, request: Request) -> BatchScoreResponse:
        _check_times(config, body.transactions, "transactions")
        return BatchScoreResponse(scores=await _score_off_loop(request, config, body.transactions))

    # the request model carries the configured bound, so a longer list is refused before its items are
    # validated; set as an object, not a name, because the model is made here
    score_batch.__annotations__["body"] = batch_score_request(config.max_batch)
    router.post(
        "/fraud/score:batch",
        tags=["fraud"],
        summary="Score several transactions (in order)",
        response_model=BatchScoreResponse,
        dependencies=[Depends(require_scope("fraud:score"))],
    )(score_batch)

    @router.get(
        "/customers/{token}/profile",
        tags=["customers"],
        summary="A customer's segment and 12-month value",
        response_model=CustomerProfile,
        dependencies=[Depends(require_scope("customers:read"))],
        responses={404: {"model": ErrorResponse, "description": "No features for this customer"}},
    )
    async def profile(
        token: Annotated[str, Path(pattern=USER_TOKEN, description="The customer's `usr_` token")],
        request: Request,
    ) -> CustomerProfile:
        # async: a lookup in the profiles held in memory, so no worker thread (I/O-free, microseconds)
        found = request.app.state.serving.profiles.profile(token)
        if found is None:
            raise HTTPException(404, "no customer features for this token")
        return CustomerProfile(
            user_token=found.user_token,
            as_of=found.as_of,
            segment=Segment(id=found.segment_id, name=found.segment_name),
            clv_12m_cents=found.clv_12m_cents,
            model_versions=found.model_versions,
        )

    def _models(request: Request) -> ModelsResponse:
        out = []
        for name, holder in request.app.state.serving.holders.items():
            loaded = holder.loaded
            out.append(
                ModelInfo(
                    name=name,
                    version=loaded.version if loaded else None,
                    kind=loaded.kind if loaded else None,
                    features=len(loaded.features) if loaded else 0,
                    metrics=dict(loaded.metrics) if loaded else {},
                )
            )
        return ModelsResponse(models=out)

    @router.get(
        "/models",
        tags=["models"],
        summary="The champion versions being served",
        response_model=ModelsResponse,
        dependencies=[Depends(require_scope("models:read"))],
    )
    async def models(request: Request) -> ModelsResponse:  # the holders in memory: no worker thread
        return _models(request)

    @router.post(
        "/models/reload",
        tags=["models"],
        summary="Check the registry for new champions now (no restart, requests keep flowing)",
        response_model=ModelsResponse,
        dependencies=[Depends(require_scope("models:admin"))],
    )
    def reload(request: Request) -> ModelsResponse:
        request.app.state.serving.reload()
        return _models(request)

    @router.post(
        "/notices/reply",
        tags=["notices"],
        summary="Record a customer's answer to \"Was this you?\": a label for the notice's transactions",
        response_model=NoticeReplyResult,
        responses={404: {"model": ErrorResponse, "description": "No notice has that reply code"}},
        dependencies=[Depends(require_scope("notices:reply"))],
    )
    def notice_reply(body: NoticeReply, request: Request) -> NoticeReplyResult:
        from cdp.feedback.replies import ReplyBook

        backends = request.app.state.serving.backends
        result = ReplyBook.of(backends).answer(body.reply_code, body.answer)
        if result.status == "unknown-code":
            raise HTTPException(status_code=404, detail="no notice has that reply code")
        return NoticeReplyResult(status=result.status, transactions=result.transactions)

    return router
