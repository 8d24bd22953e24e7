"""The public REST API: fraud scores, customer profiles, the models served, and a forced reload."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Request
from fastapi.exceptions import RequestValidationError

from inference.auth import AUTH_ERRORS, require_scope
from inference.config import ServingConfig
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
    ReasonCode,
    ScoreRequest,
    Segment,
    Transaction,
)

_ERRORS = {
    **AUTH_ERRORS,
    400: {"model": ErrorResponse, "description": "The body is not valid JSON"},
    422: {"model": ErrorResponse, "description": "The request does not match the schema"},
    503: {"model": ErrorResponse, "description": "No champion model loaded"},
}


def check_dates(config: ServingConfig, txns: list[Transaction], field: str) -> None:
    """422 (as a schema error) for a transaction dated before `config.ts_earliest` or later than now +
    `config.ts_future_seconds` (local times: the margin also absorbs the world's time-zone offsets)."""
    earliest = datetime.combine(config.ts_earliest, datetime.min.time())
    latest = datetime.now(UTC).replace(tzinfo=None) + timedelta(seconds=config.ts_future_seconds)
    errors = [
        {
            "loc": ("body", field, i, "ts") if field == "transactions" else ("body", field, "ts"),
            "msg": f"must lie between {earliest:%Y-%m-%d} and {config.ts_future_seconds:g} s from now",
            "type": "value_error",
        }
        for i, t in enumerate(txns)
        if not earliest <= t.ts <= latest
    ]
    if errors:
        raise RequestValidationError(errors)


def _score(
    request: Request, config: ServingConfig, txns: list[Transaction], record: bool
) -> list[FraudScore]:
    serving = request.app.state.serving
    model = serving.holders[config.fraud_model].current  # one version for the whole request
    rows = [t.as_row() for t in txns]
    feature_rows = serving.card_features.features(rows, record=record)
    inputs = encode_rows(model, feature_rows) if model.one_hot else encode(model, feature_rows)
    scores = score_frame(model, inputs, config.reason_codes)
    threshold = decision_threshold(model, config.fraud_threshold)
    return [
        FraudScore(
            txn_id=t.txn_id,
            probability=s.probability,
            decision="alert" if s.probability >= threshold else "pass",
            threshold=threshold,
            reasons=[ReasonCode(feature=f, contribution=c) for f, c in s.reasons],
            model=model.name,
            model_version=model.version,
        )
        for t, s in zip(txns, scores, strict=True)
    ]


def public_router(config: ServingConfig) -> APIRouter:
    router = APIRouter(prefix="/v1", responses=_ERRORS)

    @router.post(
        "/fraud/score",
        tags=["fraud"],
        summary="Score one transaction",
        response_model=FraudScore,
        dependencies=[Depends(require_scope("fraud:score"))],
        responses={409: {"model": ErrorResponse, "description": "Recorded event older than the card's last"}},
    )
    def score(body: ScoreRequest, request: Request) -> FraudScore:
        check_dates(config, [body.transaction], "transaction")
        return _score(request, config, [body.transaction], body.record_event)[0]

    @router.post(
        "/fraud/score:batch",
        tags=["fraud"],
        summary="Score several transactions (in order)",
        response_model=BatchScoreResponse,
        dependencies=[Depends(require_scope("fraud:score"))],
        responses={409: {"model": ErrorResponse, "description": "Recorded event older than the card's last"}},
    )
    def score_batch(body: BatchScoreRequest, request: Request) -> BatchScoreResponse:
        if len(body.transactions) > config.max_batch:
            raise HTTPException(422, f"at most {config.max_batch} transactions per batch")
        check_dates(config, body.transactions, "transactions")
        return BatchScoreResponse(scores=_score(request, config, body.transactions, body.record_events))

    @router.get(
        "/customers/{token}/profile",
        tags=["customers"],
        summary="A customer's segment and 12-month value",
        response_model=CustomerProfile,
        dependencies=[Depends(require_scope("customers:read"))],
        responses={404: {"model": ErrorResponse, "description": "No features for this customer"}},
    )
    def profile(
        token: Annotated[str, Path(pattern=USER_TOKEN, description="The customer's `usr_` token")],
        request: Request,
    ) -> CustomerProfile:
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
    def models(request: Request) -> ModelsResponse:
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

    return router
