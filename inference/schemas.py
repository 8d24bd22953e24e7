"""Request and response models of the public API (pydantic v2). Tokens only: no clear personal data.

Requests are strict: numbers must be JSON integers (no `true`, no `"12"`, no `12.0`), booleans JSON
booleans (no `"yes"`, no `1`), and `ts` an ISO 8601 date-time text without a time-zone offset: the lake
and the online features hold each transaction's local time, so an offset (or `Z`) is refused with 422
rather than dropped or converted. The accepted dates (a configurable window) are checked by the routes.

Local times are documented as pattern-matched text, not as OpenAPI's `date-time`: that format is RFC 3339,
whose date-times always carry an offset, so a client (or a fuzzer) following it would send only values the
API refuses, and read the profiles' `as_of` (served without an offset) as malformed.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictInt,
    WithJsonSchema,
    create_model,
)

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


INT64 = 2**63 - 1
_ISO_DATE_TIME = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}")


def _date_time_text(value: Any) -> Any:
    """Only ISO 8601 text (pydantic would also read numbers, and numeric text, as Unix times)."""
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not _ISO_DATE_TIME.match(value):
        raise ValueError("must be an ISO 8601 date-time text (YYYY-MM-DDTHH:MM[:SS])")
    return value


def _without_offset(value: datetime) -> datetime:
    if value.tzinfo is not None:
        raise ValueError("must be the transaction's local time, without a time-zone offset")
    return value


# what `LocalDateTime` reads (pydantic then refuses impossible days such as 02-30 with 422 too)
LOCAL_DATE_TIME_IN = (
    r"^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])[T ]([01][0-9]|2[0-3]):[0-5][0-9]"
    r"(:[0-5][0-9]([.,][0-9]+)?)?$"
)
LOCAL_DATE_TIME_OUT = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?$"  # as served

LocalDateTime = Annotated[
    datetime,
    BeforeValidator(_date_time_text),
    AfterValidator(_without_offset),
    WithJsonSchema({"type": "string", "pattern": LOCAL_DATE_TIME_IN}),
]
ServedLocalDateTime = Annotated[datetime, WithJsonSchema({"type": "string", "pattern": LOCAL_DATE_TIME_OUT})]


class Transaction(BaseModel):
    """One protected transaction, shaped like a stream record (tokens, never clear identifiers)."""

    model_config = ConfigDict(extra="forbid")

    txn_id: str = Field(pattern=TXN_ID, description="Lake transaction id (keyed card part + event_seq).")
    user_token: str = Field(pattern=USER_TOKEN)
    card_token: str = Field(pattern=CARD_TOKEN)
    ts: LocalDateTime = Field(
        description="Local time of the transaction, ISO 8601 without offset (naive, as in the lake)."
    )
    amount_cents: StrictInt = Field(
        ge=-(10**10), le=10**10, description="Amount in cents; negative for a refund."
    )
    channel: Literal["swipe", "chip", "online"]
    merchant_id: StrictInt = Field(ge=-INT64, le=INT64)
    merchant_city: str | None = Field(None, max_length=64, description="Null or 'ONLINE' for online.")
    merchant_state: str | None = Field(None, max_length=64, description="US state code or country name.")
    zip: str | None = Field(None, pattern=r"^[0-9]{5}$", description="Merchant zip code (5 digits).")
    mcc: StrictInt = Field(ge=0, le=9999, description="Merchant category code.")
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


def batch_score_request(max_batch: int) -> type[BatchScoreRequest]:
    """The batch request refusing more than `max_batch` transactions before validating any (one 422, not
    every field's error of a hundred thousand empty objects), its bound in the document as `maxItems`."""
    return create_model(
        "BatchScoreRequest",
        __base__=BatchScoreRequest,
        __module__=__name__,
        transactions=(
            list[Transaction],
            Field(min_length=1, max_length=max_batch, description="Scored in the order given."),
        ),
    )


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
    as_of: ServedLocalDateTime = Field(
        description="Cut-off of the feature row the profile is computed from (local time, no offset)."
    )
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


class NoticeReply(BaseModel):
    """A customer's answer to a fraud notice's "Was this you?", relayed by the bank's app."""

    model_config = ConfigDict(extra="forbid")

    reply_code: str = Field(
        pattern=r"^[A-HJ-NP-Z]{4}-[A-HJ-NP-Z]{4}$", description="The notice's reply code."
    )
    answer: Literal["me", "not-me"] = Field(
        description='"me": the customer made the payments; "not-me": fraud.'
    )


class NoticeReplyResult(BaseModel):
    status: Literal["recorded", "already-answered"] = Field(description="The first answer of a code wins.")
    transactions: int = Field(description="Transactions of the notice now labelled.")
