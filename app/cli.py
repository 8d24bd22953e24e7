"""`cdp`: the single command-line entry point of the platform (the console script, `app.main`, adds
`cdp demo`, which drives these commands).

Heavy libraries are imported inside the commands so that `cdp --help` starts fast.
"""

from __future__ import annotations

import json
import sys
from datetime import date
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from cdp.settings import Settings, get_settings

app = typer.Typer(
    name="cdp",
    help="Secure Customer Data Platform and ML platform for banks.",
    no_args_is_help=True,
    add_completion=False,
)
console = Console(stderr=False)
err_console = Console(stderr=True)


def _progress() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
        transient=False,
    )


@app.command()
def generate(
    users: Annotated[int | None, typer.Option(help="Number of users (2,000 = the real size).")] = None,
    out: Annotated[Path | None, typer.Option(help="Output folder (default: $CDP_HOME/data).")] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed (default: CDP_SEED).")] = None,
    start: Annotated[str | None, typer.Option(help="First day of history, YYYY-MM-DD.")] = None,
    end: Annotated[str | None, typer.Option(help="Last day of history, YYYY-MM-DD.")] = None,
    workers: Annotated[int | None, typer.Option(help="Worker processes.")] = None,
) -> None:
    """Write IBM-format users, cards and transactions, plus a hidden ground truth."""
    s = get_settings()
    run_generate(
        s,
        users=users or s.users,
        out=out or s.data_dir,
        seed=s.seed if seed is None else seed,
        start=date.fromisoformat(start) if start else s.start,
        end=date.fromisoformat(end) if end else s.end,
        workers=workers or s.workers,
    )


def run_generate(
    s: Settings, *, users: int, out: Path, seed: int, start: date, end: date, workers: int
) -> None:
    from cdp.synth.generator import generate as _generate

    out.mkdir(parents=True, exist_ok=True)
    with _progress() as progress:
        task = progress.add_task(f"generating {users:,} users", total=users)
        summary = _generate(
            out,
            users=users,
            seed=seed,
            start=start,
            end=end,
            clv_cutoff=s.clv_cutoff,
            workers=workers,
            progress=lambda done, total: progress.update(task, completed=done, total=total),
        )
    console.print(f"[green]wrote[/green] {out}  ({summary})")


@app.command()
def profile(
    directory: Annotated[Path | None, typer.Argument(help="Folder with the IBM files.")] = None,
    users: Annotated[Path | None, typer.Option(help="Users file (sd254_users.csv).")] = None,
    cards: Annotated[Path | None, typer.Option(help="Cards file (sd254_cards.csv).")] = None,
    transactions: Annotated[Path | None, typer.Option(help="Transactions file.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Validate the IBM files (bad rows to quarantine) and print their statistics and realism checks."""
    from cdp.ibm.profile import profile_files, realism_checks
    from cdp.ibm.reader import find_source_files

    s = get_settings()
    if directory is None and not (users or cards or transactions):
        directory = s.data_dir
    if directory is not None:
        found = find_source_files(directory)
        users = users or found.users
        cards = cards or found.cards
        transactions = transactions or found.transactions
    result = profile_files(
        users=users, cards=cards, transactions=transactions, quarantine_dir=s.quarantine_dir
    )
    checks = realism_checks(result)
    if as_json:
        payload = result.to_dict()
        payload["realism_checks"] = [c.__dict__ if hasattr(c, "__dict__") else c for c in checks]
        sys.stdout.write(json.dumps(payload, indent=2, default=str) + "\n")
        return
    result.render(console)
    _render_checks(checks)


def _render_checks(checks: list) -> None:
    from rich.table import Table

    table = Table(title="Realism checks")
    for col in ("check", "value", "target", ""):
        table.add_column(col)
    for c in checks:
        table.add_row(c.name, str(c.value), str(c.target), "[green]pass" if c.passed else "[red]FAIL")
    console.print(table)


stream_app = typer.Typer(help="The real-time path: replay the newest transactions, consume them.")
audit_app = typer.Typer(help="The hash-chained audit trail.")
app.add_typer(stream_app, name="stream")
app.add_typer(audit_app, name="audit")


def _source(directory: Path | None) -> Path:
    return directory or get_settings().data_dir


@app.command()
def load(directory: Annotated[Path | None, typer.Argument(help="Folder with the IBM files.")] = None) -> None:
    """Load customers and cards (with their PII) into the core-banking OLTP store (idempotent)."""
    from cdp.corebanking.load import load_core_banking

    r = load_core_banking(_source(directory))
    if r.migrated_cards:
        console.print(
            f"core banking: {r.migrated_cards:,} old-format cards migrated (CVV and clear PAN removed)"
        )
    console.print(
        f"core banking: {r.customers:,} customers ({r.with_email:,} with e-mail), {r.cards:,} cards"
        f"{f', {r.quarantined:,} rows quarantined' if r.quarantined else ''}"
    )


@app.command("migrate-core-banking")
def migrate_core_banking() -> None:
    """Migrate a core-banking store written by an earlier release: drop CVVs, encrypt clear PANs."""
    from cdp.corebanking.migrate import migrate_core_banking as _migrate

    r = _migrate()
    console.print(
        f"core banking: {r.cards:,} cards migrated (CVV and clear PAN removed)"
        if r.cards
        else "core banking: nothing to migrate"
    )


@app.command()
def batch(
    directory: Annotated[Path | None, typer.Argument(help="Folder with the IBM files.")] = None,
) -> None:
    """Batch path: validate, protect and write the oldest ~95% of transactions to the lake (resumable)."""
    from cdp.batch.job import run_batch

    with _progress() as progress:
        task = progress.add_task("batch -> lake (MB)", total=None)

        def step(done: int, total: int) -> None:
            progress.update(task, completed=done >> 20, total=total >> 20)

        r = run_batch(_source(directory), progress=step)
    for name, st in r.files.items():
        console.print(
            f"{name}: read {st['rows_read']:,} = accepted {st['rows_accepted']:,} "
            f"+ quarantined {st['rows_quarantined']:,}"
        )
    console.print(
        f"lake: {r.batch_rows:,} transactions (batch), {r.stream_rows:,} left for the stream "
        f"(ts >= {r.split.cutoff:%Y-%m-%d %H:%M}); shards {r.chunks} ({r.chunks_skipped} already done); "
        f"quarantine: {r.quarantine_path}"
    )


@stream_app.command("produce")
def stream_produce(
    directory: Annotated[Path | None, typer.Argument(help="Folder with the IBM files.")] = None,
    rate: Annotated[
        float | None, typer.Option(help="Events per second (default: as fast as possible).")
    ] = None,
    limit: Annotated[int | None, typer.Option(help="Send at most this many events in this run.")] = None,
    drift: Annotated[
        str | None,
        typer.Option(help="Inject drift from --drift-from on: amount-shift or fraud-pattern (demo, tests)."),
    ] = None,
    drift_from: Annotated[
        float, typer.Option(help="Share of the replay after which the drift starts.", min=0, max=1)
    ] = 0.5,
    upto: Annotated[int | None, typer.Option(help="Stop at this position of the replay.", min=0)] = None,
) -> None:
    """Replay the newest ~5% of transactions in time order through core banking into the stream."""
    from cdp.streaming.drift_injection import DriftScenario
    from cdp.streaming.produce import produce

    scenario = DriftScenario(drift, start_fraction=drift_from, seed=get_settings().seed) if drift else None
    with _progress() as progress:
        task = progress.add_task("stream produce", total=None)
        r = produce(
            _source(directory),
            rate=rate,
            limit=limit,
            progress=lambda done, total: progress.update(task, completed=done, total=total),
            drift=scenario,
            upto=upto,
        )
    console.print(
        f"stream: sent {r.sent:,} events ({r.already_sent:,} earlier) of {r.total:,} "
        f"in {r.seconds:.1f}s; cutoff {r.cutoff:%Y-%m-%d %H:%M}"
        + (f"; drift {r.drift['kind']}: {r.drift_rows:,} rows changed" if r.drift else "")
    )


@stream_app.command("consume")
def stream_consume(
    follow: Annotated[bool, typer.Option(help="Keep polling after catching up.")] = False,
) -> None:
    """Consume the stream into the lake until caught up (checkpointed, idempotent by transaction id)."""
    from cdp.streaming.lake_sink import consume

    r = consume(follow=follow)
    console.print(
        f"lake sink: {r.records:,} records read, {r.written:,} landed, {r.duplicates:,} duplicates dropped"
    )


@stream_app.command("run")
def stream_run(
    follow: Annotated[bool, typer.Option(help="Keep polling after catching up.")] = False,
) -> None:
    """Score the stream with the fraud champion: online features, score, enriched rows and alerts."""
    from inference.streaming.runner import run_stream

    r = run_stream(follow=follow)
    console.print(
        f"stream handler: {r.records:,} records, {r.deliveries:,} batches, "
        f"{r.partial_failures:,} with failed records, {r.dead_lettered:,} dead-lettered"
    )


@app.command()
def sql(
    query: Annotated[str, typer.Argument(help="One SELECT over the lake tables (DuckDB SQL).")],
    limit: Annotated[int, typer.Option(help="Rows to print.")] = 50,
) -> None:
    """Run one read-only SELECT over the lake tables (the analyst sandbox: DuckDB locally, the analyst
    Athena workgroup in AWS) and print the result; anything else is refused."""
    from rich.markup import escape
    from rich.table import Table

    from cdp.backends import Backends
    from cdp.catalog.port import CatalogError

    authorized("sql")
    try:
        result = Backends().catalog.analyst_query(query)
    except CatalogError as e:
        err_console.print(f"[red]{escape(' '.join(str(e).split()))}", soft_wrap=True)
        raise typer.Exit(2) from None
    table = Table(caption=f"{result.num_rows:,} rows")
    for name in result.column_names:
        table.add_column(name)
    for row in result.slice(0, limit).to_pylist():
        table.add_row(*("" if v is None else str(v) for v in row.values()))
    console.print(table)


def authorized(action: str):  # noqa: ANN201 - a cdp.security.vault.Caller
    """The caller (its identity from `CDP_IDENTITY_FILE`, or its IAM principal in AWS) in a role that may
    perform `action`; otherwise one line on stderr, exit 3 (the refusal is audited)."""
    from cdp.backends import Backends
    from cdp.security.errors import AccessDenied, NotAuthenticated
    from cdp.security.identity.authorize import authorize

    b = Backends()
    try:
        return authorize(b.identity, b.audit, action)
    except (AccessDenied, NotAuthenticated) as e:
        refuse(e)


def refuse(error: Exception) -> NoReturn:
    """Print `refused: <reason>` on one line (no traceback) and exit 3."""
    typer.echo(f"refused: {error}", err=True)
    raise typer.Exit(3) from None


forget_app = typer.Typer(
    help="Erasure (GDPR art. 17): `--user N` requests it; `confirm ID` by a second privacy officer performs "
    "it (CDP_ERASURE_APPROVALS=2, the default; with 1 `--user N` erases at once).",
    invoke_without_command=True,
)
app.add_typer(forget_app, name="forget")


@forget_app.callback()
def forget(
    ctx: typer.Context,
    user: Annotated[int | None, typer.Option(help="The customer's user id in core banking.")] = None,
) -> None:
    """Erase a customer by crypto-shredding their data key (two privacy officers by default); audited."""
    if ctx.invoked_subcommand is not None:
        if user is not None:
            raise typer.BadParameter("give --user to request an erasure, or `confirm ID`, not both")
        return
    if user is None:
        raise typer.BadParameter("give --user N to request an erasure, or `cdp forget confirm ID`")
    forget_request(user)


def forget_request(user: int) -> str | None:
    """`cdp forget --user N` as the caller: the request id (printed), or None when it erased at once."""
    from cdp.corebanking.erasure import CustomerWasErased
    from cdp.corebanking.erasure_approval import request_erasure
    from cdp.security.errors import AccessDenied

    caller = authorized("forget")
    try:
        outcome = request_erasure(user, caller)
    except AccessDenied as e:
        refuse(e)
    except CustomerWasErased as e:  # their token secret is gone: nothing is left to erase
        console.print(f"nothing to erase: {e} (already erased)", soft_wrap=True)
        return None
    if outcome.request is not None:
        console.print(
            f"erasure request {outcome.request.id} recorded for customer {outcome.request.customer_token}; "
            f"a second privacy officer performs it with `cdp forget confirm {outcome.request.id}`"
        )
        return outcome.request.id
    _print_erasure(outcome.report)
    return None


@forget_app.command("confirm")
def forget_confirm(
    request_id: Annotated[str, typer.Argument(help="The request id `cdp forget --user N` printed.")],
) -> None:
    """Confirm another privacy officer's erasure request and perform it; audited."""
    from cdp.corebanking.erasure import CustomerWasErased
    from cdp.corebanking.erasure_approval import ErasureRequestError, confirm_erasure
    from cdp.security.errors import AccessDenied

    caller = authorized("forget-confirm")
    try:
        report = confirm_erasure(request_id, caller)
    except (AccessDenied, ErasureRequestError) as e:
        refuse(e)
    except CustomerWasErased as e:
        console.print(f"nothing to erase: {e} (already erased)", soft_wrap=True)
        return
    _print_erasure(report)


def _print_erasure(r) -> None:  # noqa: ANN001 - an ErasureReport
    state = "erased" if r.key_deleted else "already erased"
    on = r.erased_at.date().isoformat() if r.erased_at else "?"
    console.print(
        f"customer {r.customer_token}: {state} on {on}; {r.core_banking_records} core-banking records, "
        f"{r.lake_rows} lake rows, {r.online_states} online states, {r.exports} exports removed; "
        f"transactions held until {r.hold_until}"
    )


@app.command()
def export(
    user: Annotated[int, typer.Option(help="The customer's user id in core banking.")],
) -> None:
    """Access request: write everything held about a customer, decrypted, to a file; audited."""
    from cdp.corebanking.erasure import CustomerWasErased
    from cdp.corebanking.export import export_customer
    from cdp.security.errors import AccessDenied

    caller = authorized("export")
    try:
        path = export_customer(user, caller)
    except AccessDenied as e:
        refuse(e)
    except CustomerWasErased as e:
        console.print(f"no export: {e}")
        raise typer.Exit(4) from None
    console.print(f"export written to {path} (contains personal data: hand it over, then delete it)")


retention_app = typer.Typer(help="Retention: legal holds of erased customers, expiring exports.")
app.add_typer(retention_app, name="retention")


@retention_app.command("purge")
def retention_purge(
    now: Annotated[str | None, typer.Option(help="Purge as of this day, YYYY-MM-DD (default: now).")] = None,
) -> None:
    """Delete held transactions whose legal hold has ended and expired export files; audited."""
    from datetime import UTC, datetime

    from cdp.corebanking.retention import purge

    authorized("retention-purge")
    try:
        as_of = datetime.combine(date.fromisoformat(now), datetime.min.time(), UTC) if now else None
    except ValueError as e:
        err_console.print("[red]--now must be a date YYYY-MM-DD[/red]")
        raise typer.Exit(2) from e
    r = purge(now=as_of)
    console.print(
        f"retention: {r.transactions:,} held transactions of {r.holds_ended} erased customers deleted, "
        f"{r.holds_active} still held; {r.exports} expired exports removed"
    )


identity_app = typer.Typer(
    help="Identities: signed tokens issued by an admin; roles come from the issuer, never from a flag."
)
app.add_typer(identity_app, name="identity")


@identity_app.command("create")
def identity_create(
    name: Annotated[str, typer.Argument(help="Who or what the identity is for (lowercase, unique).")],
    role: Annotated[list[str], typer.Option("--role", help="A role (repeatable), e.g. privacy-officer.")],
    expires_days: Annotated[float, typer.Option(help="Days until the token expires.", min=0.001)] = 90,
    out: Annotated[
        Path | None, typer.Option(help="Write the token to this file (mode 0600) instead of printing it.")
    ] = None,
) -> None:
    """Issue an identity and its token (shown once). The first identity must be an admin; after that,
    only an admin may issue (CDP_IDENTITY_FILE = the admin's token file). Audited."""
    from cdp.backends import Backends
    from cdp.security.errors import AccessDenied, NotAuthenticated
    from cdp.security.identity.commands import create_identity
    from cdp.security.identity.local import write_token_file
    from cdp.security.identity.port import IdentityAdminError

    try:
        issued = create_identity(Backends(), name, role, expires_days)
    except (AccessDenied, NotAuthenticated, IdentityAdminError) as e:
        refuse(e)
    who = issued.identity
    expiry = who.expires_at.isoformat(timespec="seconds") if who.expires_at else "never"
    if out is not None:
        write_token_file(out, issued.token)
        roles = ", ".join(who.roles)
        console.print(
            f"identity {who.name} ({roles}; expires {expiry}): token written to {out}", soft_wrap=True
        )
        return
    typer.echo(issued.token)
    err_console.print(f"identity {who.name} ({', '.join(who.roles)}; expires {expiry}): store the token now, "
                      "it cannot be shown again")  # fmt: skip


@identity_app.command("list")
def identity_list() -> None:
    """Issued identities (revoked ones too) with roles and dates, never tokens. Admin only."""
    from cdp.backends import Backends
    from cdp.security.errors import AccessDenied, NotAuthenticated
    from cdp.security.identity.commands import list_identities
    from cdp.security.identity.port import IdentityAdminError

    try:
        console.print_json(data=list_identities(Backends()), default=str)
    except (AccessDenied, NotAuthenticated, IdentityAdminError) as e:
        refuse(e)


@identity_app.command("revoke")
def identity_revoke(name: Annotated[str, typer.Argument(help="The identity's name.")]) -> None:
    """Revoke an identity: its token is refused from its next use on. Admin only; audited."""
    from cdp.backends import Backends
    from cdp.security.errors import AccessDenied, NotAuthenticated
    from cdp.security.identity.commands import revoke_identity
    from cdp.security.identity.port import IdentityAdminError, IdentityNotFound

    try:
        revoked = revoke_identity(Backends(), name)
    except (AccessDenied, NotAuthenticated, IdentityAdminError, IdentityNotFound) as e:
        refuse(e)
    console.print(f"identity {revoked.name}: revoked")


@app.command()
def whoami() -> None:
    """The caller's identity: name, roles, expiry (from CDP_IDENTITY_FILE, or the IAM principal in AWS)."""
    from cdp.backends import Backends
    from cdp.security.errors import NotAuthenticated

    try:
        who = Backends().identity.current()
    except NotAuthenticated as e:
        refuse(e)
    expiry = who.expires_at.isoformat(timespec="seconds") if who.expires_at else "never"
    console.print(f"{who.name}  roles: {', '.join(who.roles) or 'none'}  ({who.kind}; expires {expiry})")


@audit_app.command("verify")
def audit_verify() -> None:
    """Verify the audit log's MAC chain and signed head; exit 1 and name the first bad record if altered."""
    from cdp.backends import Backends

    result = Backends().audit.verify()
    if result.ok:
        legacy = ""
        if result.legacy_records:  # written before keyed auditing: protected only from their sealing on
            legacy = f" ({result.legacy_records:,} legacy unkeyed)"
        console.print(
            f"[green]audit log intact[/green]: {result.records:,} records{legacy}, head signed",
            soft_wrap=True,
        )
        return
    where = f" at record {result.first_broken_seq}" if result.first_broken_seq is not None else ""
    err_console.print(f"[red]audit log broken[/red]{where}: {result.reason}", soft_wrap=True)
    raise typer.Exit(1)


features_app = typer.Typer(help="Feature views: offline build, training sets, online state.")
models_app = typer.Typer(help="The model registry: versions, approval status, champion.")
app.add_typer(features_app, name="features")
app.add_typer(models_app, name="models")


@features_app.command("build")
def features_build(
    start: Annotated[str | None, typer.Option(help="First day of the training set, YYYY-MM-DD.")] = None,
    end: Annotated[str | None, typer.Option(help="Day after the training set, YYYY-MM-DD.")] = None,
    cutoff: Annotated[
        str | None, typer.Option(help="CLV cut-off, YYYY-MM-DD (default CDP_CLV_CUTOFF).")
    ] = None,
) -> None:
    """Materialise the feature views over the lake and write the fraud, CLV and segmentation training sets."""
    from features.commands import build

    summary = build(
        get_settings(),
        start=date.fromisoformat(start) if start else None,
        end=date.fromisoformat(end) if end else None,
        cutoff=date.fromisoformat(cutoff) if cutoff else None,
    )
    console.print_json(data=summary, default=str)


@features_app.command("show")
def features_show(
    card: Annotated[str | None, typer.Option("--card", help="Card token (crd_...).")] = None,
    customer: Annotated[str | None, typer.Option("--customer", help="User token (usr_...).")] = None,
) -> None:
    """A card's latest offline features and online state, or a customer's features per cut-off."""
    from features.commands import show_card, show_customer

    if (card is None) == (customer is None):
        raise typer.BadParameter("give exactly one of --card or --customer")
    shown = show_card(card, get_settings()) if card else show_customer(customer, get_settings())
    console.print_json(data=shown, default=str)


@features_app.command("sync-online")
def features_sync_online(
    until: Annotated[
        str | None, typer.Option(help="Replay events before this time (default: the stream's start).")
    ] = None,
) -> None:
    """Rebuild every card's online state from the lake's history (before the stream starts)."""
    from datetime import datetime

    from cdp.backends import Backends
    from cdp.lake.split import read_split
    from features.online_sync import sync_online_state

    b = Backends()
    if until is None:
        split = read_split(b.settings.state_dir / "split.json")
        if split is None:
            err_console.print("[red]no stream split recorded yet: run `cdp batch` first, or give --until")
            raise typer.Exit(2)
        cutoff = split.cutoff
    else:
        cutoff = datetime.fromisoformat(until)
    with _progress() as progress:
        task = progress.add_task("online state (card buckets)", total=None)
        summary = sync_online_state(
            b, cutoff, lambda done, total: progress.update(task, completed=done, total=total)
        )
    console.print(
        f"online state: {summary['cards']:,} cards from {summary['events']:,} events "
        f"before {summary['until']} in {summary['seconds']:.0f}s"
    )


def _registry():  # noqa: ANN202
    from cdp.backends import Backends

    return Backends().model_registry


@models_app.command("list")
def models_list(
    model: Annotated[str | None, typer.Argument(help="Model name (all when omitted).")] = None,
) -> None:
    """Registered model versions with their approval status (* = champion)."""
    from cdp.registry.commands import list_models, models_table

    console.print(models_table(list_models(_registry(), model)))


@models_app.command("show")
def models_show(
    model: Annotated[str, typer.Argument(help="Model name.")],
    version: Annotated[str, typer.Argument(help="Version number or 'champion'.")] = "champion",
) -> None:
    """One model version: metrics, params, lineage, status."""
    from cdp.registry.commands import parse_version, show_model

    console.print_json(data=show_model(_registry(), model, parse_version(version)), default=str)


@models_app.command("approve")
def models_approve(
    model: Annotated[str, typer.Argument(help="Model name.")],
    version: Annotated[int, typer.Argument(help="Version to approve (becomes the champion).")],
    reason: Annotated[str, typer.Option(help="Why (recorded).")],
) -> None:
    """Approve a version: it becomes the champion; audited. Needs model-approver; not by its registrant."""
    from cdp.registry.commands import approve_model
    from cdp.security.errors import AccessDenied

    caller = authorized("model-approve")
    try:
        approve_model(_registry(), model, version, caller.id, reason, role=caller.role)
    except AccessDenied as e:
        refuse(e)
    console.print(f"{model} v{version}: approved, champion")


@models_app.command("reject")
def models_reject(
    model: Annotated[str, typer.Argument(help="Model name.")],
    version: Annotated[int, typer.Argument(help="Version to reject.")],
    reason: Annotated[str, typer.Option(help="Why (recorded).")],
) -> None:
    """Reject a version; audited. Needs model-approver."""
    from cdp.registry.commands import reject_model

    caller = authorized("model-reject")
    reject_model(_registry(), model, version, caller.id, reason, role=caller.role)
    console.print(f"{model} v{version}: rejected")


@models_app.command("history")
def models_history(
    model: Annotated[str, typer.Argument(help="Model name.")],
    at: Annotated[
        str | None, typer.Option(help="YYYY-MM-DD: the versions that served that day (UTC); or a date-time.")
    ] = None,
) -> None:
    """Who made which version champion, when and why (append-only); with --at, which version served."""
    from cdp.registry.commands import champion_at, history_table, model_history, parse_moment

    if at is None:
        console.print(history_table(model_history(_registry(), model)))
        return
    try:
        moment = parse_moment(at)
    except ValueError as e:
        raise typer.BadParameter(str(e)) from None
    console.print_json(data=champion_at(_registry(), model, moment))


@models_app.command("rollback")
def models_rollback(
    model: Annotated[str, typer.Argument(help="Model name.")],
    reason: Annotated[str, typer.Option(help="Why (recorded).")],
) -> None:
    """The previous champion becomes champion again (serving reloads it); audited. Needs model-approver."""
    from cdp.registry.commands import rollback_model
    from cdp.security.errors import AccessDenied

    caller = authorized("model-rollback")
    try:
        restored = rollback_model(_registry(), model, caller.id, reason, role=caller.role)
    except AccessDenied as e:
        refuse(e)
    console.print(f"{model} v{restored.version}: champion again (rolled back)")


keys_app = typer.Typer(help="API keys of the public REST API (stored hashed, with scopes).")
app.add_typer(keys_app, name="keys")


@keys_app.command("create")
def keys_create(
    label: Annotated[str, typer.Argument(help="Who or what the key is for.")],
    scope: Annotated[
        list[str], typer.Option("--scope", help="fraud:score, customers:read, models:read, ...")
    ],
    expires_in: Annotated[str | None, typer.Option(help="e.g. 90d or 12h (default: settings).")] = None,
) -> None:
    """Create a key; the secret is printed once and only its hash is stored. Audited."""
    from cdp.apikeys.commands import cli_create
    from cdp.apikeys.port import InvalidApiKeyRequestError

    caller = authorized("api-key-create")
    try:
        created = cli_create(label, scope, actor=caller.id, expires_in=expires_in)
    except InvalidApiKeyRequestError as e:
        err_console.print(f"[red]{e}")
        raise typer.Exit(2) from e
    console.print_json(data=created, default=str)
    err_console.print("Store the api_key now: it cannot be shown again.")


@keys_app.command("list")
def keys_list() -> None:
    """Keys with their scopes and state (never the secrets)."""
    from cdp.apikeys.commands import cli_list

    console.print_json(data=cli_list(), default=str)


@keys_app.command("revoke")
def keys_revoke(key_id: Annotated[str, typer.Argument(help="The key id (not the key).")]) -> None:
    """Revoke a key; audited."""
    from cdp.apikeys.commands import cli_revoke
    from cdp.apikeys.port import UnknownApiKeyError

    caller = authorized("api-key-revoke")
    try:
        console.print_json(data=cli_revoke(key_id, actor=caller.id), default=str)
    except UnknownApiKeyError as e:
        err_console.print(f"[red]{e}")
        raise typer.Exit(2) from e


@keys_app.command("rotate")
def keys_rotate(
    key_id: Annotated[str, typer.Argument(help="The key id (not the key).")],
    expires_in: Annotated[str | None, typer.Option(help="e.g. 90d (default: settings).")] = None,
) -> None:
    """New secret for the key; the old one stays valid for the overlap setting. Audited."""
    from cdp.apikeys.commands import cli_rotate
    from cdp.apikeys.port import ApiKeyError

    caller = authorized("api-key-rotate")
    try:
        console.print_json(data=cli_rotate(key_id, actor=caller.id, expires_in=expires_in), default=str)
    except ApiKeyError as e:
        err_console.print(f"[red]{e}")
        raise typer.Exit(2) from e
    err_console.print("Store the api_key now: the old one stops working at previous_valid_until.")


crypto_app = typer.Typer(help="Master keys: rotation of the key that wraps every data key.")
app.add_typer(crypto_app, name="crypto")


@crypto_app.command("rotate-master-key")
def crypto_rotate_master_key(
    rotate: Annotated[
        bool,
        typer.Option("--rotate/--no-rotate", help="Make a new master version first (else re-wrap only)."),
    ] = True,
    retire_old: Annotated[
        bool, typer.Option("--retire-old", help="Then delete master versions no data key names (local).")
    ] = False,
) -> None:
    """New master key version, every data key re-wrapped under it (resumable, audited); old ones retired."""
    from cdp.backends import Backends
    from cdp.security.rotation import rotate_master_key

    caller = authorized("rotate-master-key")
    b = Backends()
    with _progress() as progress:
        task = progress.add_task("re-wrapping data keys", total=None)
        r = rotate_master_key(
            b.keys, b.data_keys, b.audit, b.settings.state_dir / "key_rotation.json",
            actor=caller.id, role=caller.role, rotate=rotate, retire_old=retire_old,
            progress=lambda done, total: progress.update(task, completed=done, total=total),
        )  # fmt: skip
    console.print(
        f"master key {r.previous} -> {r.target}{' (resumed)' if r.resumed else ''}: {r.entries:,} data keys, "
        f"{r.rewrapped:,} re-wrapped, {r.already_current:,} already current, "
        f"{r.erased_meanwhile:,} erased meanwhile; retired: {', '.join(r.retired) or 'none'}"
    )
    if not r.complete:
        err_console.print(
            f"[red]incomplete[/red]: {r.remaining:,} data keys still under older versions "
            f"({r.unknown_context:,} without a known context, {r.unreadable:,} unreadable), e.g. "
            f"{', '.join(r.problem_ids[:5])}; fix them and re-run"
        )
        raise typer.Exit(1)


@crypto_app.command("status")
def crypto_status() -> None:
    """The current master version and how many live data keys each master version wraps."""
    from collections import Counter

    from cdp.backends import Backends

    authorized("key-status")
    b = Backends()
    per_version = Counter(e.key_version or "?" for e in b.data_keys.entries())
    console.print(f"current master version: {b.keys.current_version}")
    for version, n in sorted(per_version.items()):
        console.print(f"  {version}: {n:,} data keys")


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8080,
    sagemaker: Annotated[
        bool, typer.Option(help="Serve /invocations without API keys (in a container).")
    ] = False,
) -> None:
    """Run the inference app (SageMaker contract + public API, docs at /docs) with uvicorn."""
    from inference.serve import serve as run

    console.print(f"serving on http://{host}:{port}  (OpenAPI: /openapi.json, docs: /docs)")
    run(host=host, port=port, sagemaker=sagemaker)


@app.command()
def promote(
    model: Annotated[str, typer.Argument(help="Registered model, e.g. cdp-fraud.")],
    version: Annotated[int | None, typer.Option(help="Candidate version (default: newest pending).")] = None,
    dry_run: Annotated[bool, typer.Option(help="Decide but change nothing.")] = False,
    report: Annotated[Path | None, typer.Option(help="Write the decision as JSON to this file.")] = None,
) -> None:
    """The promotion gate (what CodeBuild runs): candidate vs champion on the same holdout, then gates.

    Runs as the caller's identity (role model-approver). Exits 0 whatever the decision (a rejection is a
    decision); 2 when the gate itself cannot run; 3 when the identity may not promote."""
    from monitoring.promotion.__main__ import run_promotion

    code = run_promotion(model, version, dry_run, report)
    if code:
        raise typer.Exit(code)


monitor_app = typer.Typer(help="The monitoring loop: drift, alarms, retraining rules.")
app.add_typer(monitor_app, name="monitor")


@monitor_app.command("run")
def monitor_run(
    model: Annotated[
        list[str] | None, typer.Option(help="Model to watch (repeatable; default CDP_MONITOR_MODELS).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the whole run as JSON.")] = False,
) -> None:
    """Run the drift job once, publish metrics, evaluate the alarms and dispatch their events."""
    from cdp.backends import Backends
    from monitoring.commands import monitor_once

    run = monitor_once(Backends(), models=model)
    if as_json:
        console.print_json(json.dumps(run.to_dict(), default=str))
        return
    print_timeline(run.timeline)
    for name, paths in run.reports.items():
        console.print(f"{name}: drift report {paths['html']}  (JSON: {paths['json']})")
    for name, why in run.skipped_models.items():
        err_console.print(f"{name}: no drift job ({why})")


def print_timeline(entries: list[dict[str, str]]) -> None:
    """Timeline entries (`at`, `what`) as `HH:MM:SS.mmm  what` lines."""
    for entry in entries:
        console.print(f"[dim]{entry['at'][11:23]}[/dim]  {entry['what']}", highlight=False)


def main() -> None:
    """Console-script entry point: private files, then the command; an error ends it with one line."""
    from cdp.filemodes import make_private

    logs_dir = None
    try:
        settings = get_settings()
        logs_dir = settings.logs_dir
        make_private(settings)
        app()
    except KeyboardInterrupt:
        err_console.print("interrupted", markup=False)
        sys.exit(130)
    except Exception as error:  # noqa: BLE001 - the one place every command's error ends
        from app.clierrors import report_error

        line, code = report_error(error, logs_dir)
        err_console.print(line, markup=False, highlight=False, soft_wrap=True)
        sys.exit(code)


if __name__ == "__main__":
    main()
