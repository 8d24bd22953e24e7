"""`cdp audit export`: audit records as JSON lines for a SIEM, with no personal data in them (nor in the
log they come from), in chain order, from a given time, by an admin only."""

from __future__ import annotations

import io
import json
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow.csv as pv
import pytest

from cdp.backends import Backends
from cdp.compliance.leakscan import LeakScanner
from cdp.corebanking.erasure import forget_customer
from cdp.corebanking.export import export_customer
from cdp.corebanking.load import load_core_banking
from cdp.security.audit.export import SCHEMA, export_jsonl, parse_since
from cdp.security.errors import AccessDenied
from cdp.security.vault import Caller
from cdp.synth.generator import generate
from tests.cli_support import cdp  # noqa: F401 - fixture
from tests.identity_support import issue

DPO = Caller("dpo-1", "privacy-officer")
MARKETING = Caller("m-1", "marketing")


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ibm")
    generate(out, users=3, seed=21, workers=1)
    return out


def _pii(source: Path) -> list[str]:
    users = pv.read_csv(source / "sd254_users.csv").to_pylist()
    cards = pv.read_csv(
        source / "sd254_cards.csv", convert_options=pv.ConvertOptions(column_types={"Card Number": "string"})
    ).to_pylist()
    contacts = pv.read_csv(source / "core_banking" / "contacts.csv").to_pylist()
    return [
        *(u["Person"] for u in users),
        *(u["Address"] for u in users),
        *(c["Card Number"] for c in cards),
        *(c["Email"] for c in contacts),
    ]


def _lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_the_export_and_the_log_hold_no_personal_data(source, isolated_home, tmp_path, cdp):  # noqa: F811
    b = Backends()
    admin = issue(b, "admin")
    load_core_banking(source, b)
    export_customer(0, DPO, b)  # subject-access export: audited
    token = b.protector.user_token(1)
    name = b.protector.encrypt_field(token, "person", "Someone Known")
    b.vault.reveal(Caller("fo-1", "fraud-ops"), token, {"person": name}, "fraud-alert")
    with pytest.raises(AccessDenied):
        b.vault.reveal(MARKETING, token, {"address": name}, "marketing-email")
    forget_customer(2, DPO, b)
    assert cdp(issue(b, "ds-1", "data-scientist"), "crypto", "status").exit_code == 3  # refused, audited
    out = tmp_path / "siem" / "audit.jsonl"
    out.parent.mkdir()
    result = cdp(admin, "audit", "export", "--since", "2000-01-01", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    events = _lines(out.read_text())
    actions = {e["action"] for e in events}
    assert {"export", "reveal", "forget", "erase"} <= actions and "key-status" in actions
    assert any(e["outcome"] == "denied" for e in events)
    scanner = LeakScanner(_pii(source))
    assert scanner.scan([out]) == []
    assert scanner.scan([isolated_home / "state" / "audit.sqlite"]) == []  # nor in the log itself
    # The export says what it is and keeps the chain: the SIEM can follow it record to record.
    assert all(e["schema"] == SCHEMA and e["source"] == "cdp" for e in events)
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert all(a["hash"] == b_["prev_hash"] for a, b_ in zip(events, events[1:], strict=False))
    exported = [r for r in Backends().audit.records() if r.action == "audit-export"]
    assert [(r.actor, r.details["records"]) for r in exported] == [("admin", len(events))]


def test_since_selects_the_records_at_or_after_it(isolated_home, cdp):  # noqa: F811
    b = Backends()
    admin = issue(b, "admin")
    for n in range(3):
        b.audit.append(
            actor="svc", role="ml-pipeline", action="probe", customer_token="-", fields=[],
            outcome="allowed", details={"n": n},
        )  # fmt: skip
    records = list(b.audit.records())
    cut = datetime.fromisoformat(records[-2].ts)
    buffer = io.StringIO()
    report = export_jsonl(records, cut, buffer)
    assert [e["details"]["n"] for e in _lines(buffer.getvalue())] == [1, 2]
    assert (report.records, report.first_seq, report.last_seq) == (2, records[-2].seq, records[-1].seq)
    everything = cdp(admin, "audit", "export", "--since", "1h")
    assert everything.exit_code == 0
    assert [e["seq"] for e in _lines(everything.stdout)][-3:] == [r.seq for r in records[-3:]]
    nothing = cdp(admin, "audit", "export", "--since", (datetime.now(UTC) + timedelta(days=1)).isoformat())
    assert nothing.exit_code == 0 and "0 audit records exported" in nothing.output
    bad = cdp(admin, "audit", "export", "--since", "last tuesday")
    assert bad.exit_code == 2 and bad.output.strip().startswith("--since takes an ISO date")


def test_only_an_admin_exports(isolated_home, cdp):  # noqa: F811
    b = Backends()
    issue(b, "admin")
    result = cdp(issue(b, "analyst-1", "analyst"), "audit", "export", "--since", "7d")
    assert result.exit_code == 3 and "needs admin" in result.output
    assert not any(r.action == "audit-export" and r.outcome == "allowed" for r in Backends().audit.records())


def test_a_record_that_looks_like_personal_data_is_redacted_not_forwarded(isolated_home):
    b = Backends()
    b.audit.append(
        actor="svc", role="-", action="bug", customer_token="-", fields=["email"], outcome="allowed",
        details={"note": "mail jane.doe@example.com", "pan": "4000123412341234"},
    )  # fmt: skip
    buffer = io.StringIO()
    report = export_jsonl(b.audit.records(), datetime(2000, 1, 1, tzinfo=UTC), buffer)
    assert report.redacted == 1
    text = buffer.getvalue()
    assert "jane.doe" not in text and "4000123412341234" not in text
    assert _lines(text)[-1]["details"]["redacted"].startswith("looked like personal data")


def test_since_reads_dates_times_and_durations():
    now = datetime(2026, 3, 2, 12, tzinfo=UTC)
    assert parse_since("2026-03-01", now) == datetime(2026, 3, 1, tzinfo=UTC)
    assert parse_since("2026-03-01T10:00+01:00", now) == datetime(2026, 3, 1, 9, tzinfo=UTC)
    assert parse_since("24h", now) == datetime(2026, 3, 1, 12, tzinfo=UTC)
    assert parse_since("90m", now) == datetime(2026, 3, 2, 10, 30, tzinfo=UTC)
    with pytest.raises(ValueError):
        parse_since("yesterday", now)
