"""Evaluation figures on a tiny handmade scored set, the report files, and the refusal of unlabelled rows."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from monitoring.evaluation import EvaluationInputError, evaluate_scored, write_report
from monitoring.evaluation.metrics import bootstrap_by_episode, episodes

T0 = datetime(2019, 5, 1, 12, 0)


def handmade() -> pd.DataFrame:
    """10 rows, 4 frauds in 3 episodes: card A at T0 and T0+1h (one burst), A again 10 days later, B once.
    Scores put frauds at ranks 1, 2, 4 and 6; the threshold 0.5 alerts the top 3 rows."""
    rows = [
        # card, hours after T0, score, fraud
        ("crd_a", 0, 0.90, True),
        ("crd_a", 1, 0.40, True),
        ("crd_a", 240, 0.80, True),
        ("crd_b", 5, 0.20, True),
        ("crd_b", 6, 0.70, False),
        ("crd_c", 2, 0.30, False),
        ("crd_c", 3, 0.10, False),
        ("crd_c", 4, 0.05, False),
        ("crd_d", 7, 0.02, False),
        ("crd_d", 8, 0.01, False),
    ]
    frame = pd.DataFrame(
        {
            "row": range(2, 12),
            "txn_id": [f"t{i}" for i in range(10)],
            "card_token": [r[0] for r in rows],
            "ts": [T0 + timedelta(hours=r[1]) for r in rows],
            "score": [r[2] for r in rows],
            "alert": [r[2] >= 0.5 for r in rows],
            "is_fraud": pd.array([r[3] for r in rows], dtype="boolean"),
        }
    )
    frame.attrs.update(model="cdp-fraud", version=2, threshold=0.5, source="tiny.csv", rows_in=11, scored=10,
                       quarantined=1)  # fmt: skip
    return frame


def test_figures_of_a_handmade_case():
    report = evaluate_scored(handmade(), alert_budget=0.2, bootstrap_rounds=50)
    m = report.metrics
    # ranks of the frauds by score: 1 (0.9), 2 (0.8), 4 (0.4), 6 (0.2): AP = (1 + 1 + 3/4 + 4/6) / 4
    assert m["pr_auc"] == pytest.approx((1 + 1 + 3 / 4 + 4 / 6) / 4)
    # 4 frauds x 6 genuine pairs: a fraud scored below a genuine row at 0.4<0.7, 0.2<0.7, 0.2<0.3
    assert m["roc_auc"] == pytest.approx(1 - 3 / 24)
    # threshold 0.5 alerts 0.9, 0.8, 0.7: 2 frauds of 3 alerts, 2 of 4 frauds
    assert (m["precision_at_threshold"], m["recall_at_threshold"]) == (pytest.approx(2 / 3), 0.5)
    # budget 20% of 10 rows = the top 2: both frauds
    assert (m["precision_at_budget"], m["recall_at_budget"]) == (1.0, 0.5)
    assert report.at_budget["alerts"] == 2 and report.at_budget["threshold"] == 0.8
    labels = np.array([1, 1, 1, 1, 0, 0, 0, 0, 0, 0])
    scores = handmade()["score"].to_numpy()
    assert m["brier"] == pytest.approx(float(np.mean((scores - labels) ** 2)))
    # episodes: A's burst (detected at its first fraud), A ten days later (detected), B (missed)
    e = report.episodes
    assert (e["episodes"], e["episodes_detected"]) == (3, 2)
    assert e["episode_detection_rate"] == pytest.approx(2 / 3)
    assert e["frauds_before_first_alert"] == 0
    assert sum(b["rows"] for b in report.calibration) == 10
    assert report.reconciliation == {"rows_in": 11, "scored": 10, "quarantined": 1}


def test_episodes_split_by_card_and_gap():
    frame = handmade()
    labels = frame["is_fraud"].astype(bool).to_numpy()
    ts = frame["ts"].to_numpy("datetime64[s]")
    found = episodes(frame["card_token"].to_numpy(), ts, labels, gap_hours=72)
    assert found[0] == found[1] != found[2]  # same card: one burst, then a new episode after 10 days
    assert len({found[0], found[2], found[3]}) == 3 and (found[~labels] == -1).all()
    # a gap longer than 10 days joins card A's frauds into one episode
    assert len(set(episodes(frame["card_token"].to_numpy(), ts, labels, gap_hours=300)[labels])) == 2


def test_bootstrap_resamples_whole_episodes():
    labels = np.array([1, 1, 0, 1, 0, 0])
    episode = np.array([0, 0, -1, 1, -1, -1])
    seen = []

    def figures(rows):
        seen.append(np.sort(rows))
        return {"frauds": float(labels[rows].sum())}

    intervals = bootstrap_by_episode(labels, episode, figures, rounds=40, seed=3)
    for rows in seen:
        assert {2, 4, 5} <= set(rows.tolist())  # every genuine row is kept
        frauds = rows[labels[rows] == 1].tolist()
        assert frauds.count(0) == frauds.count(1)  # episode 0's two rows always travel together
    low, high = intervals["frauds"]
    assert 1 <= low <= high <= 4


def test_intervals_hold_the_point_figures(tmp_path):
    report = evaluate_scored(handmade(), alert_budget=0.2, bootstrap_rounds=100)
    for name, (low, high) in report.confidence_intervals.items():
        point = report.metrics.get(name, report.episodes.get(name))
        assert low <= high and 0 <= low and high <= 1, name
        assert point is not None and low - 1e-9 <= point <= high + 1e-9 or name == "pr_auc"


def test_writes_json_and_a_self_contained_html(tmp_path):
    scores = handmade()
    report = evaluate_scored(scores, alert_budget=0.2, bootstrap_rounds=20)
    json_path, html_path = write_report(report, scores, tmp_path / "eval")
    doc = json.loads(json_path.read_text())
    assert doc["metrics"]["recall_at_budget"] == 0.5 and doc["episodes"]["episodes"] == 3
    assert doc["bootstrap"]["unit"] == "fraud episode" and doc["model"] == "cdp-fraud"
    page = html_path.read_text()
    assert page.count("data:image/png;base64,") == 3  # PR curve, calibration, score histogram
    assert "<script" not in page and "http://" not in page and "https://" not in page
    assert "crd_a" not in page  # figures only, no rows


def test_unlabelled_or_one_class_rows_are_refused_in_one_line():
    scores = handmade().drop(columns="is_fraud")
    with pytest.raises(EvaluationInputError, match="no fraud labels"):
        evaluate_scored(scores)
    genuine = handmade()
    genuine["is_fraud"] = pd.array([False] * 10, dtype="boolean")
    with pytest.raises(EvaluationInputError, match="both frauds and genuine"):
        evaluate_scored(genuine)
