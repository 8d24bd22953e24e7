"""Customer profiles: the customer's latest `customer_features` row scored by the CLV and segmentation
champions. Tokens, a segment name and a value only: no clear personal data.

Profiles are served from memory: every customer's profile is computed in one pass (two catalog queries
and one prediction per model) when serving starts, then again in a background thread whenever the CLV
or segmentation champion changes (or a forced reload asks), and the new table replaces the old one in
one assignment. A request is a dictionary lookup: no lake scan, no model call, nothing that can block.
"""

from __future__ import annotations

import logging
import re
import threading
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd

from cdp.catalog.port import Catalog, CatalogError
from inference.holder import ModelHolder, ModelUnavailableError
from inference.loaded import LoadedModel

log = logging.getLogger("cdp.inference.profiles")

CUSTOMER_FEATURES = "customer_features"
SPEND_BEFORE = "heuristic_last_12m"  # a CLV feature kept beside customer_features, computed here
_USER_TOKEN = re.compile(r"^usr_[a-z2-7]{26}$")

_LATEST_ROWS_SQL = f"""
SELECT * FROM (
    SELECT *, row_number() OVER (PARTITION BY user_token ORDER BY as_of DESC) AS latest_rank_
    FROM {CUSTOMER_FEATURES}
) WHERE latest_rank_ = 1
"""

_SPEND_BEFORE_SQL = f"""
SELECT f.user_token, CAST(coalesce(sum(t.amount_cents), 0) AS BIGINT) AS spend
FROM ({_LATEST_ROWS_SQL}) f
LEFT JOIN transactions t
  ON t.user_token = f.user_token AND t.ts >= f.as_of - INTERVAL '12' MONTH AND t.ts < f.as_of
GROUP BY f.user_token
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


def _predict(model: LoadedModel, frame: pd.DataFrame) -> np.ndarray:
    """The model's predictions for every row; features the frame lacks are missing values (trees route
    them, centroids read them as 0)."""
    columns = {n: (frame[n] if n in frame.columns else np.nan) for n in model.features}
    numeric = pd.DataFrame(columns, index=frame.index).apply(pd.to_numeric, errors="coerce")
    return np.asarray(model.model.predict(numeric[list(model.features)]))


def build_profiles(catalog: Catalog, clv: LoadedModel, segmentation: LoadedModel) -> dict[str, Profile]:
    """Every customer's profile from their latest feature row (`ProfileUnavailableError` without tables)."""
    try:
        frame = catalog.query(_LATEST_ROWS_SQL).to_pandas().drop(columns=["latest_rank_"])
        if SPEND_BEFORE in clv.features and SPEND_BEFORE not in frame.columns and len(frame):
            spend = catalog.query(_SPEND_BEFORE_SQL).to_pandas().set_index("user_token")["spend"]
            frame[SPEND_BEFORE] = frame["user_token"].map(spend).fillna(0).astype("int64")
    except CatalogError:
        raise ProfileUnavailableError("customer features are not built") from None
    if frame.empty:
        return {}
    values = _predict(clv, frame).astype(float)
    segments = _predict(segmentation, frame).astype(int)
    names = getattr(segmentation.model, "segment_names", ())
    versions = {clv.name: clv.version, segmentation.name: segmentation.version}
    return {
        token: Profile(
            user_token=token,
            as_of=pd.Timestamp(as_of).to_pydatetime(),
            segment_id=int(segment),
            segment_name=names[segment] if segment < len(names) else f"segment {segment}",
            clv_12m_cents=max(float(value), 0.0),
            model_versions=dict(versions),
        )
        for token, as_of, value, segment in zip(
            frame["user_token"], frame["as_of"], values, segments, strict=True
        )
    }


class CustomerProfiles:
    """Profiles from the catalog's customer features and two model holders, held in memory."""

    def __init__(self, catalog: Catalog, clv: ModelHolder, segmentation: ModelHolder) -> None:
        self.catalog = catalog
        self.clv = clv
        self.segmentation = segmentation
        self._table: dict[str, Profile] | None = None
        self._error = "customer profiles are being built"
        self._build_lock = threading.Lock()  # one build at a time
        self._wanted = threading.Event()  # a rebuild was asked for
        self._thread: threading.Thread | None = None
        self._watching = False
        clv.on_change(self.rebuild_soon)
        segmentation.on_change(self.rebuild_soon)

    @property
    def ready(self) -> bool:
        return self._table is not None

    def build(self) -> int:
        """Compute every profile now and swap the table in; how many. A failure keeps the table served
        (or, before the first build, makes requests answer 503 with its reason)."""
        with self._build_lock:
            try:
                clv, segmentation = self.clv.current, self.segmentation.current
                table = build_profiles(self.catalog, clv, segmentation)
            except (ModelUnavailableError, ProfileUnavailableError) as error:
                self._error = str(error)
                log.warning("customer profiles not built: %s", self._error)
                return 0
            except Exception as error:  # a bad model or table: keep what we serve
                self._error = "customer profiles could not be built"
                log.warning("building customer profiles failed: %s", type(error).__name__)
                return 0
            self._table = table  # the atomic swap
            log.info("serving %d customer profiles (CLV v%s, segmentation v%s)", len(table), clv.version,
                     segmentation.version)  # fmt: skip
            return len(table)

    def start(self) -> None:
        """Build now, then rebuild in the background whenever a champion changes."""
        self.build()
        self._watching = True

    def stop(self) -> None:
        self._watching = False

    def rebuild_soon(self) -> None:
        """Ask for a rebuild in a background thread (several asks while one runs make one more build)."""
        if not self._watching:
            return
        self._wanted.set()
        if self._thread is not None and self._thread.is_alive():
            return
        self._thread = threading.Thread(target=self._rebuild, name="profiles-rebuild", daemon=True)
        self._thread.start()

    def _rebuild(self) -> None:
        while self._wanted.is_set():
            self._wanted.clear()
            self.build()

    def wait_idle(self, timeout: float = 30.0) -> bool:
        """Wait for a background rebuild to end (tests, benchmarks); True when none is running."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
        return thread is None or not thread.is_alive()

    def profile(self, user_token: str) -> Profile | None:
        """The customer's profile, or None when the customer has no feature row."""
        if not _USER_TOKEN.match(user_token):
            raise ValueError("not a user token")
        table = self._table
        if table is None:
            raise ProfileUnavailableError(self._error)
        return table.get(user_token)
