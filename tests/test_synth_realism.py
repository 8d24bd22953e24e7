"""A mid-size generated data set holds the published shape of the real one, and its truth is informative."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from cdp.ibm.profile import profile_files, realism_checks
from cdp.ibm.schema import CARDS_FILE, TRANSACTIONS_FILE, USERS_FILE
from cdp.synth.generator import generate

USERS = 60


@pytest.fixture(scope="module")
def out(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("synth-realism")
    generate(folder, USERS, seed=7, workers=2)
    return folder


@pytest.fixture(scope="module")
def truth(out) -> dict[str, np.ndarray]:
    t = pq.read_table(out / "ground_truth/transactions.parquet")
    return {name: t.column(name).to_numpy(zero_copy_only=False) for name in t.column_names}


@pytest.fixture(scope="module")
def csv_rows(out) -> dict[str, np.ndarray]:
    """The transactions file parsed here independently of the platform's reader."""
    t = pacsv.read_csv(
        out / TRANSACTIONS_FILE,
        convert_options=pacsv.ConvertOptions(column_types={n: pa.string() for n in ("Time", "Amount")}),
    ).to_pandas()
    stamp = (
        t.Year.astype(str)
        + "-"
        + t.Month.astype(str).str.zfill(2)
        + "-"
        + t.Day.astype(str).str.zfill(2)
        + " "
        + t.Time
    )
    return {
        "user": t.User.to_numpy(),
        "ts": pd.to_datetime(stamp, format="%Y-%m-%d %H:%M").to_numpy(),
        "amount": t.Amount.str.replace("$", "", regex=False).astype(float).to_numpy(),
        "is_fraud": (t["Is Fraud?"] == "Yes").to_numpy(),
    }


def test_realism_checks_pass(out, tmp_path):
    profile = profile_files(out / USERS_FILE, out / CARDS_FILE, out / TRANSACTIONS_FILE, tmp_path / "q")
    checks = realism_checks(profile)
    assert len(checks) >= 15
    failed = [c for c in checks if not c.passed]
    assert not failed, failed
    assert all(f.rows_quarantined == 0 for f in profile.files)


def test_volume_is_heavy_tailed_around_the_real_mean(truth):
    per_user = np.bincount(truth["user"])
    assert 8_000 <= per_user.mean() <= 17_000
    assert per_user.max() > 3 * np.median(per_user)


def test_most_fraud_lies_in_short_episodes(truth):
    drawn = truth["is_fraud_drawn"].astype(bool)
    attack = truth["is_attack"].astype(bool)
    assert drawn.sum() > 50
    assert attack[drawn].mean() >= 0.6
    episodes = truth["episode_id"][attack].astype(np.int64)
    sizes = np.bincount(np.unique(episodes, return_inverse=True)[1])
    assert sizes.min() >= 3 and sizes.max() <= 16
    # every user is a victim
    assert set(np.unique(truth["user"][attack])) == set(range(USERS))


def test_episodes_span_at_most_14_days(csv_rows, truth):
    attack = truth["is_attack"].astype(bool)
    ts = csv_rows["ts"][attack]
    episode = truth["episode_id"][attack].astype(np.int64)
    order = np.lexsort((ts, episode))
    ts, episode = ts[order], episode[order]
    starts = np.r_[True, episode[1:] != episode[:-1]]
    ends = np.r_[episode[1:] != episode[:-1], True]
    spans = (ts[ends] - ts[starts]) / np.timedelta64(1, "D")
    assert spans.max() <= 14


def test_oracle_is_informative(truth):
    labelled = truth["label_recorded"].astype(bool)
    y = truth["is_fraud_drawn"].astype(bool)[labelled]
    p = truth["fraud_probability"][labelled]
    order = np.argsort(-p, kind="stable")
    hits = y[order]
    precision = np.cumsum(hits) / np.arange(1, len(hits) + 1)
    pr_auc = float((precision * hits).sum() / hits.sum())  # average precision
    assert pr_auc > 100 * y.mean()
    assert pr_auc > 0.3
    # attack rows score far above genuine ones
    attack = truth["is_attack"].astype(bool)
    assert np.median(truth["fraud_probability"][attack]) > 1000 * np.median(
        truth["fraud_probability"][~attack]
    )


def test_labels_missing_in_unlabelled_months_only(csv_rows, truth):
    unlabelled = ~truth["label_recorded"].astype(bool)
    assert unlabelled.any()
    is_fraud = csv_rows["is_fraud"]
    assert not is_fraud[unlabelled].any()
    assert np.array_equal(is_fraud, truth["is_fraud_drawn"].astype(bool) & ~unlabelled)


def test_clv_oracle_beats_the_last_12_months(out, csv_rows):
    users = pq.read_table(out / "ground_truth/users.parquet").to_pandas()
    in_window = (csv_rows["ts"] >= np.datetime64("2018-03-01")) & (
        csv_rows["ts"] < np.datetime64("2019-03-01")
    )
    last12 = np.bincount(csv_rows["user"][in_window], weights=csv_rows["amount"][in_window], minlength=USERS)
    oracle_mae = np.abs(users.clv_expected - users.clv_realised).mean()
    heuristic_mae = np.abs(last12[users.user] - users.clv_realised).mean()
    assert oracle_mae < 0.7 * heuristic_mae
    assert users.clv_realised.mean() > 0
