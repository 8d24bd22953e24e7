"""The lake's customers table singles nobody out: k-anonymous over every quasi-identifier column on a
generated bank, no exact income, debt or FICO score in it, and the bands behind it are sound."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cdp.backends import Backends
from cdp.batch.job import run_batch
from cdp.ibm.quarantine import Quarantine
from cdp.ibm.reader import read_users
from cdp.ibm.schema import USERS_FILE
from cdp.security import coarsen
from cdp.security.anonymity import (
    GENERALISATIONS,
    QUASI_IDENTIFIER_COLUMNS,
    QUASI_IDENTIFIERS,
    Banded,
    k_anonymise,
    record_level,
    smallest_class,
)
from cdp.security.coarsen import Bands
from cdp.security.protector import PROTECTED_USERS_SCHEMA
from cdp.settings import Settings
from cdp.synth.generator import generate

USERS, SEED = 150, 17
EXACT = ("yearly_income", "total_debt", "per_capita_income", "fico_score")  # unique per customer at source
BANDED = {g.name: g for g in GENERALISATIONS if isinstance(g, Banded)}


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("ibm")
    generate(out, users=USERS, seed=SEED, start=date(2019, 1, 1), workers=1)
    return out


@pytest.fixture(scope="module")
def users(source: Path, tmp_path_factory: pytest.TempPathFactory) -> pa.Table:
    with Quarantine(tmp_path_factory.mktemp("q")) as quarantine:
        return read_users(source / USERS_FILE, quarantine)


def _lake_customers(source: Path, home: Path, **overrides: object) -> pa.Table:
    backends = Backends(Settings(home=home, **overrides))
    run_batch(source, backends)
    return backends.catalog.query("SELECT * FROM customers")


def _class_sizes_sql(backends_table: pa.Table) -> list[int]:
    """Equivalence class sizes by DuckDB's GROUP BY (null a value like any other)."""
    import duckdb

    con = duckdb.connect()
    con.register("customers", backends_table)
    cols = ", ".join(f'"{c}"' for c in QUASI_IDENTIFIER_COLUMNS)
    sizes = con.execute(f"SELECT count(*) FROM customers GROUP BY {cols}").fetchall()
    con.close()
    return sorted(n for (n,) in sizes)


def test_every_column_but_the_token_and_ciphertexts_is_a_declared_quasi_identifier():
    others = [c for c in PROTECTED_USERS_SCHEMA.names if c != "user_token" and not c.endswith("_enc")]
    assert sorted(QUASI_IDENTIFIER_COLUMNS) == sorted(others)
    assert set(QUASI_IDENTIFIERS) == {
        "gender", "birth_year_band", "retirement_age", "city", "state", "zip3", "latitude", "longitude",
        "per_capita_income", "yearly_income", "total_debt", "fico_score", "num_credit_cards",
    }  # fmt: skip


def test_the_source_singles_customers_out(users: pa.Table):
    """What the generalisation is for: at the fixed bands alone most customers are unique."""
    fixed = record_level(users)
    banded = pa.table({c: fixed[c] for c in QUASI_IDENTIFIER_COLUMNS})
    assert smallest_class(banded) == 1
    exact = list(zip(*(users[name].to_pylist() for name in EXACT), strict=True))
    assert len(set(exact)) == USERS  # exact income, debt and score: one customer each


def test_the_lake_customers_table_is_k_anonymous(source: Path, users: pa.Table, tmp_path: Path):
    customers = _lake_customers(source, tmp_path / "home")
    assert customers.num_rows == users.num_rows == USERS
    sizes = _class_sizes_sql(customers)
    assert min(sizes) >= 5, f"equivalence classes smaller than 5: {[n for n in sizes if n < 5]}"
    assert sum(sizes) == USERS
    # the table still says something: not every quasi-identifier was given up
    assert len(sizes) > 1
    assert customers["birth_year_band"].null_count < USERS


def test_the_setting_raises_k(source: Path, tmp_path: Path):
    customers = _lake_customers(source, tmp_path / "home", customers_k_anonymity=12)
    assert min(_class_sizes_sql(customers)) >= 12


def test_no_exact_income_debt_or_fico_survives(source: Path, users: pa.Table, tmp_path: Path):
    customers = _lake_customers(source, tmp_path / "home").to_pylist()
    for row in customers:
        for name in EXACT:
            _assert_is_a_band(name, row[name], row[f"{name}_band"])
    # even before any generalisation (the fixed bands of one record), no exact value is left
    fixed = record_level(users)
    for name in EXACT:
        exact = np.asarray(users[name])
        kept = np.asarray(fixed[name])
        on_an_edge = exact % BANDED[name].ladder[0].width == 0
        assert not np.any((kept == exact) & ~on_an_edge), name
        assert len(set(kept.tolist())) < 0.2 * USERS, name
        for value, label in zip(kept.tolist(), fixed[f"{name}_band"].to_pylist(), strict=True):
            _assert_is_a_band(name, value, label)


def _assert_is_a_band(name: str, lower: int | None, label: str | None) -> None:
    """A value is null or the lower bound of a band of one of the attribute's levels, spelt by its label."""
    if lower is None:
        assert label is None, name
        return
    m = re.fullmatch(r"(\d+)(?:-(\d+))?(\+)?", label)
    assert m is not None and int(m.group(1)) == lower, (name, lower, label)
    widths = [b.width for b in BANDED[name].ladder]
    top = BANDED[name].ladder[0].top
    if m.group(3):
        assert lower == top, (name, label)
    else:
        width = int(m.group(2)) - lower + 1
        assert width in widths and lower % width == 0 and width > 1, (name, label)


def test_fewer_customers_than_k_keep_no_quasi_identifier(users: pa.Table):
    fixed = _fixed_table(users.slice(0, 3))
    out = k_anonymise(fixed, 5)
    assert out.suppressed == 3 and out.smallest_class == 3
    for c in QUASI_IDENTIFIER_COLUMNS:
        assert out.table[c].null_count == 3, c
    assert out.table["user_token"] == fixed["user_token"]


def test_k_of_one_keeps_the_fixed_bands_and_the_result_is_deterministic(users: pa.Table):
    fixed = _fixed_table(users)
    assert k_anonymise(fixed, 1).table == fixed
    first, again = k_anonymise(fixed, 5), k_anonymise(fixed, 5)
    assert first.table == again.table and first.levels == again.levels
    assert any(level > 0 for level in first.levels.values()) and first.smallest_class >= 5


def _fixed_table(users: pa.Table) -> pa.Table:
    n = users.num_rows
    columns = {c: pa.nulls(n, PROTECTED_USERS_SCHEMA.field(c).type) for c in PROTECTED_USERS_SCHEMA.names}
    columns["user_token"] = pa.array([f"usr_{i}" for i in range(n)])
    columns.update(record_level(users))
    return pa.Table.from_arrays(
        [columns[f.name].cast(f.type) for f in PROTECTED_USERS_SCHEMA], schema=PROTECTED_USERS_SCHEMA
    )


# -- the bands ---------------------------------------------------------------------------------------------
LADDERS = sorted({b for g in BANDED.values() for b in g.ladder}, key=lambda b: (b.width, b.top or 0))


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(LADDERS), st.lists(st.integers(0, 2_000_000), min_size=1, max_size=50))
def test_bands_cover_every_value_and_keep_its_order(bands: Bands, values: list[int]):
    lower = bands.lower_bound(pa.array(values, pa.int64())).to_pylist()
    for v, lo in zip(values, lower, strict=True):
        if bands.top is not None and v >= bands.top:
            assert lo == bands.top  # the open top band
        else:
            assert lo <= v < lo + bands.width and lo % bands.width == 0  # covering, aligned
    order = sorted(range(len(values)), key=lambda i: values[i])
    assert [lower[i] for i in order] == sorted(lower)  # monotone


@pytest.mark.parametrize("bands", LADDERS, ids=lambda b: f"w{b.width}-top{b.top}")
def test_band_edges_and_labels(bands: Bands):
    edge = 3 * bands.width
    got = bands.lower_bound(pa.array([edge - 1, edge, edge + bands.width - 1], pa.int64())).to_pylist()
    if bands.top is None or edge + bands.width - 1 < bands.top:
        assert got == [edge - bands.width, edge, edge]
    labels = bands.label(pa.array([edge, None], pa.int64())).to_pylist()
    if bands.top is None or edge < bands.top:
        expected = str(edge) if bands.width == 1 else f"{edge}-{edge + bands.width - 1}"
        assert labels == [expected, None]
    if bands.top is not None:
        top = bands.lower_bound(pa.array([bands.top - 1, bands.top, 10 * bands.top], pa.int64())).to_pylist()
        assert top == [bands.top - bands.width, bands.top, bands.top]
        assert bands.label(pa.array([bands.top], pa.int64())).to_pylist() == [f"{bands.top}+"]


@settings(max_examples=100, deadline=None)
@given(st.sampled_from(sorted(BANDED)), st.lists(st.integers(0, 1_000_000), min_size=1, max_size=30))
def test_each_level_of_a_ladder_holds_the_bands_of_the_level_below(name: str, values: list[int]):
    ladder = BANDED[name].ladder
    array = pa.array(values, pa.int64())
    for finer, coarser in zip(ladder, ladder[1:], strict=False):
        assert coarser.lower_bound(finer.lower_bound(array)) == coarser.lower_bound(array)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(1900, 2010), min_size=1, max_size=30))
def test_birth_year_bands_widen_into_bands_that_hold_them(years: list[int]):
    fine = coarsen.birth_year_band(pa.array(years, pa.int16()), 5)
    for width in (10, 20):
        wide = coarsen.widen_birth_year_band(fine, width).to_pylist()
        assert wide == coarsen.birth_year_band(pa.array(years, pa.int16()), width).to_pylist()
        for y, band in zip(years, wide, strict=True):
            start, end = map(int, band.split("-"))
            assert start <= y <= end and end - start + 1 == width


def test_bands_reject_a_top_off_their_grid():
    with pytest.raises(ValueError, match="multiple"):
        Bands(20_000, top=250_000)


# -- the generaliser on arbitrary small tables --------------------------------------------------------------
@settings(max_examples=60, deadline=None)
@given(
    st.integers(0, 60),
    st.integers(1, 8),
    st.randoms(use_true_random=False),
)
def test_any_table_comes_out_k_anonymous(n: int, k: int, rnd):
    rows = [
        {
            "user": i, "line": i + 2, "person": "x", "current_age": 40, "retirement_age": rnd.randint(60, 70),
            "birth_year": rnd.randint(1930, 2000), "birth_month": 1, "gender": rnd.choice(["Female", "Male"]),
            "address": "x", "apartment": None, "city": rnd.choice(["A", "B", "C"]), "state": rnd.choice("XY"),
            "zipcode": rnd.choice(["12345", "12399", "54321"]), "latitude": rnd.uniform(25, 48),
            "longitude": rnd.uniform(-120, -70), "per_capita_income": rnd.randint(5_000, 60_000),
            "yearly_income": rnd.randint(0, 300_000), "total_debt": rnd.randint(0, 400_000),
            "fico_score": rnd.randint(300, 850), "num_credit_cards": rnd.randint(1, 9),
        }
        for i in range(n)
    ]  # fmt: skip
    from cdp.ibm.schema import USERS_SCHEMA

    out = k_anonymise(_fixed_table(pa.Table.from_pylist(rows, schema=USERS_SCHEMA)), k)
    assert out.table.num_rows == n and out.table.schema == PROTECTED_USERS_SCHEMA
    if n >= k:
        assert smallest_class(out.table) >= k and out.smallest_class >= k
    else:
        assert all(out.table[c].null_count == n for c in QUASI_IDENTIFIER_COLUMNS)


def test_erasures_leave_the_table_k_anonymous(source: Path, tmp_path: Path):
    """Removing erased customers' rows shrinks their class: the remaining members of a class that fell
    below k lose their quasi-identifiers instead of standing out (the table stays k-anonymous)."""
    from cdp.lake.erasure import remove_customer

    backends = Backends(Settings(home=tmp_path / "home"))
    run_batch(source, backends)
    customers = backends.catalog.query("SELECT * FROM customers")
    codes = [tuple(row[c] for c in QUASI_IDENTIFIER_COLUMNS) for row in customers.to_pylist()]
    sizes = {c: codes.count(c) for c in set(codes)}
    smallest = min(sizes, key=lambda c: (sizes[c], str(c)))
    members = [customers["user_token"][i].as_py() for i, c in enumerate(codes) if c == smallest]
    victims = members[: sizes[smallest] - 4]  # leave 4 of them: one below k = 5
    for token in victims:
        remove_customer(backends.object_store, backends.settings.lake_bucket, token, k_anonymity=5)
    after = backends.catalog.query("SELECT * FROM customers")
    assert after.num_rows == customers.num_rows - len(victims)
    assert min(_class_sizes_sql(after)) >= 5
    # a plain removal would have left a class of 4
    plain = customers.filter(pa.compute.invert(pa.compute.is_in(customers["user_token"], pa.array(victims))))
    assert smallest_class(plain) == 4
