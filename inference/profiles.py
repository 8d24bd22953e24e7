"""Customer profiles: the customer's latest `customer_features` row scored by the CLV and segmentation
champions. Tokens, a segment name and a value only: no clear personal data."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd

from cdp.catalog.port import Catalog, CatalogError
from inference.holder import ModelHolder

CUSTOMER_FEATURES = "customer_features"
SPEND_BEFORE = "heuristic_last_12m"  # a CLV feature kept beside customer_features, computed here
_USER_TOKEN = re.compile(r"^usr_[a-z2-7]{26}$")

_SPEND_BEFORE_SQL = """
SELECT CAST(coalesce(sum(amount_cents), 0) AS BIGINT) AS spend
FROM transactions
WHERE user_token = '{token}' AND ts >= TIMESTAMP '{as_of}' - INTERVAL 12 MONTH AND ts < TIMESTAMP '{as_of}'
"""


class ProfileUnavailableError(RuntimeError):
    """The customer tables are not built (or a model input cannot be computed)."""


@dataclass(frozen=True)
class Profile:
    user_token: str
    as_of: datetime
    segment_id: int
    segment_name: str
    clv_12m_cents: float
    model_versions: dict[str, int]


class CustomerProfiles:
    """Profiles from the catalog's customer features and two model holders."""

    def __init__(self, catalog: Catalog, clv: ModelHolder, segmentation: ModelHolder) -> None:
        self.catalog = catalog
        self.clv = clv
        self.segmentation = segmentation

    def _latest_row(self, user_token: str) -> dict | None:
        try:
            rows = self.catalog.query(
                f"SELECT * FROM {CUSTOMER_FEATURES} WHERE user_token = '{user_token}' "
                "ORDER BY as_of DESC LIMIT 1"
            ).to_pylist()
        except CatalogError:
            raise ProfileUnavailableError("customer features are not built") from None
        return rows[0] if rows else None

    def _spend_before(self, user_token: str, as_of: datetime) -> int:
        sql = _SPEND_BEFORE_SQL.format(token=user_token, as_of=as_of.strftime("%Y-%m-%d %H:%M:%S"))
        try:
            return int(self.catalog.query(sql).to_pylist()[0]["spend"])
        except CatalogError:
            raise ProfileUnavailableError("transactions are not in the catalog") from None

    def profile(self, user_token: str) -> Profile | None:
        """The customer's profile, or None when the customer has no feature row."""
        if not _USER_TOKEN.match(user_token):
            raise ValueError("not a user token")
        clv, segmentation = self.clv.current, self.segmentation.current  # one version for the whole call
        row = self._latest_row(user_token)
        if row is None:
            return None
        as_of = row["as_of"]
        if SPEND_BEFORE in clv.features and SPEND_BEFORE not in row:
            row[SPEND_BEFORE] = self._spend_before(user_token, as_of)
        frame = pd.DataFrame([row])
        for model in (clv, segmentation):
            for name in model.features:
                if name not in frame.columns:
                    frame[name] = np.nan  # trees route missing values; centroids read them as 0
        numeric = frame.apply(pd.to_numeric, errors="coerce")
        value = float(np.asarray(clv.model.predict(numeric[list(clv.features)]))[0])
        segment = int(np.asarray(segmentation.model.predict(numeric[list(segmentation.features)]))[0])
        names = getattr(segmentation.model, "segment_names", ())
        name = names[segment] if segment < len(names) else f"segment {segment}"
        return Profile(
            user_token=user_token,
            as_of=as_of,
            segment_id=segment,
            segment_name=name,
            clv_12m_cents=max(value, 0.0),
            model_versions={clv.name: clv.version, segmentation.name: segmentation.version},
        )
