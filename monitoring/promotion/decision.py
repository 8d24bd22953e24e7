"""What the promotion gate decided, and why: a frozen record, JSON-ready and printable with rich."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from rich.console import Group
from rich.table import Table
from rich.text import Text

APPROVED = "approved"  # kept for readers of older reports: the gate no longer switches by itself
CHALLENGER = "challenger"
REJECTED = "rejected"
NO_DECISION = "no-decision"
Outcome = Literal["challenger", "approved", "rejected", "no-decision"]


@dataclass(frozen=True)
class GateResult:
    """One gate: did the candidate pass, with the measured value and the limit it was held to."""

    passed: bool
    value: float | None
    limit: float
    comparison: str  # ">=" or "<=": how value must stand against limit

    def to_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "value": finite_or_none(self.value),
            "limit": self.limit,
            "comparison": self.comparison,
        }


@dataclass(frozen=True)
class PromotionDecision:
    """The gate's decision on one candidate version.

    `outcome`: `challenger` (passed every gate: now the challenger, scored in shadow beside the champion
    until the shadow comparison and the approval policy decide the switch), `rejected` (status Rejected;
    the champion is unchanged) or `no-decision` (status stays PendingManualApproval: e.g. no labelled
    holdout yet; decide again later).
    `metrics`: {metric: {"candidate": value, "champion": value or None}} on the same holdout.
    """

    model_name: str
    candidate_version: int | None
    champion_version: int | None
    outcome: Outcome
    reasons: list[str]
    metrics: Mapping[str, Mapping[str, float | None]] = field(default_factory=dict)
    gates: Mapping[str, GateResult] = field(default_factory=dict)
    holdout: Mapping[str, Any] = field(default_factory=dict)  # what the comparison ran on
    dry_run: bool = False

    @property
    def passed(self) -> bool:
        """Every gate passed: the candidate is now the challenger."""
        return self.outcome in (CHALLENGER, APPROVED)

    def to_dict(self) -> dict[str, Any]:
        return {
            "model_name": self.model_name,
            "candidate_version": self.candidate_version,
            "champion_version": self.champion_version,
            "outcome": self.outcome,
            "dry_run": self.dry_run,
            "reasons": list(self.reasons),
            "metrics": {
                name: {who: finite_or_none(v) for who, v in values.items()}
                for name, values in self.metrics.items()
            },
            "gates": {name: gate.to_dict() for name, gate in self.gates.items()},
            "holdout": dict(self.holdout),
        }

    def __rich__(self) -> Group:
        colour = {CHALLENGER: "green", APPROVED: "green", REJECTED: "red"}.get(self.outcome, "yellow")
        champion = f"v{self.champion_version}" if self.champion_version else "none"
        candidate = f"v{self.candidate_version}" if self.candidate_version else "none"
        title = Text.assemble(
            (f"{self.model_name} ", "bold"),
            f"candidate {candidate} vs champion {champion}: ",
            (self.outcome + (" (dry run)" if self.dry_run else ""), f"bold {colour}"),
        )
        metrics = Table("metric", "candidate", "champion", title="metrics on the holdout")
        for name, values in self.metrics.items():
            metrics.add_row(name, _figure(values.get("candidate")), _figure(values.get("champion")))
        gates = Table("gate", "passed", "value", "limit", title="gates")
        for name, gate in self.gates.items():
            mark = "[green]yes[/green]" if gate.passed else "[red]no[/red]"
            gates.add_row(name, mark, _figure(gate.value), f"{gate.comparison} {gate.limit:.4g}")
        reasons = Text("\n".join(f"- {r}" for r in self.reasons))
        return Group(title, metrics, gates, reasons)


def finite_or_none(value: float | None) -> float | None:
    """JSON has no infinity or NaN: such a figure (e.g. a ratio to a zero baseline) is reported as null."""
    return value if value is not None and math.isfinite(value) else None


def _figure(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"
