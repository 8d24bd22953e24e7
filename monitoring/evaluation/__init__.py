"""Evaluation of any model version on labelled data: figures, episodes, bootstrap intervals, JSON + HTML."""

from __future__ import annotations

from monitoring.evaluation.evaluate import evaluate_model, evaluate_scored, write_report
from monitoring.evaluation.metrics import EvaluationInputError
from monitoring.evaluation.report import EvaluationReport

__all__ = ["EvaluationInputError", "EvaluationReport", "evaluate_model", "evaluate_scored", "write_report"]
