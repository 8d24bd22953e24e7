"""The raw-columns baseline: the same XGBoost training on the transaction's own raw columns only.

This is the published reference point on the real data (a plain XGBoost on the raw IBM columns reaches
PR-AUC ~ 0.18 on a time-based split). It is measured beside the fraud model on the same test rows; it is
never registered. The raw columns come from the lake's `transactions` table (`RAW_COLUMNS_SQL`), joined
to the training set's rows by `txn_id`.

Encoding: numbers as they are (amount in dollars, MCC, merchant id hash, zip), text columns as integer
codes learnt on the train rows (unseen values missing), the timestamp as hour, minute, day, month and
weekday, the error list as a count and a bad-credential flag. The year is left out: on a time-based
split every test year is unseen.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping

import numpy as np
import pandas as pd
import xgboost as xgb

from training.fraud.train import LABEL, train_booster

RAW_COLUMNS_SQL = (
    "SELECT txn_id, ts, amount_cents, channel, merchant_id, merchant_city, merchant_state, zip, mcc, errors "
    "FROM transactions"
)
CODED_COLUMNS = ("channel", "merchant_city", "merchant_state")
RAW_FEATURES = (
    "raw_amount",
    "raw_channel",
    "raw_merchant_id",
    "raw_merchant_city",
    "raw_merchant_state",
    "raw_zip",
    "raw_mcc",
    "raw_hour",
    "raw_minute",
    "raw_day",
    "raw_month",
    "raw_weekday",
    "raw_error_count",
    "raw_bad_credential",
)


def code_vocabulary(train_raw: pd.DataFrame) -> dict[str, dict[str, int]]:
    """Integer codes of each text column's values seen in the train rows (sorted, so stable)."""
    return {
        c: {v: i for i, v in enumerate(sorted(str(x) for x in train_raw[c].dropna().unique()))}
        for c in CODED_COLUMNS
    }


def _errors(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    count = np.array([0 if e is None else len(e) for e in values], dtype=np.float32)
    bad = np.array(
        [0 if e is None else any(str(x).startswith("Bad ") for x in e) for e in values], np.float32
    )
    return count, bad


def raw_feature_frame(raw: pd.DataFrame, vocabulary: Mapping[str, Mapping[str, int]]) -> pd.DataFrame:
    """The baseline's feature frame (float32, `RAW_FEATURES` order) from raw transaction columns."""
    ts = pd.to_datetime(raw["ts"])
    error_count, bad_credential = _errors(raw["errors"])
    columns = {
        "raw_amount": raw["amount_cents"].to_numpy(np.float64) / 100,
        **{f"raw_{c}": raw[c].map(vocabulary[c]).to_numpy(np.float64) for c in CODED_COLUMNS},
        "raw_merchant_id": raw["merchant_id"].to_numpy(np.float64),
        "raw_zip": pd.to_numeric(raw["zip"], errors="coerce").to_numpy(np.float64),
        "raw_mcc": pd.to_numeric(raw["mcc"], errors="coerce").to_numpy(np.float64),
        "raw_hour": ts.dt.hour.to_numpy(np.float64),
        "raw_minute": ts.dt.minute.to_numpy(np.float64),
        "raw_day": ts.dt.day.to_numpy(np.float64),
        "raw_month": ts.dt.month.to_numpy(np.float64),
        "raw_weekday": ts.dt.weekday.to_numpy(np.float64),
        "raw_error_count": error_count,
        "raw_bad_credential": bad_credential,
    }
    return pd.DataFrame({name: columns[name].astype(np.float32) for name in RAW_FEATURES}, index=raw.index)


def fit_raw_baseline(
    train_raw: pd.DataFrame, validation_raw: pd.DataFrame, args: argparse.Namespace
) -> tuple[xgb.Booster, dict[str, dict[str, int]]]:
    """Train the baseline (same trainer and hyperparameters as the model); frames hold raw columns and
    the label `is_fraud`. Returns the booster and the text-column codes it was trained with."""
    vocabulary = code_vocabulary(train_raw)

    def with_label(raw: pd.DataFrame) -> pd.DataFrame:
        frame = raw_feature_frame(raw, vocabulary)
        frame[LABEL] = raw[LABEL].to_numpy()
        return frame

    booster, _ = train_booster(with_label(train_raw), with_label(validation_raw), list(RAW_FEATURES), args)
    return booster, vocabulary


def score_raw_baseline(
    booster: xgb.Booster, raw: pd.DataFrame, vocabulary: Mapping[str, Mapping[str, int]]
) -> np.ndarray:
    frame = raw_feature_frame(raw, vocabulary)
    matrix = xgb.DMatrix(frame.to_numpy(np.float32), feature_names=list(RAW_FEATURES), missing=np.nan)
    return np.asarray(booster.predict(matrix), dtype=np.float64)
