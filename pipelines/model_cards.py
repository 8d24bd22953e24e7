"""Writing a version's model card at registration: what each model is for, what it was trained on and with.

`card_facts` holds what does not change between retrains (intended use, limitations, default owner, the
feature view and whether protected attributes are refused by its declared inputs); `build_card`
adds the version's own facts (data origin and snapshot, the feature list, the pipeline's evaluation on
its test split) and `ensure_card` stores it through the registry port unless the version has one. The
pipelines' registration step (`pipelines.local.registry_adapter`) calls it; the promotion gate calls it
too, for versions a SageMaker pipeline registered.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from cdp.registry.card_store import save
from cdp.registry.model_card import PIPELINE_EVALUATION, ModelCard, Validation, record_validation
from cdp.security.protected_attributes import (
    PROTECTED_ATTRIBUTES,
    SENSITIVE_NOT_PROTECTED,
    protected_inputs,
)
from cdp.synth.provenance import training_data_origin

if TYPE_CHECKING:
    from cdp.registry.port import ModelRegistry, ModelVersion
    from cdp.settings import Settings

CALIBRATION_METRICS = frozenset({"brier_score", "brier", "ece"})
# registered metrics measured against labels from outside the training data (a pipeline may log some);
# evaluations on labelled external data run later are added by `cdp evaluate --record` (ExternalEvaluation)
EXTERNAL_MARKERS = ("oracle", "external")

_PRIVACY = "The model sees no personal data: names, addresses, card numbers and e-mails are never features."


@dataclass(frozen=True)
class CardFacts:
    """What a model is for and how far it can be trusted, the same for every version."""

    intended_use: str
    owner: str
    view: str
    limitations: tuple[str, ...]
    declared_inputs: bool = False  # inputs declared in features/model_inputs.py (protected ones refused)


FRAUD = CardFacts(
    intended_use="Scores each card transaction with its probability of fraud so the fraud team reviews "
    "the highest-scored share of transactions (the alert budget). A decision aid for analysts, not an "
    "automatic decline; not for credit, marketing or any decision about a customer.",
    owner="fraud-analytics",
    view="fraud_card",
    limitations=(
        "Probabilities are shifted by class weighting: check calibration before reading a score as a "
        "probability; ranking (the alert budget) is unaffected.",
        "Labels arrive late and some months have none; performance on the newest months is known only "
        "once their labels arrive.",
        "Fraud patterns drift: the monitor tracks drift and delayed-label PR-AUC and triggers retraining.",
        "Alert and false-positive rates are measured by gender and age band at every promotion; gender "
        "and age are not inputs.",
        _PRIVACY,
    ),
)
CLV = CardFacts(
    intended_use="Estimates each customer's net card spend over the next 12 months, to size and rank "
    "marketing campaigns. Not for credit decisions, pricing or any decision with legal effect.",
    owner="marketing-analytics",
    view="customer",
    declared_inputs=True,
    limitations=(
        "Gender and age are never inputs; yearly income, FICO score and cards held are inputs and "
        "correlate with age: campaign selection on this score is checked for disparate impact (error "
        "by group in the card).",
        "Spend is net of refunds; unlabelled fraud counts as spend.",
        "Trained on customers as of earlier cut-offs: a change of economic regime shifts the level.",
        _PRIVACY,
    ),
)
SEGMENTATION = CardFacts(
    intended_use="Groups customers into named, stable behavioural segments (spending mix, channels, "
    "value) for campaign design and reporting. Not for credit decisions or pricing.",
    owner="marketing-analytics",
    view="customer",
    declared_inputs=True,
    limitations=(
        "Gender and age are never inputs; segments may still differ in composition by age or gender "
        "through behaviour: the composition is measured at every promotion (in the card).",
        "Segments are unsupervised: their names describe profiles, not verified customer intent.",
        _PRIVACY,
    ),
)
FACTS = {"cdp-fraud": FRAUD, "cdp-clv": CLV, "cdp-segmentation": SEGMENTATION}
FACTS_BY_KIND = {"classification": FRAUD, "regression": CLV, "segmentation": SEGMENTATION}


def card_facts(model_name: str, kind: str) -> CardFacts:
    """The facts of a model by name, else by kind (a classifier is a fraud model here)."""
    return FACTS.get(model_name) or FACTS_BY_KIND.get(kind, FRAUD)


def features_section(facts: CardFacts, inputs: tuple[str, ...]) -> dict[str, object]:
    """The card's features: the view, the inputs in model order, the protected attributes never used."""
    statement = (
        f"Inputs: the declared inputs of the `{facts.view}` view (features/model_inputs.py); the feature "
        "specs refuse protected attributes as inputs and the promotion gate refuses a model that has one."
        if facts.declared_inputs
        else f"Inputs: the `{facts.view}` view's behavioural features (point-in-time correct); the view "
        "holds no protected attribute and the promotion gate refuses a model that has one."
    )
    return {
        "view": facts.view,
        "inputs": list(inputs),
        "protected_excluded": sorted(PROTECTED_ATTRIBUTES - set(inputs)),
        "protected_inputs": protected_inputs(inputs),
        "sensitive_inputs": sorted(SENSITIVE_NOT_PROTECTED & set(inputs)),
        "statement": statement,
    }


def evaluation_validation(version: ModelVersion) -> Validation | None:
    """The pipeline's evaluation on its test split, from the registered metrics (None without metrics)."""
    if not version.metrics:
        return None
    figures = dict(version.metrics)
    calibration = {k: v for k, v in figures.items() if k in CALIBRATION_METRICS}
    external = {k: v for k, v in figures.items() if any(m in k for m in EXTERNAL_MARKERS)}
    metrics = {k: v for k, v in figures.items() if k not in calibration and k not in external}
    return Validation(
        at=version.created_at.isoformat(timespec="seconds"),
        by=PIPELINE_EVALUATION,
        outcome="evaluated",
        data="the pipeline's test split (the newest labelled period, unseen in training)",
        metrics=metrics,
        calibration=calibration,
        external=external,
    )


def build_card(version: ModelVersion, kind: str, settings: Settings) -> ModelCard:
    """A version's card at registration (no approver yet)."""
    facts = card_facts(version.model_name, kind)
    origin = training_data_origin(settings)
    training_data = {
        **origin,
        "data_snapshot_hash": version.lineage.data_snapshot_hash,
        "pipeline_run_id": version.lineage.pipeline_run_id,
        "code_version": version.lineage.code_version,
    }
    card = ModelCard(
        model_name=version.model_name,
        version=version.version,
        kind=kind,
        intended_use=facts.intended_use,
        owner=settings.model_owners.get(version.model_name, facts.owner),
        training_data=training_data,
        features=features_section(facts, version.lineage.features),
        limitations=facts.limitations,
        registered_by=version.registered_by,
        registered_at=version.created_at.isoformat(timespec="seconds"),
    )
    evaluated = evaluation_validation(version)
    return card if evaluated is None else record_validation(card, evaluated)


def ensure_card(registry: ModelRegistry, version: ModelVersion, kind: str, settings: Settings) -> ModelCard:
    """The version's newest card, written first if it has none."""
    stored = registry.load_card(version.model_name, version.version)
    if stored is not None:
        return ModelCard.from_dict(stored)
    card = build_card(version, kind, settings)
    save(registry, card)
    return card
