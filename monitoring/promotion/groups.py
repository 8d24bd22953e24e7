"""Protected-group labels of holdout rows, joined from the lake's `customers` table by user token.

Only the token crosses: the holdout rows carry `user_token`, the customers table gives its gender and birth
year band (already banded and k-anonymous in the lake), and the age band is computed at the row's own
date (the transaction's, or the customer table's cut-off). No name, address or exact birth date is read,
and only group counts and rates leave this package.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cdp.backends import Backends

CUSTOMERS_TABLE = "customers"
UNKNOWN = "unknown"
# Age bands the fairness figures are reported by (upper bound inclusive); wider than the lake's 5-year
# bands so each group holds enough customers to judge.
AGE_BANDS = ((29, "18-29"), (44, "30-44"), (64, "45-64"), (200, "65+"))
ATTRIBUTES = ("gender", "age_band")


def has_customers(backends: Backends) -> bool:
    return any(t.name == CUSTOMERS_TABLE for t in backends.catalog.tables())


def age_band(ages: pd.Series) -> pd.Series:
    """Ages (years, float, NaN unknown) to the bands of AGE_BANDS."""
    out = pd.Series(UNKNOWN, index=ages.index, dtype=object)
    lower = -np.inf
    for upper, name in AGE_BANDS:
        out[(ages > lower) & (ages <= upper)] = name
        lower = upper
    return out


def _band_middle(bands: pd.Series) -> pd.Series:
    """ "1965-1969" -> 1967.0; anything else NaN."""
    parts = bands.astype("string").str.extract(r"^(\d{4})-(\d{4})$")
    return (parts[0].astype(float) + parts[1].astype(float)) / 2.0


def customer_groups(backends: Backends, tokens: pd.Series, years: pd.Series | int) -> pd.DataFrame | None:
    """One row per token (same index): `gender` and `age_band` (UNKNOWN where the customer is not found).
    `years` is the calendar year each row is dated (or one year for all). None without a customers table."""
    if not has_customers(backends):
        return None
    customers = backends.catalog.query(
        f"SELECT user_token, gender, birth_year_band FROM {CUSTOMERS_TABLE}"
    ).to_pandas()
    customers = customers.drop_duplicates("user_token").set_index("user_token")
    looked_up = customers.reindex(tokens.astype(str).to_numpy())
    at = np.asarray(years, dtype=float) if not isinstance(years, int) else float(years)
    ages = pd.Series(at - _band_middle(looked_up["birth_year_band"]).to_numpy(), index=tokens.index)
    gender = looked_up["gender"].fillna(UNKNOWN).astype(str).to_numpy()
    return pd.DataFrame({"gender": gender, "age_band": age_band(ages).to_numpy()}, index=tokens.index)
