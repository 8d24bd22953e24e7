"""Fairness: protected attributes are never inputs of the customer models (feature specs, training scripts,
promotion gate), and outcomes by gender and age band are measured and gated; a deliberately biased
candidate is rejected."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from cdp.backends import Backends
from cdp.lake.tables import LakeTable
from cdp.lake.writer import LakeWriter
from cdp.registry import APPROVED, REJECTED, Lineage
from cdp.registry.model_card import PROMOTION_GATE, ModelCard
from cdp.registry.scoring import load_scoring_model
from cdp.security.protected_attributes import protected_inputs
from cdp.settings import Settings
from features.customer import CUSTOMER_VIEW
from features.model_inputs import (
    CLV_INPUTS,
    MODEL_INPUTS,
    SEGMENTATION_INPUTS,
    ModelInputs,
    ProtectedInputError,
)
from monitoring.promotion import PromotionPolicy, promote
from monitoring.promotion.fairness import (
    OUTSIDE,
    TOO_FEW,
    WITHIN,
    FairnessLimits,
    fraud_fairness,
    gate_of,
    segment_fairness,
    wilson,
)
from monitoring.promotion.groups import age_band, customer_groups

POLICY = PromotionPolicy(latency_rows=10, max_latency_p99_ms=60_000.0, min_holdout_customers=20)
LIMITS = FairnessLimits()
N = 600


# -- protected attributes are never inputs ----------------------------------------------------------------


def test_the_customer_models_declare_no_protected_input():
    view = set(CUSTOMER_VIEW.feature_names)
    assert {"gender", "age_band_start"} <= view  # the view has them: leaving them out is a decision
    for declared in MODEL_INPUTS.values():
        assert not protected_inputs(declared.inputs)
        assert {"gender", "age_band_start"} <= set(declared.excluded)
    # income and FICO are not protected: inputs, named in the card as possible proxies
    assert {"yearly_income", "fico_score"} <= set(CLV_INPUTS.sensitive)


@pytest.mark.parametrize("attribute", ["gender", "age_band_start"])
def test_the_spec_refuses_a_protected_attribute_as_an_input(attribute):
    with pytest.raises(ProtectedInputError, match=attribute):
        ModelInputs("clv", CUSTOMER_VIEW, (*CLV_INPUTS.inputs, attribute)).check()
    with pytest.raises(ProtectedInputError, match="not in view"):
        ModelInputs("segmentation", CUSTOMER_VIEW, ("no_such_feature",)).check()
    SEGMENTATION_INPUTS.check()


def test_the_training_scripts_leave_protected_columns_out_whatever_the_table_holds(monkeypatch):
    import importlib

    from training.clv import train as clv_train

    monkeypatch.syspath_prepend(str(Path(clv_train.__file__).parent.parent / "segmentation"))
    segmentation_train = importlib.import_module("training.segmentation.train")  # imports its own naming.py
    frame = pd.DataFrame(
        {"user_token": ["a"], "net_spend_365d": [1.0], "gender": [1], "age_band_start": [40], "label": [2.0]}
    )
    assert clv_train.feature_columns(frame) == ["net_spend_365d"]
    assert segmentation_train.feature_columns(frame.drop(columns="label")) == ["net_spend_365d"]


def test_one_hot_names_of_a_protected_attribute_count_as_protected():
    assert protected_inputs(["amount", "gender_Female", "age_band_start", "birth_year_band_1960"]) == [
        "age_band_start", "birth_year_band_1960", "gender_Female",
    ]  # fmt: skip


# -- measuring ---------------------------------------------------------------------------------------------


def test_wilson_interval_holds_the_rate_and_narrows_with_more_rows():
    low, high = wilson(10, 100, 1.96)
    assert low < 0.1 < high
    wide, narrow = wilson(5, 50, 1.96), wilson(100, 1000, 1.96)
    assert narrow[1] - narrow[0] < wide[1] - wide[0]


def test_age_bands_from_ages():
    bands = age_band(pd.Series([19.0, 35.0, 50.0, 70.0, np.nan]))
    assert bands.tolist() == ["18-29", "30-44", "45-64", "65+", "unknown"]


def _groups(n: int = 20_000, seed: int = 1, rows_per_customer: int = 10) -> tuple[pd.DataFrame, np.ndarray]:
    """Row groups and each row's customer: a customer's rows share its gender and age band."""
    rng = np.random.default_rng(seed)
    customers = np.arange(n) // rows_per_customer
    people = customers.max() + 1
    gender = rng.choice(["Female", "Male"], people)[customers]
    band = rng.choice(["18-29", "30-44", "45-64", "65+"], people)[customers]
    return pd.DataFrame({"gender": gender, "age_band": band}), customers


def test_a_fair_fraud_model_passes_and_one_that_inflates_a_gender_fails():
    rng = np.random.default_rng(2)
    groups, customers = _groups()
    labels = (rng.random(len(groups)) < 0.01).astype(int)
    scores = np.clip(0.3 * labels + rng.random(len(groups)) * 0.5, 0, 1)

    fair = fraud_fairness(labels, scores, groups, customers, budget=0.02, limits=LIMITS)
    for measure in ("fraud_alert_rate", "fraud_false_positive_rate"):
        assert gate_of(fair[measure], LIMITS).passed, fair[measure]
        assert fair[measure]["verdict"].startswith("within the limits")

    biased = np.where(groups["gender"] == "Female", np.minimum(scores * 3, 1.0), scores)
    unfair = fraud_fairness(labels, biased, groups, customers, budget=0.02, limits=LIMITS)
    gate = gate_of(unfair["fraud_false_positive_rate"], LIMITS)
    assert not gate.passed and gate.comparison in ("<=", ">=")
    women, men = (unfair["fraud_alert_rate"]["groups"]["gender"][g] for g in ("Female", "Male"))
    assert women["status"] == OUTSIDE and women["ratio"] > LIMITS.max_ratio and women["interval"][0] > 1.25
    assert men["status"] == OUTSIDE and men["ratio"] < LIMITS.min_ratio
    assert women["customers"] + men["customers"] == 2_000 and women["rows"] + men["rows"] == 20_000
    assert unfair["fraud_alert_rate"]["verdict"] == "outside the limits"


def test_alerts_bunched_on_a_few_customers_are_not_read_as_a_group_effect():
    """Rows of one customer are not independent: a burst of alerts on a handful of customers (a fraud
    episode each) leaves the group's interval wide, where a row-level interval would call it unfair."""
    groups, customers = _groups(n=20_000, rows_per_customer=50)  # 400 customers
    scores = np.zeros(len(groups))
    women = np.flatnonzero(groups["gender"].to_numpy() == "Female")
    bursty = np.isin(customers, np.unique(customers[women])[:2])  # two women take every alert
    scores[bursty] = 1.0
    result = fraud_fairness(np.zeros(len(groups), int), scores, groups, customers, 0.005, LIMITS)
    female = result["fraud_alert_rate"]["groups"]["gender"]["Female"]
    assert female["ratio"] > LIMITS.max_ratio and female["status"] != OUTSIDE


def test_small_groups_are_counted_but_neither_judged_nor_shown():
    groups, customers = _groups(n=200, rows_per_customer=1)
    groups.loc[:9, "age_band"] = "65+"
    groups.loc[10:, "age_band"] = "30-44"
    scores = np.where(groups["age_band"] == "65+", 1.0, 0.0)  # every alert on the small group
    result = fraud_fairness(np.zeros(200, int), scores, groups, customers, budget=0.05, limits=LIMITS)
    small = result["fraud_alert_rate"]["groups"]["age_band"]["65+"]
    assert small == {"customers": 10, "status": TOO_FEW}  # no rate shown for 10 customers
    big = result["fraud_alert_rate"]["groups"]["age_band"]["30-44"]
    assert big["status"] == OUTSIDE and big["ratio"] == 0.0


def test_segment_composition_is_measured_and_gated_only_when_asked():
    groups, _ = _groups(n=2_000, rows_per_customer=1)
    segments = np.where(groups["gender"] == "Female", 0, 1)  # segments split exactly by gender
    result = segment_fairness(segments, groups, LIMITS)["segment_composition"]
    assert result["verdict"] == "outside the limits (reported, not gated)"
    assert result["groups"]["gender=Female"]["0"]["status"] == OUTSIDE
    mixed = segment_fairness(np.arange(2_000) % 2, groups, LIMITS)["segment_composition"]
    assert {g["status"] for m in mixed["groups"].values() for g in m.values()} == {WITHIN}


# -- gated end to end: promote() on small lake tables ----------------------------------------------------


def _write_table(backends: Backends, name: str, columns: dict) -> None:
    table = pa.table(columns)
    LakeWriter(backends.object_store, backends.settings.lake_bucket).replace_table(
        LakeTable(name, table.schema), table
    )
    backends.catalog.register_table(LakeTable(name, table.schema).info(backends.settings.lake_bucket))


@pytest.fixture(scope="module")
def lake(tmp_path_factory):
    """A customers table (gender, birth year band by token) and a CLV holdout in which yearly income is a
    proxy of gender (a model can be unfair without gender as an input)."""
    backends = Backends(Settings(home=tmp_path_factory.mktemp("fairness") / "home"))
    rng = np.random.default_rng(4)
    tokens = [f"usr_{i}" for i in range(N)]
    female = np.arange(N) % 2 == 1
    _write_table(
        backends,
        "customers",
        {
            "user_token": tokens,
            "gender": np.where(female, "Female", "Male").tolist(),
            "birth_year_band": [f"{b}-{b + 4}" for b in (1950 + 5 * (np.arange(N) % 9))],
        },
    )
    spend = rng.gamma(2.0, 50_000.0, N)
    _write_table(
        backends,
        "clv_training_set",
        {
            "user_token": tokens,
            "as_of": pa.array([datetime(2019, 3, 1)] * N, pa.timestamp("s")),
            "net_spend_365d": spend,
            "yearly_income": np.where(female, 90_000.0, 50_000.0),
            "age_band_start": (1950 + 5 * (np.arange(N) % 9)).astype(float),
            "heuristic_last_12m": spend * rng.uniform(0.6, 1.4, N),
            "label": 0.9 * spend + rng.normal(0, 2_000.0, N),
            "split": ["test"] * N,
        },
    )
    return backends


def _clv_model(folder: Path, features: list[str], inflate_female: float = 1.0) -> Path:
    """A booster predicting 0.9 * net_spend_365d, times `inflate_female` where the proxy says female."""
    import xgboost

    rng = np.random.default_rng(3)
    x = np.column_stack(
        [rng.gamma(2.0, 50_000.0, 800)] + [rng.choice([50_000.0, 90_000.0], 800)] * (len(features) - 1)
    )
    target = (
        0.9 * x[:, 0] * np.where(x[:, -1] > 70_000, inflate_female, 1.0)
        if len(features) > 1
        else 0.9 * x[:, 0]
    )
    booster = xgboost.train(
        {"objective": "reg:squarederror", "max_depth": 4, "seed": 1, "nthread": 1},
        xgboost.DMatrix(x, label=target, feature_names=features),
        num_boost_round=80,
    )
    folder.mkdir(parents=True)
    booster.save_model(str(folder / "model.ubj"))
    return folder


def _register(backends: Backends, name: str, folder: Path) -> int:
    lineage = Lineage("sha256:" + "0" * 64, load_scoring_model(folder).features, "test", "run-1")
    return backends.model_registry.register(name, folder, {}, {}, lineage, registered_by="pipeline").version


def test_a_fair_clv_candidate_passes_with_its_fairness_in_the_card(lake, tmp_path):
    _register(lake, "clv-fair", _clv_model(tmp_path / "fair", ["net_spend_365d", "yearly_income"]))
    decision = promote(lake, "clv-fair", policy=POLICY)

    assert decision.outcome == "challenger", decision.reasons  # a pass: shadow before any switch
    assert decision.gates["fairness_clv_error"].passed and decision.gates["no_protected_inputs"].passed
    card = ModelCard.from_dict(lake.model_registry.load_card("clv-fair", 1))  # written by the gate
    assert not card.approver and card.owner == "marketing-analytics"  # nobody approved a switch yet
    judged = card.latest(PROMOTION_GATE)
    assert judged is not None and judged.outcome == "challenger"
    error = judged.fairness["clv_error"]
    assert set(error["groups"]) == {"gender", "age_band"} and error["verdict"].startswith("within")
    assert {"Female", "Male"} == set(error["groups"]["gender"])
    assert f"{N} holdout rows" in judged.data


def test_a_clv_candidate_inflated_for_one_gender_is_rejected(lake, tmp_path):
    biased = _clv_model(tmp_path / "biased", ["net_spend_365d", "yearly_income"], inflate_female=1.4)
    _register(lake, "clv-biased", biased)
    decision = promote(lake, "clv-biased", policy=POLICY)

    assert decision.outcome == "rejected"  # better than the heuristic overall: only fairness fails
    assert [n for n, g in decision.gates.items() if not g.passed] == ["fairness_clv_error"]
    assert any(r.startswith("fairness_clv_error failed: ") for r in decision.reasons)
    registry = lake.model_registry
    assert registry.get("clv-biased", 1).status == REJECTED and registry.champion("clv-biased") is None
    card = ModelCard.from_dict(registry.load_card("clv-biased", 1))
    women = card.latest(PROMOTION_GATE).fairness["clv_error"]["groups"]["gender"]["Female"]
    assert women["status"] == OUTSIDE and women["ratio"] > POLICY.fairness_max_ratio
    assert card.approver is None


def test_a_candidate_with_a_protected_input_is_rejected(lake, tmp_path):
    folder = _clv_model(tmp_path / "aged", ["net_spend_365d", "age_band_start"])
    _register(lake, "clv-aged", folder)
    decision = promote(lake, "clv-aged", policy=POLICY)
    assert decision.outcome == "rejected"
    assert not decision.gates["no_protected_inputs"].passed
    assert lake.model_registry.get("clv-aged", 1).status == REJECTED


def test_without_customer_groups_there_is_no_decision(tmp_path):
    backends = Backends(Settings(home=tmp_path / "home"))
    _write_table(
        backends,
        "clv_training_set",
        {"user_token": ["u"] * 30, "net_spend_365d": [1.0] * 30, "heuristic_last_12m": [1.0] * 30,
         "label": [1.0] * 30, "split": ["test"] * 30},
    )  # fmt: skip
    assert customer_groups(backends, pd.Series(["u"]), 2019) is None
    _register(backends, "clv-nogroups", _clv_model(tmp_path / "m", ["net_spend_365d"]))
    decision = promote(backends, "clv-nogroups", policy=POLICY)
    assert decision.outcome == "no-decision" and "cannot be measured" in decision.reasons[0]
    assert backends.model_registry.get("clv-nogroups", 1).status not in (APPROVED, REJECTED)


def test_fairness_limits_come_from_the_settings(tmp_path):
    settings = Settings(
        home=tmp_path, fairness_max_ratio=1.5, fairness_min_ratio=0.7, fairness_gate_segments=True
    )
    limits = PromotionPolicy.from_settings(settings).fairness
    assert (limits.max_ratio, limits.min_ratio, limits.gate_segments) == (1.5, 0.7, True)
    assert PromotionPolicy.from_settings(Settings(home=tmp_path)).fairness == FairnessLimits()
