"""Campaigns: offers by segment and CLV band to consenting customers only, never selected by age or
gender, capped, sent once; a dry run counts and shows three samples with PII masked."""

from __future__ import annotations

import email
from email import policy

import pytest
from typer.testing import CliRunner

from app.main import app
from cdp.compliance.leakscan import LeakScanner
from cdp.corebanking.contact_preferences import ContactPreferenceStore
from cdp.mail.outbox import outbox_dir
from cdp.settings import get_settings
from engagement.campaigns import MASK, CampaignRefused, campaign_selection, run_campaign
from engagement.context import CustomerKind
from tests.identity_support import issue
from tests.notify_support import build_world, pii_values
from tests.notify_support import email as email_of

SEGMENT = "high-value online shoppers"


def _world_and_kinds(users: int = 5):  # noqa: ANN202
    world = build_world(users)
    kinds = {world.user_token(u): CustomerKind("young " + SEGMENT, "high") for u in range(4)}
    kinds[world.user_token(4)] = CustomerKind("everyday spenders", "high")  # another segment
    prefs = ContactPreferenceStore.from_settings(world.b.settings)
    for u in (0, 1, 4):
        prefs.set(u, marketing=True)  # customer 2 and 3 never consented (the default)
    return world, kinds


def _sent_to(world) -> list[str]:  # noqa: ANN001
    folder = outbox_dir(world.b.settings)
    mails = [
        email.message_from_bytes(f.read_bytes(), policy=policy.default) for f in folder.glob("*ofr-*.eml")
    ]
    return sorted(m["To"] for m in mails)


@pytest.mark.parametrize(
    ("segment", "band"),
    [("young online shoppers", "high"), ("senior diners", "low"), ("female shoppers", "high"),
     ("ignore previous instructions", "high"), (SEGMENT, "platinum")],
)  # fmt: skip
def test_campaigns_selecting_by_protected_attributes_or_unknown_words_are_refused(segment, band):
    with pytest.raises(CampaignRefused):
        campaign_selection(segment, band)


def test_a_dry_run_counts_and_shows_three_masked_samples_and_sends_nothing():
    world, kinds = _world_and_kinds()
    for u in (2, 3):
        ContactPreferenceStore.from_settings(world.b.settings).set(u, marketing=True)
    report = run_campaign(world.notifier(), kinds, SEGMENT, "high", dry_run=True)
    assert (report.selected, report.composed, len(report.samples)) == (4, 4, 3)
    assert all(MASK in s and "{first_name}" not in s for s in report.samples)
    assert all(not list(LeakScanner(pii_values(5)).scan_text(s, "sample", "text")) for s in report.samples)
    assert all("young" not in s for s in report.samples)  # the age word never words an offer
    assert _sent_to(world) == [] and world.notifier().ledger.statuses() == {}


def test_offers_go_to_consenting_customers_of_the_segment_and_band_once():
    world, kinds = _world_and_kinds()
    report = run_campaign(world.notifier(), kinds, SEGMENT, "high")
    assert report.selected == 4 and report.skipped == {"no-consent": 2} and report.sent == 2
    assert _sent_to(world) == [email_of(0), email_of(1)]
    again = run_campaign(world.notifier(), kinds, SEGMENT, "high")
    assert again.sent == 0 and again.skipped == {"no-consent": 2, "already-sent": 2}
    other = run_campaign(world.notifier(), kinds, "everyday spenders", "high")
    assert other.sent == 1
    capped = run_campaign(world.notifier(), {**kinds, world.user_token(0): CustomerKind("diners", "high")},
                          "diners", "high")  # fmt: skip
    assert capped.skipped == {"capped": 1} and capped.sent == 0


def test_cdp_campaign_run_refuses_an_age_segment_in_one_line(monkeypatch):
    world, _ = _world_and_kinds(1)
    monkeypatch.setenv("CDP_IDENTITY_FILE", str(issue(world.b, "notifier-1", "notifier")))
    get_settings.cache_clear()
    result = CliRunner().invoke(
        app, ["campaign", "run", "--segment", "young online shoppers", "--clv-band", "high", "--dry-run"]
    )
    assert result.exit_code == 3 and "may not select by age or gender" in result.output
