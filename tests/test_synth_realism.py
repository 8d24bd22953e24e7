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
        "card": t.Card.to_numpy(),
        "ts": pd.to_datetime(stamp, format="%Y-%m-%d %H:%M").to_numpy(),
        "amount": t.Amount.str.replace("$", "", regex=False).astype(float).to_numpy(),
        "is_fraud": (t["Is Fraud?"] == "Yes").to_numpy(),
    }


@pytest.fixture(scope="module")
def episodes(out) -> pd.DataFrame:
    return pq.read_table(out / "ground_truth/episodes.parquet").to_pandas()


def test_realism_checks_pass(out, tmp_path):
    profile = profile_files(out / USERS_FILE, out / CARDS_FILE, out / TRANSACTIONS_FILE, tmp_path / "q")
    checks = realism_checks(profile)
    assert len(checks) >= 15
    failed = [c for c in checks if not c.passed]
    assert not failed, failed
    assert all(f.rows_quarantined == 0 for f in profile.files)
    assert profile.rows_outside_card_life == 0


def _month(text: pd.Series) -> np.ndarray:
    """MM/YYYY -> months since year 0."""
    parts = text.str.split("/", expand=True).astype(int)
    return (parts[1] * 12 + parts[0] - 1).to_numpy()


def test_no_row_outside_its_cards_open_to_expiry_months(out, csv_rows):
    cards = pd.read_csv(out / CARDS_FILE, dtype=str)
    key = cards.User.astype(int) * 16 + cards["CARD INDEX"].astype(int)
    opened = dict(zip(key, _month(cards["Acct Open Date"]), strict=True))
    expires = dict(zip(key, _month(cards.Expires), strict=True))
    row_key = csv_rows["user"] * 16 + csv_rows["card"]
    stamp = csv_rows["ts"].astype("datetime64[M]").astype(np.int64) + 1970 * 12  # months since year 0
    low = np.array([opened[k] for k in row_key])
    high = np.array([expires[k] for k in row_key])
    assert len(stamp) > 100_000
    assert ((stamp >= low) & (stamp <= high)).all()
    # every card's expiry lies after the data, at most five years on
    assert (_month(cards.Expires) > 2020 * 12 + 1).all() and (_month(cards.Expires) <= 2025 * 12).all()


def _share_with_another_within_72h(key: np.ndarray, ts: np.ndarray, flag: np.ndarray) -> float:
    """Share of flagged rows whose card has another flagged row within 72 hours."""
    k, t = key[flag], ts[flag]
    order = np.lexsort((t, k))
    k, t = k[order], t[order]
    near = (k[1:] == k[:-1]) & (t[1:] - t[:-1] <= np.timedelta64(72, "h"))
    return float((np.r_[False, near] | np.r_[near, False]).mean())


def test_labelled_frauds_arrive_in_bursts_on_one_card(csv_rows):
    key = csv_rows["user"] * 16 + csv_rows["card"]
    fraud = csv_rows["is_fraud"]
    assert fraud.sum() > 200
    clustered = _share_with_another_within_72h(key, csv_rows["ts"], fraud)
    shuffled = _share_with_another_within_72h(
        key, csv_rows["ts"], np.random.default_rng(0).permutation(fraud)
    )
    assert clustered > 0.6
    assert shuffled < 0.1


def test_episodes_have_several_rows_and_match_the_row_truth(truth, episodes):
    attack = truth["is_attack"].astype(bool)
    assert len(episodes) == len(np.unique(truth["episode_id"][attack]))
    assert episodes.rows.mean() >= 2 and (episodes.rows >= 3).all()
    per_episode = pd.Series(attack[attack]).groupby(truth["episode_id"][attack].astype(np.int64)).size()
    assert per_episode.reindex(episodes.episode_id).tolist() == episodes.rows.tolist()
    labelled = truth["is_fraud_drawn"].astype(bool) & truth["label_recorded"].astype(bool)
    assert episodes.frauds_labelled.sum() == (labelled & attack).sum()
    caught = episodes[episodes.frauds_labelled > 0]
    assert len(caught) >= 0.8 * len(episodes)
    assert caught.frauds_labelled.mean() >= 2
    assert (episodes.last_ts - episodes.first_ts).max() <= pd.Timedelta(days=14)


def test_a_card_is_quiet_from_its_block_until_its_new_plastic(csv_rows, episodes):
    ts = csv_rows["ts"]
    key = csv_rows["user"] * 16 + csv_rows["card"]
    end = ts.max()
    used_again = 0
    for e in episodes.itertuples():
        on_card = key == e.user * 16 + e.card
        blocked, reissued = np.datetime64(e.blocked_at), np.datetime64(e.reissued_at)
        assert e.last_ts < blocked < reissued - np.timedelta64(4, "D")
        assert not (on_card & (ts >= blocked) & (ts < reissued)).any()
        if reissued < end - np.timedelta64(60, "D"):
            used_again += bool((on_card & (ts >= reissued)).any())
    assert used_again >= 0.8 * (episodes.reissued_at < end - np.timedelta64(60, "D")).sum()


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
