"""Bad input ends in a quarantine record or one line naming file and line: never a traceback, never PII.

Each case corrupts a copy of a small generated data set, runs the CLI's real entry point (`main()`), and
checks the output, the CLI error log and every quarantine file for the source's names, addresses,
e-mails, card numbers and CVVs.
"""

from __future__ import annotations

import csv
import io
import os
import re
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pyarrow.csv as pv
import pyarrow.parquet as pq
import pytest

from app.cli import main
from cdp.settings import get_settings
from cdp.synth.generator import generate

USERS_FILE, CARDS_FILE = "sd254_users.csv", "sd254_cards.csv"
TX_FILE, CONTACTS = "credit_card_transactions-ibm_v2.csv", "core_banking/contacts.csv"


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ibm")
    generate(out, users=3, seed=11, start=date(2018, 6, 1), workers=1)
    return out


@dataclass(frozen=True)
class Pii:
    words: tuple[str, ...]  # names, addresses, e-mails, card numbers: never anywhere
    cvvs: tuple[str, ...]  # 3 digits: never as a number of their own in errors, logs, PII-file quarantine


def _pii(source: Path) -> Pii:
    users = pv.read_csv(source / USERS_FILE).to_pydict()
    as_text = pv.ConvertOptions(column_types={"Card Number": "string", "CVV": "string"})
    cards = pv.read_csv(source / CARDS_FILE, convert_options=as_text).to_pydict()
    emails = pv.read_csv(source / CONTACTS).to_pydict()["Email"]
    words = [*users["Person"], *users["Address"], *emails, *cards["Card Number"]]
    return Pii(tuple(words), tuple(cards["CVV"]))


# -- corruptions -----------------------------------------------------------------------------------------
def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines(keepends=True)


def _set_field(path: Path, line: int, column: str, value: str) -> None:
    rows = _lines(path)
    header = next(csv.reader([rows[0]]))
    row = next(csv.reader([rows[line - 1]]))
    row[header.index(column)] = value
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow(row)
    rows[line - 1] = buf.getvalue()
    path.write_text("".join(rows))


def _drop_header(path: Path) -> None:
    path.write_text("".join(_lines(path)[1:]))


def _email_to_name(d: Path) -> None:
    name = pv.read_csv(d / USERS_FILE).to_pydict()["Person"][1]
    _set_field(d / CONTACTS, 3, "Email", name)


def _address_as_extra_column(d: Path) -> None:
    address = pv.read_csv(d / USERS_FILE).to_pydict()["Address"][0]
    rows = _lines(d / CONTACTS)
    rows[1] = rows[1].rstrip("\n") + f",{address}\n"
    (d / CONTACTS).write_text("".join(rows))


def _truncate_last_card_in_its_pan(d: Path) -> None:
    text = (d / CARDS_FILE).read_text()
    last = text.rstrip("\n").rsplit("\n", 1)[1]
    pan_at = len(text.rstrip("\n")) - len(last) + last.index(next(csv.reader([last]))[4])
    (d / CARDS_FILE).write_text(text[: pan_at + 9])  # the row ends in the middle of its card number


def _binary(path: Path) -> None:
    path.write_bytes(bytes(range(128, 256)) * 20)


def _binary_tail(path: Path) -> None:
    with path.open("ab") as f:
        f.write(b"1,0,2019,1,1,00:00,$1.00," + bytes(range(128, 256)) + b"\n")


@dataclass(frozen=True)
class Quarantined:
    file: str
    line: int
    field: str | None


@dataclass(frozen=True)
class Refused:
    file: str
    line: int | None


@dataclass(frozen=True)
class Case:
    name: str
    corrupt: Callable[[Path], None]
    commands: tuple[tuple[str, ...], ...]
    expect: Quarantined | Refused


LOAD, BATCH, PROFILE, PRODUCE = ("load",), ("batch",), ("profile",), ("stream", "produce")


def _rename_amount(d: Path) -> None:
    (d / TX_FILE).write_text((d / TX_FILE).read_text().replace("Amount", "Amt", 1))


CASES = [
    Case("contacts: a user that is not a number beside an e-mail",
         lambda d: _set_field(d / CONTACTS, 2, "User", "x0"), (LOAD, BATCH),
         Quarantined(CONTACTS, 2, "User")),
    Case("contacts: a name where the e-mail should be", _email_to_name, (LOAD,),
         Quarantined(CONTACTS, 3, "Email")),
    Case("contacts: an address as an extra column", _address_as_extra_column, (LOAD,),
         Quarantined(CONTACTS, 2, None)),
    Case("contacts: no header", lambda d: _drop_header(d / CONTACTS), (LOAD,), Refused("contacts.csv", 1)),
    Case("users: a bad FICO score next to a name",
         lambda d: _set_field(d / USERS_FILE, 2, "FICO Score", "x"), (PROFILE, LOAD),
         Quarantined(USERS_FILE, 2, "FICO Score")),
    Case("users: no header (a customer on line 1)", lambda d: _drop_header(d / USERS_FILE),
         (PROFILE, LOAD, BATCH), Refused(USERS_FILE, 1)),
    Case("users: a binary file", lambda d: _binary(d / USERS_FILE), (LOAD,), Refused(USERS_FILE, 1)),
    Case("cards: a bad credit limit next to a PAN and CVV",
         lambda d: _set_field(d / CARDS_FILE, 2, "Credit Limit", "lots"), (LOAD,),
         Quarantined(CARDS_FILE, 2, "Credit Limit")),
    Case("cards: a bad expiry next to a PAN and CVV",
         lambda d: _set_field(d / CARDS_FILE, 3, "Expires", "13/20"), (PROFILE, LOAD),
         Quarantined(CARDS_FILE, 3, "Expires")),
    Case("cards: truncated in a card number", _truncate_last_card_in_its_pan, (LOAD,),
         Quarantined(CARDS_FILE, -1, None)),
    Case("cards: no header", lambda d: _drop_header(d / CARDS_FILE), (LOAD, PRODUCE), Refused(CARDS_FILE, 1)),
    Case("cards: missing", lambda d: (d / CARDS_FILE).unlink(), (LOAD, BATCH), Refused(CARDS_FILE, None)),
    Case("transactions: a bad amount", lambda d: _set_field(d / TX_FILE, 6, "Amount", "$1x.99"), (BATCH,),
         Quarantined(TX_FILE, 6, "Amount")),
    Case("transactions: a renamed column", _rename_amount, (PROFILE, BATCH), Refused(TX_FILE, 1)),
    Case("transactions: binary bytes at the end", lambda d: _binary_tail(d / TX_FILE), (BATCH, PRODUCE),
         Refused(TX_FILE, -1)),
]  # fmt: skip


def _run(home: Path, monkeypatch, capfd, *args: str) -> tuple[int, str]:
    monkeypatch.setenv("CDP_HOME", str(home))
    monkeypatch.setenv("CDP_WORKERS", "1")
    get_settings.cache_clear()
    monkeypatch.setattr(sys, "argv", ["cdp", *args])
    code = 0
    try:
        main()
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    captured = capfd.readouterr()
    return code, captured.out + captured.err


def _quarantine_records(home: Path) -> list[dict]:
    return [r for path in sorted(home.rglob("quarantine.parquet")) for r in pq.read_table(path).to_pylist()]


def _logs(home: Path) -> str:
    return "".join(p.read_text(errors="replace") for p in sorted((home / "logs").glob("*")) if p.is_file())


def _last_line(path: Path) -> int:
    return path.read_bytes().rstrip(b"\n").count(b"\n") + 1


# pytest takes over `sys.unraisablehook`: a traceback printed through it would not reach the output
@pytest.mark.filterwarnings("error::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input_is_reported_without_pii(case, source, tmp_path, monkeypatch, capfd):
    pii = _pii(source)
    data = tmp_path / "data"
    shutil.copytree(source, data)
    case.corrupt(data)
    home = tmp_path / "home"
    for command in case.commands:
        code, output = _run(home, monkeypatch, capfd, *command, str(data))
        assert "Traceback" not in output, output
        errors = [line for line in output.splitlines() if line.startswith("error:")]
        if isinstance(case.expect, Refused):
            assert code == 2, output
            assert len(errors) == 1 and case.expect.file in errors[0], output
            line = case.expect.line
            if line == -1:  # the file's last line
                line = _last_line(data / case.expect.file)
            if line is not None:
                assert f" line {line}:" in errors[0], errors
        else:
            assert code == 0 and errors == [], output
        checked = output + _logs(home)
        for word in pii.words:
            assert word not in checked, f"{command}: {word!r} leaked"
        if errors:
            for cvv in pii.cvvs:
                assert not re.search(rf"(?<![\w.$]){cvv}(?![\w.])", errors[0] + _logs(home)), cvv
    records = _quarantine_records(home)
    records_text = repr(records)
    for word in pii.words:
        assert word not in records_text, f"{word!r} in the quarantine"
    pii_records = " ".join(f"{r['field']} {r['reason']} {r['raw']}" for r in records if r["file"] != TX_FILE)
    for cvv in pii.cvvs:
        assert not re.search(rf"(?<![\w.$]){cvv}(?![\w.])", pii_records), cvv
    if isinstance(case.expect, Quarantined):
        want = case.expect
        line = _last_line(data / want.file) if want.line == -1 else want.line
        assert any(
            r["file"] == want.file and r["line"] == line and r["field"] == want.field for r in records
        ), records


def test_bad_contacts_rows_do_not_stop_the_others(source, tmp_path, monkeypatch, capfd):
    data = tmp_path / "data"
    shutil.copytree(source, data)
    _set_field(data / CONTACTS, 2, "User", "x0")
    code, output = _run(tmp_path / "home", monkeypatch, capfd, "load", str(data))
    assert code == 0 and "3 customers (2 with e-mail), " in output and "1 rows quarantined" in output


def test_an_unexpected_error_prints_its_type_only_and_logs_no_message(tmp_path, monkeypatch, capfd):
    import cdp.corebanking.load as load

    secret = "Melanie Johnston, 134 Zimmerman Trafficway"

    def boom(*_a, **_k):
        raise ValueError(f"could not parse {secret}")

    monkeypatch.setattr(load, "load_core_banking", boom)
    code, output = _run(tmp_path / "home", monkeypatch, capfd, "load", str(tmp_path))
    assert code == 1 and secret not in output
    [line] = output.strip().splitlines()
    assert line.startswith("error: unexpected ValueError; details in ") and "cli-errors.log" in line
    log = (tmp_path / "home" / "logs" / "cli-errors.log").read_text()
    assert secret not in log and "builtins.ValueError" in log and "in boom" in log
    assert oct(os.stat(tmp_path / "home" / "logs" / "cli-errors.log").st_mode & 0o777) == "0o600"
