"""`cdp notify run [--follow]`: the stream's fraud alerts become customer notices (as the `notifier`)."""

from __future__ import annotations

import time
from typing import Annotated

import typer

from cdp.console.access import authorized
from cdp.console.output import console

notify_app = typer.Typer(name="notify", help="Customer notices: fraud alerts become e-mails.")


@notify_app.command("run")
def notify_run_command(
    follow: Annotated[bool, typer.Option(help="Keep polling for new alerts after catching up.")] = False,
    idle_seconds: Annotated[float, typer.Option(help="Wait between polls with --follow.")] = 5.0,
) -> None:
    """Compose and send one notice per card episode of the new fraud alerts; print the counts."""
    notify_run(follow=follow, idle_seconds=idle_seconds)


def notify_run(*, follow: bool = False, idle_seconds: float = 5.0, show_sample: bool = False) -> None:
    """Run the notifier until caught up (or forever with `follow`); counts, and with `show_sample` the
    model context of one notice (no PII) and the path of one .eml in the outbox."""
    from cdp.backends import Backends
    from engagement.alerts import lake_alerts
    from engagement.wiring import build_notifier

    caller = authorized("notify")
    b = Backends()
    notifier = build_notifier(b, caller)
    while True:
        report = notifier.run(lake_alerts(b))
        skipped = ", ".join(f"{n} {r}" for r, n in sorted(report.skipped.items())) or "none"
        console.print(
            f"notices: {report.alerts:,} new alerts -> {report.notices:,} notices composed "
            f"({report.fallbacks:,} in plain wording), {report.attached:,} alerts joined a notified episode, "
            f"{report.capped:,} capped, skipped: {skipped}; {report.sent:,} sent via {b.mail.name}, "
            f"{report.dead:,} dead-lettered",
            soft_wrap=True,
        )
        if not follow:
            break
        time.sleep(idle_seconds)
    if show_sample and report.sent_ids:
        _print_sample(notifier, b, report.sent_ids[0])


def _print_sample(notifier, b, notice_id: str) -> None:  # noqa: ANN001 - Notifier, Backends
    row = notifier.ledger.con.execute(
        "SELECT template, writer, context_json, prompt_sha256 FROM notices WHERE notice_id = ?", (notice_id,)
    ).fetchone()
    console.print(f"notice {notice_id}: template {row[0]}, writer {row[1]}, prompt sha256 {row[3][:16]}...")
    console.print(f"  the text model's context (no PII): {row[2]}", soft_wrap=True, markup=False)
    folder = getattr(b.mail, "folder", None)
    for path in sorted(folder.glob(f"*{notice_id}.eml")) if folder is not None else []:
        console.print(f"  e-mail in core banking's outbox: {path}", soft_wrap=True)


campaign_app = typer.Typer(name="campaign", help="Marketing offers by segment and CLV band, with consent.")


@campaign_app.command("run")
def campaign_run_command(
    segment: Annotated[str, typer.Option(help="Segment name (the segmentation champion's vocabulary).")],
    clv_band: Annotated[str, typer.Option("--clv-band", help="CLV band: low, medium or high.")],
    dry_run: Annotated[
        bool, typer.Option(help="Count and show three samples (PII masked); send nothing.")
    ] = False,
) -> None:
    """Send the band's approved offer to the segment's customers who consented to marketing."""
    campaign_run(segment, clv_band, dry_run=dry_run)


def campaign_run(segment: str, clv_band: str, *, dry_run: bool = False) -> None:
    from cdp.backends import Backends
    from cdp.console.access import refuse
    from engagement.campaigns import CampaignRefused, campaign_selection, run_campaign
    from engagement.wiring import build_notifier, champion_kinds

    caller = authorized("campaign")
    try:
        campaign_selection(segment, clv_band)  # refused before any model or store is opened
    except CampaignRefused as e:
        refuse(e)
    b = Backends()
    kinds = champion_kinds(b)
    try:
        report = run_campaign(build_notifier(b, caller, kinds), kinds, segment, clv_band, dry_run=dry_run)
    except CampaignRefused as e:
        refuse(e)
    skipped = ", ".join(f"{n} {r}" for r, n in sorted(report.skipped.items())) or "none"
    console.print(
        f"campaign {report.segment!r} / CLV {report.clv_band}: {report.selected:,} customers selected, "
        f"skipped: {skipped}; {report.composed:,} offers composed"
        + (" (dry run: nothing sent)" if dry_run else f", {report.sent:,} sent"),
        soft_wrap=True,
        markup=False,
    )
    for i, sample in enumerate(report.samples, 1):
        console.print(f"--- sample {i} (PII masked) ---\n{sample}", soft_wrap=True, markup=False)
