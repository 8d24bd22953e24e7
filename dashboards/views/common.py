"""What every page shares: the "no data yet" notice and money formatting."""

from __future__ import annotations

import pandas as pd
import streamlit as st

NO_DATA = "No data yet"


def no_data(what: str, how: str) -> None:
    """The notice a panel shows instead of a figure when its table is not built yet."""
    st.info(f"{NO_DATA}: {what}. {how}", icon=":material/hourglass_empty:")


def dollars(cents: float | int | None) -> str:
    return "-" if cents is None or pd.isna(cents) else f"${cents / 100:,.0f}"


def rate(part: float, whole: float) -> float | None:
    return None if not whole else float(part) / float(whole)
