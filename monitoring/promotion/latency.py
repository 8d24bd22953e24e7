"""Serving latency of a model: single-row scoring through the code path the API runs, p99 in ms.

Each call is timed in CPU seconds of this process (`time.process_time`: every thread of the call, XGBoost's
included), not wall seconds: scoring one row does no I/O, so on a serving host of its own the two agree,
while on a shared machine the wall clock would charge the candidate for the other work that preempts it and
the gate's verdict would depend on the machine's load rather than on the model.

Fraud: `/fraud/score` encodes the online feature dict (`encode_rows`, or `encode` without a one-hot
vocabulary) and scores it with reason codes (`score_frame`: probability + TreeSHAP contributions). CLV and
segmentation: `/invocations` (`predictions` on a one-row frame). Online feature computation and HTTP are
outside this measure (they do not depend on the model).
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd

from inference.loaded import LoadedModel

WARM_UP_ROWS = 5
REASON_CODES = 3


def _records(frame: pd.DataFrame) -> list[dict]:
    """Rows as plain dicts, missing values as None (what the online feature store hands serving)."""
    clean = frame.astype(object).where(frame.notna(), None)
    return clean.to_dict("records")


def p99_latency_ms(model: LoadedModel, frame: pd.DataFrame, rows: int) -> float:
    """p99 of `rows` single-row scorings (after a short warm-up), in CPU milliseconds."""
    from inference.fraud_scoring import encode, encode_rows, score_frame
    from inference.predict import predictions

    sample = frame.head(rows + WARM_UP_ROWS)
    if sample.empty:
        raise ValueError("no rows to time")
    timings = []
    if model.kind == "classification":
        for record in _records(sample):
            start = time.process_time()
            inputs = encode_rows(model, [record]) if model.one_hot else encode(model, [record])
            score_frame(model, inputs, REASON_CODES)
            timings.append(time.process_time() - start)
    else:
        for i in range(len(sample)):
            one = sample.iloc[[i]]
            start = time.process_time()
            predictions(model, one)
            timings.append(time.process_time() - start)
    measured = timings[WARM_UP_ROWS:] or timings
    return float(np.percentile(np.asarray(measured) * 1000.0, 99))
