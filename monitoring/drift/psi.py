"""Population stability index (PSI) of a numeric score or a categorical column, reference vs current.

PSI = sum over bins of (c - r) * ln(c / r), with r and c the shares of the reference and current samples
in each bin. Numeric bins are the reference's deciles (so each holds ~10% of the reference); a small
floor on empty bins keeps the logarithm finite. Banks read PSI as < 0.1 stable, 0.1-0.25 watch, > 0.25 shift.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

EMPTY_BIN_SHARE = 1e-4


def _psi_of_shares(reference: np.ndarray, current: np.ndarray) -> float:
    r = np.maximum(reference, EMPTY_BIN_SHARE)
    c = np.maximum(current, EMPTY_BIN_SHARE)
    return float(np.sum((c - r) * np.log(c / r)))


def numeric_psi(
    reference: Sequence[float] | np.ndarray, current: Sequence[float] | np.ndarray, bins: int = 10
) -> float:
    """PSI of a numeric variable over the reference's quantile bins (missing values dropped)."""
    ref = np.asarray(reference, dtype=float)
    cur = np.asarray(current, dtype=float)
    ref, cur = ref[np.isfinite(ref)], cur[np.isfinite(cur)]
    if not len(ref) or not len(cur):
        raise ValueError("PSI needs values on both sides")
    edges = np.unique(np.quantile(ref, np.linspace(0, 1, bins + 1)[1:-1]))
    ref_counts = np.bincount(np.searchsorted(edges, ref, side="right"), minlength=len(edges) + 1)
    cur_counts = np.bincount(np.searchsorted(edges, cur, side="right"), minlength=len(edges) + 1)
    return _psi_of_shares(ref_counts / len(ref), cur_counts / len(cur))


def categorical_psi(reference: Sequence[object], current: Sequence[object]) -> float:
    """PSI of a categorical variable over the union of the values seen (missing is its own category)."""
    ref = ["<missing>" if v is None else str(v) for v in reference]
    cur = ["<missing>" if v is None else str(v) for v in current]
    if not ref or not cur:
        raise ValueError("PSI needs values on both sides")
    values = sorted(set(ref) | set(cur))
    index = {v: i for i, v in enumerate(values)}
    ref_counts = np.bincount([index[v] for v in ref], minlength=len(values))
    cur_counts = np.bincount([index[v] for v in cur], minlength=len(values))
    return _psi_of_shares(ref_counts / len(ref), cur_counts / len(cur))
