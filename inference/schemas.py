"""Request and response models of the public API (pydantic v2). Tokens only: no clear personal data."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

CARD_TOKEN = r"^crd_[a-z2-7]{26}$"
USER_TOKEN = r"^usr_[a-z2-7]{26}$"
TXN_ID = r"^[a-z2-7]{26}-[0-9]{1,12}$"  # the card token's keyed part + "-" + event_seq
AuthorisationError = Literal[
    "Bad CVV",
    "Bad Card Number",
    "Bad Expiration",
    "Bad PIN",
    "Bad Zipcode",
    "Insufficient Balance",
    "Technical Glitch",
]


class Transaction(BaseModel):
    """One protected transaction, shaped like a stream record (tokens, never clear identifiers)."""

    model_config = ConfigDict(extra="forbid")

    txn_id: str = Field(pattern=TXN_ID, description="Lake transaction id (keyed card part + event_seq).")
    user_token: str = Field(pattern=USER_TOKEN)
    card_token: str = Field(pattern=CARD_TOKEN)
    ts: datetime = Field(description="Local time of the transaction (naive, as in the lake).")
    amount_cents: int = Field(ge=-(10**10), le=10**10, description="Amount in cents; negative for a refund.")
    channel: Literal["swipe", "chip", "online"]
    merchant_id: int
    merchant_city: str | None = Field(None, max_length=64, description="Null or 'ONLINE' for online.")
    merchant_state: str | None = Field(None, max_length=64, description="US state code or country name.")
    zip: str | None = Field(None, pattern=r"^[0-9]{5}$", description="Merchant zip code (5 digits).")
    mcc: int = Field(ge=0, le=9999, description="Merchant category code.")
    errors: list[AuthorisationError] | None = Field(None, max_length=7, description="Authorisation errors.")

    def as_row(self) -> dict:
        """The stream/lake row the online features read (naive timestamp)."""
        row = self.model_dump()
        if row["ts"].tzinfo is not None:
            row["ts"] = row["ts"].replace(tzinfo=None)
        return row


class ScoreRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    transaction: Transaction = Field(
        description="Scored against the card's online state; the state is written only by the stream."
    )


class BatchScoreRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    transactions: list[Transaction] = Field(min_length=1, description="Scored in the order given.")


class ReasonCode(BaseModel):
    feature: str
    contribution: float = Field(description="SHAP contribution to the log-odds of fraud.")


class FraudScore(BaseModel):
    txn_id: str
    probability: float = Field(ge=0, le=1)
    decision: Literal["alert", "pass"]
    threshold: float
    reasons: list[ReasonCode] = Field(description="Features pushing the score up most, largest first.")
    model: str
    model_version: int


class BatchScoreResponse(BaseModel):
    scores: list[FraudScore]


class Segment(BaseModel):
    id: int
    name: str


class CustomerProfile(BaseModel):
    user_token: str
    as_of: datetime = Field(description="Cut-off of the feature row the profile is computed from.")
    segment: Segment
    clv_12m_cents: float = Field(description="Expected net spend over the next 12 months, in cents.")
    model_versions: dict[str, int]


class ModelInfo(BaseModel):
    name: str
    version: int | None = Field(description="The champion version served, or null when there is none.")
    kind: str | None
    features: int
    metrics: dict[str, float]


class ModelsResponse(BaseModel):
    models: list[ModelInfo]


class Invocation(BaseModel):
    predictions: list[float] | list[list[float]]
    reasons: list[list[ReasonCode]] | None = Field(
        None, description="Binary classifiers: each row's features pushing its score up most, largest first."
    )
    model: str
    model_version: int = Field(description="The registry version; 0 when the server does not know it.")


class ErrorDetail(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class ErrorResponse(BaseModel):
    detail: str | list[ErrorDetail]
