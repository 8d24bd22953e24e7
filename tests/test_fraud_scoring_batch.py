"""The batch scoring helpers of `inference.fraud_scoring` equal their earlier cell-by-cell versions.

`encode_rows` converts numeric features as one numpy block and one-hot columns by value lookup; the
reference below is the previous row-by-row encoder, kept verbatim. Rows mix missing values, unseen
categories, booleans, strings of numbers, unparseable strings, numpy scalars and one-hot values that are not
strings. Reason codes come from one argsort over the contribution matrix; the reference is the previous
per-row loop over the same booster's contributions.
"""

from __future__ import annotations

import math
import random
from collections import defaultdict
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any

import numpy as np
import pytest

from inference.fraud_scoring import FeatureMismatchError, encode_rows, score_frame
from inference.loaded import LoadedModel
from training.fraud.preprocess import one_hot_name

ONE_HOT = {"mcc_group": ["cash_and_gambling", "grocery", "travel"], "channel": ["chip", "online", "swipe"],
           "hour_bucket": ["1", "2"]}  # fmt: skip
NUMERIC = ("amount_cents", "amount_zscore", "is_online", "has_chip", "txn_count_24h", "credit_limit")


def _reference_number(value: Any) -> float:
    if value is None or isinstance(value, str):
        try:
            return float(value) if value is not None else np.nan
        except ValueError:
            return np.nan
    return float(value)


def reference_encode_rows(model: LoadedModel, feature_rows: Sequence[Mapping[str, Any]]) -> np.ndarray:
    """The previous cell-by-cell encoder."""
    one_hot = {one_hot_name(c, v): (c, v) for c, values in model.one_hot.items() for v in values}
    out = np.empty((len(feature_rows), len(model.features)), dtype=np.float32)
    for i, row in enumerate(feature_rows):
        for j, name in enumerate(model.features):
            if name in one_hot:
                column, value = one_hot[name]
                cell = row.get(column)
                out[i, j] = 1.0 if cell is not None and str(cell) == value else 0.0
            elif name in row:
                out[i, j] = _reference_number(row[name])
            else:
                raise FeatureMismatchError(f"the online features lack model features: {[name]}")
    return out


def model_of(features: Sequence[str], one_hot: Mapping[str, list[str]], booster: Any = None) -> LoadedModel:
    spec = {"features": list(features), "one_hot": dict(one_hot)}
    return LoadedModel("cdp-fraud", 1, "classification", tuple(features), None, booster, spec)


def interleaved_features(rng: random.Random) -> list[str]:
    """Numeric and one-hot feature names in a shuffled model order."""
    names = [*NUMERIC, *(one_hot_name(c, v) for c, values in ONE_HOT.items() for v in values)]
    rng.shuffle(names)
    return names


def varied_cell(rng: random.Random) -> Any:
    return rng.choice(
        [
            None,
            0,
            -17,
            2**40 + 1,
            3.25,
            -0.1,
            float("nan"),
            float("inf"),
            True,
            False,
            "12.5",
            " 7 ",
            "1_000",
            "1e3",
            "nan",
            "abc",
            "",
            np.int64(9),
            np.float32(0.1),
            1e39,  # beyond float32: inf after the cast, as before
        ]
    )


def varied_rows(rng: random.Random, n: int) -> list[dict[str, Any]]:
    categories = {
        "mcc_group": ["grocery", "travel", "cash_and_gambling", "pets", None, ""],  # "pets": unseen
        "channel": ["chip", "online", "swipe", "ONLINE", None],
        "hour_bucket": [1, 2, "2", 3, None, True],  # non-string values compare by their text
    }
    rows = []
    for _ in range(n):
        row: dict[str, Any] = {name: varied_cell(rng) for name in NUMERIC}
        for column, values in categories.items():
            if rng.random() < 0.9:  # sometimes the category column is absent: every one-hot cell is 0
                row[column] = rng.choice(values)
        row["unused"] = "extra keys are ignored"
        rows.append(row)
    edge = dict(zip(NUMERIC, (float("inf"), "nan", True, " 7 ", "abc", None), strict=True))
    rows.insert(rng.randrange(len(rows) + 1), {**edge, "mcc_group": "travel", "hour_bucket": 2})
    return rows


def assert_same_array(got: np.ndarray, want: np.ndarray) -> None:
    assert got.dtype == want.dtype == np.float32 and got.shape == want.shape
    np.testing.assert_array_equal(got, want)  # NaN == NaN here, and infinities must match


@pytest.mark.filterwarnings("ignore:overflow encountered in cast:RuntimeWarning")  # 1e39, as before
@pytest.mark.parametrize("seed", range(6))
def test_encode_rows_equals_the_cell_by_cell_encoder(seed):
    rng = random.Random(seed)
    model = model_of(interleaved_features(rng), ONE_HOT)
    rows = varied_rows(rng, rng.choice((1, 2, 37, 300)))
    want = reference_encode_rows(model, rows)
    assert_same_array(encode_rows(model, rows), want)
    assert np.isnan(want).any() and (want == 1.0).any() and np.isinf(want).any()  # the cases are exercised


def test_encode_rows_of_plain_numbers_takes_the_block_path_and_matches():
    rng = random.Random(11)
    model = model_of(interleaved_features(rng), ONE_HOT)
    rows = [
        {**{n: rng.choice((None, rng.randint(-5, 5000), rng.random(), True)) for n in NUMERIC},
         "mcc_group": rng.choice(ONE_HOT["mcc_group"]), "channel": "online", "hour_bucket": "2"}
        for _ in range(200)
    ]  # fmt: skip
    assert_same_array(encode_rows(model, rows), reference_encode_rows(model, rows))


def test_encode_rows_of_no_rows_and_of_a_missing_feature():
    model = model_of(
        ["amount_cents", "txn_count_24h", one_hot_name("channel", "chip")], {"channel": ["chip"]}
    )
    assert encode_rows(model, []).shape == (0, 3)
    rows = [{"amount_cents": 1, "txn_count_24h": 2}, {"amount_cents": 1}]
    with pytest.raises(FeatureMismatchError, match=r"\['txn_count_24h'\]") as error:
        encode_rows(model, rows)
    with pytest.raises(FeatureMismatchError, match=r"\['txn_count_24h'\]") as reference:
        reference_encode_rows(model, rows)
    assert str(error.value) == str(reference.value)
    answering = [defaultdict(float, {"amount_cents": 1, "channel": "chip"})]  # `in` says no, `[]` says 0.0
    with pytest.raises(FeatureMismatchError, match=r"\['txn_count_24h'\]"):
        encode_rows(model, answering)
    proxies = [MappingProxyType({"amount_cents": 1, "txn_count_24h": "2", "channel": "chip"})]
    assert_same_array(encode_rows(model, proxies), reference_encode_rows(model, proxies))


def test_a_cell_holding_a_sequence_is_rejected_as_before():
    model = model_of(["amount_cents"], {})
    with pytest.raises(TypeError):
        reference_encode_rows(model, [{"amount_cents": [1]}])
    with pytest.raises(TypeError):
        encode_rows(model, [{"amount_cents": [1]}])


def reference_reasons(
    contributions: np.ndarray, names: Sequence[str], k: int
) -> list[list[tuple[str, float]]]:
    """The previous per-row loop."""
    out = []
    for row in contributions:
        order = np.argsort(-row, kind="stable")[:k]
        out.append([(names[i], float(row[i])) for i in order if row[i] > 0])
    return out


@pytest.mark.parametrize("reason_codes", [1, 3, 5])
def test_reason_codes_equal_the_per_row_ranking(reason_codes):
    import xgboost

    rng = np.random.default_rng(4)
    names = [f"f{i}" for i in range(8)]
    x = rng.normal(size=(400, len(names))).astype(np.float32)
    x[rng.random(x.shape) < 0.1] = np.nan
    x[:, 5] = np.round(x[:, 5])  # coarse values: equal contributions, ties broken by feature order
    y = (np.nan_to_num(x[:, :6]).sum(axis=1) + np.nan_to_num(x[:, 5]) > 0.5).astype(int)
    booster = xgboost.train(
        {"objective": "binary:logistic", "max_depth": 3, "nthread": 1, "seed": 1},
        xgboost.DMatrix(x, label=y, feature_names=names),
        num_boost_round=20,
    )
    model = model_of(names, {}, booster)
    scores = score_frame(model, x, reason_codes)
    matrix = xgboost.DMatrix(x, feature_names=names, missing=np.nan)
    contributions = booster.predict(matrix, pred_contribs=True)[:, :-1]
    probabilities = booster.predict(matrix)
    assert [s.probability for s in scores] == [float(p) for p in probabilities]
    assert [s.reasons for s in scores] == reference_reasons(contributions, names, reason_codes)
    assert all(isinstance(c, float) and not math.isnan(c) for s in scores for _, c in s.reasons)
    assert {len(s.reasons) for s in scores} >= {0, reason_codes}  # rows without and with every reason


def test_explain_from_gives_reason_codes_to_the_alerts_only_and_the_same_ones():
    import xgboost

    rng = np.random.default_rng(7)
    names = [f"f{i}" for i in range(6)]
    x = rng.normal(size=(300, len(names))).astype(np.float32)
    y = (x[:, 0] + x[:, 1] > 1).astype(int)
    booster = xgboost.train({"objective": "binary:logistic", "max_depth": 3, "nthread": 1, "seed": 1},
                            xgboost.DMatrix(x, label=y, feature_names=names), num_boost_round=15)  # fmt: skip
    model = model_of(names, {}, booster)
    every = score_frame(model, x, 3)
    alerts_only = score_frame(model, x, 3, explain_from=0.5)
    assert [s.probability for s in alerts_only] == [s.probability for s in every]
    alerted = [i for i, s in enumerate(every) if s.probability >= 0.5]
    assert 0 < len(alerted) < len(every)
    for i, (full, partial) in enumerate(zip(every, alerts_only, strict=True)):
        assert partial.reasons == (full.reasons if i in alerted else [])
    assert [s.reasons for s in score_frame(model, x, 3, explain_from=2.0)] == [[]] * len(x)
