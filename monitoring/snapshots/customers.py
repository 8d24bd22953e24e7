"""Customer tables for the marketing page: segments, CLV bands and the segment x CLV matrix.

Every customer's segment and 12-month CLV come from the segmentation and CLV champions scoring their
latest `customer_features` row (`inference.profiles.build_profiles`, the serving path's own code). Only
counts and averages leave this module, and only for groups of at least `min_customers` customers: a
smaller cell is stored without its figures (`suppressed`), so no table can single a customer out.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow as pa

from cdp.aggregates.snapshots import write_snapshot
from inference.profiles import Profile

if TYPE_CHECKING:
    from cdp.backends import Backends

SEGMENTS = "dash_segments"
SEGMENT_PROFILES = "dash_segment_profiles"
CLV_BANDS = "dash_clv_bands"
SEGMENT_CLV = "dash_segment_clv"
CLV_HISTOGRAM = "dash_clv_histogram"
CUSTOMER_FEATURES = "customer_features"
CLV_MODEL, SEGMENTATION_MODEL = "cdp-clv", "cdp-segmentation"

# CLV bands: lower bounds in dollars of 12-month value, and their labels.
BAND_LOWER_DOLLARS = (0, 5_000, 15_000, 30_000, 60_000)
BAND_LABELS = ("under $5k", "$5k-15k", "$15k-30k", "$30k-60k", "$60k+")
HISTOGRAM_BINS = 20

_LATEST_FEATURES_SQL = f"""
SELECT * EXCLUDE (latest_rank_) FROM (
    SELECT *, row_number() OVER (PARTITION BY user_token ORDER BY as_of DESC) AS latest_rank_
    FROM {CUSTOMER_FEATURES}
) WHERE latest_rank_ = 1
"""


class NoCustomerModels(RuntimeError):
    """The CLV or segmentation model has no champion yet (or customer features are not built)."""


def clv_band(cents: np.ndarray) -> np.ndarray:
    """The band index of each CLV (cents)."""
    bounds = np.asarray(BAND_LOWER_DOLLARS[1:], dtype=float) * 100
    return np.searchsorted(bounds, np.asarray(cents, dtype=float), side="right")


def _frame(profiles: Iterable[Profile]) -> pd.DataFrame:
    rows = [(p.user_token, p.segment_name, p.clv_12m_cents) for p in profiles]
    frame = pd.DataFrame(rows, columns=["user_token", "segment_name", "clv_cents"])
    frame["band_order"] = clv_band(frame["clv_cents"].to_numpy()) if len(frame) else []
    frame["band"] = [BAND_LABELS[i] for i in frame["band_order"]]
    return frame


def _suppress(counts: pd.Series, min_customers: int) -> tuple[list[int | None], list[bool]]:
    small = counts < min_customers
    return [None if s else int(c) for c, s in zip(counts, small, strict=True)], small.tolist()


def customer_tables(
    profiles: Iterable[Profile], min_customers: int, features: pd.DataFrame | None = None
) -> dict[str, pa.Table]:
    """The five customer tables from every customer's profile (and their latest features, for the
    segment profiles); groups under `min_customers` customers keep no figure."""
    frame = _frame(profiles)
    total = len(frame)
    by_segment = frame.groupby("segment_name")["clv_cents"]
    seg = pd.DataFrame(
        {
            "customers": by_segment.size(),
            "clv_mean_cents": by_segment.mean(),
            "clv_median_cents": by_segment.median(),
        }
    ).reset_index()
    seg = seg[seg["customers"] >= min_customers]
    segments = pa.table(
        {
            "segment_name": pa.array(seg["segment_name"], pa.string()),
            "customers": pa.array(seg["customers"], pa.int64()),
            "share": pa.array(seg["customers"] / max(total, 1), pa.float64()),
            "clv_mean_cents": pa.array(seg["clv_mean_cents"], pa.float64()),
            "clv_median_cents": pa.array(seg["clv_median_cents"], pa.float64()),
        }
    )
    shown = set(seg["segment_name"])

    profile_rows: list[dict] = []
    if features is not None and len(features) and shown:
        joined = frame[["user_token", "segment_name"]].merge(features, on="user_token")
        numeric = [c for c in joined.columns if c not in ("user_token", "segment_name")]
        numeric = [c for c in numeric if pd.api.types.is_numeric_dtype(joined[c])]
        means = joined[joined["segment_name"].isin(shown)].groupby("segment_name")[numeric].mean()
        for name, row in means.iterrows():
            profile_rows += [{"segment_name": name, "feature": f, "mean": float(v)} for f, v in row.items()]
    segment_profiles = pa.Table.from_pylist(
        profile_rows,
        schema=pa.schema([("segment_name", pa.string()), ("feature", pa.string()), ("mean", pa.float64())]),
    )

    bands = pd.DataFrame({"band_order": range(len(BAND_LABELS)), "band": BAND_LABELS})
    counted = frame.groupby("band_order")["clv_cents"].agg(["size", "sum"])
    bands = bands.join(counted, on="band_order").fillna({"size": 0, "sum": 0.0})
    customers, suppressed = _suppress(bands["size"], min_customers)
    clv_bands = pa.table(
        {
            "band_order": pa.array(bands["band_order"], pa.int32()),
            "band": pa.array(bands["band"], pa.string()),
            "customers": pa.array(customers, pa.int64()),
            "clv_total_cents": pa.array(
                [None if s else float(x) for x, s in zip(bands["sum"], suppressed, strict=True)], pa.float64()
            ),
            "suppressed": pa.array(suppressed, pa.bool_()),
        }
    )

    cells = frame.groupby(["segment_name", "band_order", "band"]).size().rename("n").reset_index()
    customers, suppressed = _suppress(cells["n"], min_customers)
    segment_clv = pa.table(
        {
            "segment_name": pa.array(cells["segment_name"], pa.string()),
            "band_order": pa.array(cells["band_order"], pa.int32()),
            "band": pa.array(cells["band"], pa.string()),
            "customers": pa.array(customers, pa.int64()),
            "suppressed": pa.array(suppressed, pa.bool_()),
        }
    )
    return {
        SEGMENTS: segments,
        SEGMENT_PROFILES: segment_profiles,
        CLV_BANDS: clv_bands,
        SEGMENT_CLV: segment_clv,
        CLV_HISTOGRAM: clv_histogram(frame["clv_cents"].to_numpy(), min_customers),
    }


def clv_histogram(cents: np.ndarray, min_customers: int, bins: int = HISTOGRAM_BINS) -> pa.Table:
    """Equal-width bins from 0 to the 99th percentile (the top 1% in the last bin); a bin of fewer than
    `min_customers` customers keeps no count."""
    values = np.asarray(cents, dtype=float)
    top = float(np.percentile(values, 99)) if len(values) else 0.0
    edges = np.linspace(0.0, max(top, 1.0), bins + 1)
    counts = np.histogram(np.clip(values, 0.0, edges[-1]), bins=edges)[0] if len(values) else np.zeros(bins)
    customers, suppressed = _suppress(pd.Series(counts), min_customers)
    return pa.table(
        {
            "bin_low_cents": pa.array(edges[:-1], pa.float64()),
            "bin_high_cents": pa.array(edges[1:], pa.float64()),
            "customers": pa.array(customers, pa.int64()),
            "suppressed": pa.array(suppressed, pa.bool_()),
        }
    )


def champion_profiles(backends: Backends) -> tuple[list[Profile], pd.DataFrame]:
    """Every customer's profile from the CLV and segmentation champions, and their latest features;
    `NoCustomerModels` when a champion or the customer features are missing."""
    from cdp.catalog.port import CatalogError
    from inference.loaded import load_version
    from inference.profiles import ProfileUnavailableError, build_profiles

    registry = backends.model_registry
    champions = {name: registry.champion(name) for name in (CLV_MODEL, SEGMENTATION_MODEL)}
    missing = [name for name, version in champions.items() if version is None]
    if missing:
        raise NoCustomerModels(f"no champion for {', '.join(missing)} yet")
    if CUSTOMER_FEATURES not in {t.name for t in backends.catalog.tables()}:
        raise NoCustomerModels("no customer_features table yet")
    clv = load_version(champions[CLV_MODEL], backends.object_store)
    segmentation = load_version(champions[SEGMENTATION_MODEL], backends.object_store)
    try:
        profiles = build_profiles(backends.catalog, clv, segmentation)
        features = backends.catalog.query(_LATEST_FEATURES_SQL).to_pandas()
    except (ProfileUnavailableError, CatalogError) as e:
        raise NoCustomerModels(str(e)) from None
    return list(profiles.values()), features.drop(columns=["as_of"], errors="ignore")


def refresh_customers(backends: Backends, profiles: Sequence[Profile] | None = None) -> dict[str, int]:
    """Rebuild the customer tables (from the champions unless `profiles` are given); rows per table."""
    features = None
    if profiles is None:
        profiles, features = champion_profiles(backends)
    tables = customer_tables(profiles, backends.settings.dashboard_min_customers, features)
    return {name: write_snapshot(backends, name, rows) for name, rows in tables.items()}
