"""`cdp demo` (what `make demo` runs): the platform end to end on the embedded default, step by step.

Each step calls the functions the `cdp` commands run (each package's `cli` module), so the demo cannot
drift from the CLI; what the steps print is a log like any other: tokens and counts, never PII.

A step the rest needs (a model's pipeline, a champion to score with) that fails stops the demo with
`DemoStopped`: one line naming the model, the failed step, its reason and what to change. `run_demo`
takes an optional stage hook (a context manager per named stage) so a benchmark can time the very path
the demo runs.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import TYPE_CHECKING, Any

import typer

from cdp.cli.audit import audit_verify
from cdp.cli.identity import identity_create
from cdp.cli.models import models_approve
from cdp.cli.privacy import export, forget_confirm, forget_request
from cdp.cli.source_data import batch, generate, load, profile
from cdp.cli.sql import sql
from cdp.cli.stream import stream_consume, stream_produce
from cdp.console.output import console, err_console, print_timeline
from cdp.settings import get_settings
from engagement.cli import notify_run
from features.cli import features_sync_online
from inference.cli import stream_run

if TYPE_CHECKING:
    from monitoring.actions import Timeline

# A stage hook: called with a stage's name, it returns the context manager the stage runs in.
StageHook = Callable[[str], AbstractContextManager[Any]]

# The models the demo trains, approves and serves: (pipeline, model package group).
DEMO_MODELS = (("fraud", "cdp-fraud"), ("clv", "cdp-clv"), ("segmentation", "cdp-segmentation"))
STREAM_MODEL = "cdp-fraud"  # the model the stream is scored with: without it the demo cannot go on


class DemoStopped(Exception):  # noqa: N818 - a stop, not a crash: the message is the line to print
    """A step the rest of the demo needs failed; the message is one line (model, step, reason, the fix)."""


def _no_hook(name: str) -> AbstractContextManager[Any]:
    return nullcontext()


def run_demo(stage_hook: StageHook | None = None) -> None:
    """generate -> profile -> core banking -> batch (95%) -> stream slice 1 -> lake -> access checks ->
    features -> pipelines -> champions -> the stream scored -> drift injected -> monitor -> alarm ->
    retraining -> promotion gate -> challenger in shadow on the rest of the stream -> shadow comparison
    -> approval policy -> switch -> customer notices of the alerts.

    `stage_hook(name)` wraps each stage (e.g. "batch", "pipeline fraud", "stream scoring 1"); raises
    `DemoStopped` when a model the rest needs failed to train or has no champion."""
    from monitoring.actions import Timeline

    stage = stage_hook or _no_hook
    s = get_settings()
    console.rule(f"[bold]CDP demo[/bold]  home={s.home}  backend={s.backend}  users={s.users}")
    timeline = Timeline()
    data = s.data_dir
    console.rule("0. identities: an admin, then people and services issued by it (tokens 0600)")
    with stage("identities"):
        _demo_identities()
    if (data / "ground_truth" / "manifest.json").exists():
        console.rule("1. IBM-format data already generated: reusing it")
    else:
        console.rule("1. generate IBM-format data with a hidden ground truth")
        with stage("generate"):
            generate(s, users=s.users, out=data, seed=s.seed, start=s.start, end=s.end, workers=s.workers)
    console.rule("2. validate and profile")
    with stage("profile"):
        profile(data)
    console.rule("3. core banking: customers and cards into the OLTP store")
    with stage("load"):
        load(data)
    console.rule("4. batch path: ~95% of history -> protected, partitioned Parquet lake")
    with stage("batch"):
        batch(data)
    slices = _stream_slices()
    streaming = _stream_to_replay()
    console.rule("5. stream path: the stream's first half -> core banking -> stream -> lake")
    if streaming:
        with stage("stream slice 1"):
            _produce_slice(timeline, "first half of the stream", slices[0], drift=None)
    else:
        _no_stream(timeline)
    console.rule("6. the lake (as data-scientist-1)")
    with stage("lake queries"), _as("data-scientist-1"):
        sql(
            "SELECT 'transactions' AS table_name, count(*) AS row_count FROM transactions "
            "UNION ALL SELECT 'customers', count(*) FROM customers "
            "UNION ALL SELECT 'cards', count(*) FROM cards",
            limit=10,
        )
        sql(
            "SELECT year, count(*) AS transactions, sum(CASE WHEN is_fraud THEN 1 ELSE 0 END) AS frauds, "
            "round(sum(amount_cents) / 100.0, 2) AS volume_usd, "
            "round(100.0 * avg(CASE WHEN channel = 'online' THEN 1 ELSE 0 END), 1) AS online_pct "
            "FROM transactions GROUP BY year ORDER BY year DESC LIMIT 8",
            limit=8,
        )
    console.rule("7. security: role-checked decryption and commands refused by role, audited")
    with stage("access checks"):
        _demo_access_checks()
    console.rule("8. features: offline views and training sets (fraud, CLV, segmentation)")
    with stage("features"):
        _demo_features()
    console.rule("9. ML pipelines: the SageMaker definitions run by the local executor, models registered")
    _demo_pipelines(stage)
    console.rule("10. real-time scoring: champions approved, the stream's first half scored by the handler")
    with stage("champions"):
        _demo_promote_first_champions()
        require_champions()
        _demo_model_card(STREAM_MODEL)
    with stage("sync-online"):
        features_sync_online(until=None)
    if streaming:
        _demo_stream_and_loop(stage, timeline, slices)
    else:
        console.rule("11.-15. stream scoring, drift, the loop and the shadow run: skipped (nothing streamed)")
    console.rule("16. customer notices: the streamed period's fraud alerts become e-mails in the outbox")
    with stage("notices"), _as("notifier-1"):
        notify_run(show_sample=True)
    console.rule("17. erasure by two privacy officers (GDPR art. 17): one requests, another confirms")
    with stage("erasure"):
        _demo_erasure()
    with stage("audit verify"):
        audit_verify()
    console.rule("timeline")
    print_timeline([e.to_dict() for e in timeline.entries])
    _demo_where_things_are()
    console.rule("[green]demo finished")
    console.print(
        f"Try: CDP_HOME={s.home} CDP_IDENTITY_FILE={s.identities_dir / 'data-scientist-1.token'} "
        'cdp sql "SELECT channel, count(*) FROM transactions GROUP BY channel"',
        soft_wrap=True,
    )
    console.print(dashboard_line(s), soft_wrap=True)


def _demo_stream_and_loop(stage: Any, timeline: Timeline, slices: tuple[int, int]) -> None:
    """Stages 10-15: the stream scored, drift injected, the monitoring loop, the rest of the stream with
    the challenger in shadow, the shadow comparison and the switch."""
    s = get_settings()
    with stage("stream scoring 1"):
        _score_stream(timeline)
    console.rule("11. monitoring: drift job, alarms and rules on the first half (reference: champion's data)")
    with stage("monitor 1"):
        _monitor(timeline)
    drift = None if s.demo_drift == "none" else s.demo_drift
    console.rule(
        f"12. the world changes: drift injected into the stream ({s.demo_drift}), scored by the champion"
    )
    with stage("stream slice 2"):
        _produce_slice(timeline, "the stream up to nine tenths", slices[1], drift=drift)
    with stage("stream scoring 2"):
        _score_stream(timeline)
    console.rule("13. the loop: drift job -> alarm -> retraining pipeline -> promotion gate -> challenger")
    with stage("monitor/retrain"):
        _monitor(timeline)
    console.rule("14. the rest of the stream, scored by the champion; a challenger scores it in shadow")
    with stage("stream slice 3"):
        _produce_slice(timeline, "last tenth of the stream", None, drift=drift)
    with stage("stream scoring 3"):
        _score_stream(timeline)
    with stage("stream metrics"):
        _demo_stream_metrics()
    console.rule("15. shadow comparison -> approval policy (auto for a same-feature retrain) -> the switch")
    with stage("shadow switch"):
        _demo_shadow_switch(timeline)


def _stream_to_replay() -> int:
    """Transactions the stream holds (the recorded split's; 0 with CDP_STREAM_FRACTION=0)."""
    from cdp.lake.split import read_split

    split = read_split(get_settings().state_dir / "split.json")
    return split.stream_rows if split is not None else 0


def _no_stream(timeline: Timeline) -> None:
    """Say that the stream has nothing to replay (all history went to the lake) and go on."""
    console.print(
        f"stream: nothing to replay (CDP_STREAM_FRACTION={get_settings().stream_fraction}: all history is in "
        "the lake); the stream scoring, drift and monitoring-loop stages are skipped"
    )
    timeline.add("stream: nothing to replay, all history in the lake")


def dashboard_line(s: Any) -> str:  # noqa: ANN401 - cdp.settings.Settings
    """The demo's last line: how to open the dashboards, and with which identity token."""
    url = f"http://{s.dashboard_host}:{s.dashboard_port}/"
    tokens = ", ".join(
        str(_token_file(n)) for n in ("fraud-analyst-1", "marketing-analyst-1", "data-scientist-1")
    )
    return (
        f"Dashboards: CDP_HOME={s.home} cdp dashboard, then open {url} and sign in with a token from {tokens}"
    )


# Who the demo issues, and the roles the admin gives them (services run the loop's actions).
DEMO_PEOPLE = {
    "privacy-officer-1": ("privacy-officer",),
    "privacy-officer-2": ("privacy-officer",),
    "fraud-analyst-1": ("fraud-ops",),
    "data-scientist-1": ("data-scientist",),
    "marketing-analyst-1": ("marketing",),
    "model-approver-1": ("model-approver",),
    "notifier-1": ("notifier",),  # the customer-notice service
}


def _token_file(name: str):  # noqa: ANN202 - a Path
    return get_settings().identities_dir / f"{name}.token"


def _demo_identities() -> None:
    """Bootstrap the admin, then issue people and the pipeline and promotion-gate services as the admin.
    Tokens go to `<home>/identities/<name>.token` (0600); a re-run reuses the identities issued before."""
    from cdp.backends import Backends
    from cdp.security.identity.port import SERVICE_ROLES

    issued = {r.name for r in Backends().identity.list()} if Backends().identity.bootstrapped() else set()
    wanted = {"admin": ("admin",), **DEMO_PEOPLE, **SERVICE_ROLES}
    for name, roles in wanted.items():
        if name in issued and _token_file(name).exists():
            continue
        with _as(None if name == "admin" else "admin"):
            identity_create(name, list(roles), expires_days=30, out=_token_file(name))
    console.print(f"identities: {', '.join(wanted)} (tokens in {get_settings().identities_dir})")


@contextmanager
def _as(name: str | None) -> Iterator[None]:
    """Run the enclosed commands as identity `name`, as a user would: `CDP_IDENTITY_FILE` = its token file."""
    previous = os.environ.get("CDP_IDENTITY_FILE")
    _set_identity_file(str(_token_file(name)) if name else None)
    try:
        yield
    finally:
        _set_identity_file(previous)


def _set_identity_file(value: str | None) -> None:
    if value is None:
        os.environ.pop("CDP_IDENTITY_FILE", None)
    else:
        os.environ["CDP_IDENTITY_FILE"] = value
    get_settings.cache_clear()


def _refused(command) -> str:  # noqa: ANN001 - a command's function and its arguments
    """Run a command expected to be refused; what it printed is on stderr, the exit code is returned."""
    try:
        command()
    except typer.Exit as e:
        return f"exit {e.exit_code}"
    return "not refused"


def _stream_slices() -> tuple[int, int]:
    """Where the first and the second stream slices end: half the replay, then nine tenths (the drifted
    part scored by the champion is long enough to hold the labels a retraining learns from and is judged
    on; the last tenth shows who serves after the loop)."""
    total = _stream_to_replay()
    return total // 2, total * 9 // 10


def _produce_slice(timeline: Timeline, what: str, upto: int | None, drift: str | None) -> None:
    """Replay the stream up to position `upto` (the drift, once given, keeps being injected); land it."""
    stream_produce(get_settings().data_dir, drift=drift, drift_from=0.5, upto=upto)
    stream_consume(follow=False)
    timeline.add(f"stream: {what} produced and landed" + (f" (drift: {drift})" if drift else ""))


def _score_stream(timeline: Timeline) -> None:
    from cdp.backends import Backends

    stream_run(follow=False)
    registry = Backends().model_registry
    champion, challenger = registry.champion_version(STREAM_MODEL), registry.challenger_version(STREAM_MODEL)
    timeline.add(
        "stream handler: caught up"
        + (f", scoring with {STREAM_MODEL} v{champion}" if champion else "")
        + (f", challenger v{challenger} in shadow" if challenger else "")
    )


def _demo_shadow_switch(timeline: Timeline) -> None:
    """The fraud challenger (if the loop made one) judged on its shadow events, with the demo's short
    shadow period (`CDP_DEMO_SHADOW_MIN_EVENTS`, `CDP_DEMO_SHADOW_MIN_HOURS`); a switch the policy leaves
    to a person is approved by model-approver-1 (`cdp models approve ... --as model-approver-1`)."""
    from dataclasses import replace

    from cdp.backends import Backends
    from monitoring.commands import shadow_once
    from monitoring.promotion.shadow import ShadowPolicy
    from monitoring.promotion.switch import AWAITING_APPROVAL

    s = get_settings()
    policy = replace(
        ShadowPolicy.from_settings(s), min_events=s.demo_shadow_min_events, min_hours=s.demo_shadow_min_hours
    )
    decisions = shadow_once(Backends(), models=[STREAM_MODEL], timeline=timeline, policy=policy)
    if not decisions:
        console.print(
            f"{STREAM_MODEL}: no challenger in shadow (no candidate passed the promotion gate): "
            "the champion serves on"
        )
    for decision in decisions:
        console.print(decision.line(), markup=False, highlight=False, soft_wrap=True)
        if decision.outcome == AWAITING_APPROVAL and decision.challenger_version:
            with _as("model-approver-1"):
                models_approve(
                    STREAM_MODEL, decision.challenger_version, approver="model-approver-1",
                    reason=("reviewed the shadow comparison: " + "; ".join(decision.reasons))[:900],
                )  # fmt: skip
            timeline.add(f"{STREAM_MODEL} v{decision.challenger_version} approved by model-approver-1")


def _monitor(timeline: Timeline) -> None:
    from cdp.backends import Backends
    from monitoring.commands import monitor_once

    run = monitor_once(Backends(), timeline=timeline)
    for name, paths in run.reports.items():
        console.print(f"{name}: drift report {paths['html']}")
    for name, why in run.skipped_models.items():
        err_console.print(f"{name}: no drift job ({why})")
    for model, values in run.metrics.items():
        shown = ", ".join(f"{k}={v:.3f}" for k, v in values.items())
        console.print(
            f"{model}: {shown}; alarms " + ", ".join(f"{k}={v}" for k, v in run.alarm_states.items())
        )
    for delivery in run.deliveries:
        console.print(f"rule {delivery['rule']} -> {delivery['target']}: {delivery['status']}")


_API = "http://127.0.0.1:8080"
_ROUTES = {
    "cdp-fraud": "POST /v1/fraud/score, POST /v1/fraud/score:batch, POST /invocations",
    "cdp-clv": "GET /v1/customers/{token}/profile (12-month CLV)",
    "cdp-segmentation": "GET /v1/customers/{token}/profile (segment and its name)",
}


def _demo_where_things_are() -> None:
    """Where the reports are, and a line per model: its champion and the API routes that serve it."""
    from cdp.backends import Backends

    s = get_settings()
    console.print(f"drift reports: {s.home / 'monitoring' / 'reports'}")
    registry = Backends().model_registry
    for model, routes in _ROUTES.items():
        version = registry.champion_version(model)
        served = f"v{version}" if version is not None else "no champion"
        console.print(f"{model} ({served}): {_API} {routes}")
    console.print(
        f"start the API with `cdp serve` (key: `cdp keys create NAME --scope fraud:score`); "
        f"OpenAPI at {_API}/openapi.json, docs at {_API}/docs"
    )


def _demo_access_checks() -> None:
    """A fraud analyst may read an alert's contact fields; a data scientist may not, nor erase, export or
    approve a model: each refusal exits 3 with one line and is audited. Values are never printed."""
    from cdp.backends import Backends
    from cdp.security.errors import AccessDenied
    from cdp.security.identity.authorize import authorize

    b = Backends()
    row = b.catalog.query("SELECT user_token, person_enc, email_enc FROM customers LIMIT 1").to_pylist()[0]
    fields = {"person": row["person_enc"], "email": row["email_enc"]}
    analyst = b.identity.authenticate(_token_file("fraud-analyst-1").read_text().strip())
    scientist = b.identity.authenticate(_token_file("data-scientist-1").read_text().strip())
    caller = authorize(b.identity, b.audit, "reveal", analyst)  # fraud-ops
    clear = b.vault.reveal(caller, row["user_token"], fields, "fraud-alert")
    console.print(f"{caller.id} ({caller.role}): decrypted {len(clear)} fields of {row['user_token']}")
    try:
        caller = authorize(b.identity, b.audit, "reveal", scientist)  # the vault then decides per field
        b.vault.reveal(caller, row["user_token"], fields, "analysis")
    except AccessDenied as e:
        console.print(f"data-scientist-1: refused ({e})")
    with _as("data-scientist-1"):
        for what, command in (
            ("cdp forget --user 0", lambda: forget_request(0)),
            ("cdp export --user 0", lambda: export(user=0)),
            ("cdp models approve cdp-fraud 1", lambda: models_approve("cdp-fraud", 1, reason="mine")),
        ):
            console.print(f"data-scientist-1: `{what}` refused ({_refused(command)}, audited)")
    with _as(None):
        refused = _refused(lambda: forget_request(0))
    console.print(f"no identity: `cdp forget --user 0` refused ({refused}, audited)")


def _demo_erasure() -> None:
    """privacy-officer-1 requests the erasure of the last customer; confirming it herself is refused; the
    second officer confirms and it runs (`CDP_ERASURE_APPROVALS`, 2 by default)."""
    user = get_settings().users - 1
    with _as("privacy-officer-1"):
        request_id = forget_request(user)
        if request_id is None:  # CDP_ERASURE_APPROVALS=1: erased at once
            return
        console.print(
            f"privacy-officer-1: `cdp forget confirm {request_id}` refused "
            f"({_refused(lambda: forget_confirm(request_id))}, audited: two-person rule)"
        )
    with _as("privacy-officer-2"):
        forget_confirm(request_id)


def _demo_features() -> None:
    from features.commands import build

    summary = build(get_settings())
    rows = summary["training_set"]["rows"]
    customers = summary["customer_tables"]
    console.print(
        f"fraud view: {summary['features_table']['rows']:,} rows in {summary['features_seconds']:.0f}s; "
        f"fraud training set train/validation/test = "
        f"{rows['train']:,}/{rows['validation']:,}/{rows['test']:,} "
        f"(unlabelled months skipped: {len(summary['training_set']['skipped_unlabelled_months'])}); "
        f"customer features as of {customers['cutoff']}: {customers['customer_features']['rows']:,} rows"
    )


_DEMO_METRICS = (
    "pr_auc",
    "recall_at_budget",
    "rmse_ratio_to_heuristic",
    "mae_ratio_to_heuristic",
    "silhouette",
)


def _demo_pipelines(stage: StageHook = _no_hook) -> None:
    """Each model's pipeline, one stage each; the first that fails stops the demo (`DemoStopped`)."""
    from rich.table import Table

    from cdp.backends import Backends
    from cdp.security.identity.authorize import authorize
    from cdp.security.identity.port import ML_PIPELINE_SERVICE
    from pipelines.run import run_local_pipeline

    b = Backends()
    pipeline = authorize(b.identity, b.audit, "model-register", b.identity.service(ML_PIPELINE_SERVICE))
    table = Table(
        title=f"pipeline runs as {pipeline.id} (models wait as PendingManualApproval: cdp models approve)"
    )
    for col in ("pipeline", "status", "seconds", "registered", "gate metrics"):
        table.add_column(col)
    for model, group in DEMO_MODELS:
        with stage(f"pipeline {model}"):
            record, _ = run_local_pipeline(model, b, registered_by=pipeline.id, progress=console.out)
            _add_pipeline_row(table, b, model, record)
            if record.status != "Succeeded":
                if group != STREAM_MODEL:
                    # a customer model not trained (a tiny demo has few customers): the stream, the loop
                    # and the rest of the demo need only the fraud model; say so in one line and go on
                    err_console.print(
                        f"[yellow]{pipeline_failure(group, record)}".replace("demo stopped: ", "")
                    )
                    continue
                console.print(table)
                raise DemoStopped(pipeline_failure(group, record))
    console.print(table)


def _failed_its_gate(record: Any) -> bool:
    """True when the run ended at its Fail step: the model trained but did not meet its quality gate."""
    return any(s.status == "Failed" and s.type == "Fail" for s in record.steps)


def _add_pipeline_row(table: Any, b: Any, model: str, record: Any) -> None:
    """One row of the pipeline table: status, seconds, cache hits, the registered version, gate metrics."""
    seconds = sum(s.duration_seconds or 0 for s in record.steps)
    cached = sum(s.cache_hit for s in record.steps)
    register = next((s for s in record.steps if s.type == "RegisterModel"), None)
    props = register.properties if register and register.properties else {}
    version = props.get("ModelPackageVersion")
    metrics = b.model_registry.get(props["ModelPackageGroupName"], version).metrics if version else {}
    shown = ", ".join(f"{k}={v:.3f}" for k, v in metrics.items() if k in _DEMO_METRICS)
    timing = f"{seconds:.0f}" + (f" ({cached} steps cached)" if cached else "")
    table.add_row(model, record.status, timing, f"v{version}" if version else "-", shown)


_RERUN = "then run `cdp demo` again (it reuses the generated data, the lake and the identities)"


def _one_line(text: str | None, limit: int = 400) -> str:
    line = " ".join((text or "").split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


def pipeline_failure(group: str, record: Any) -> str:
    """The line that stops the demo when `group`'s pipeline run (`record`) failed: the model, the failed
    step, the executor's reason, and what to change (the reason's own `set ...` advice when it has one)."""
    failed = next((s for s in record.steps if s.status == "Failed"), None)
    step = failed.name if failed else "?"
    reason = _one_line((failed.failure_reason if failed else None) or record.failure_reason or "no reason")
    if "out of memory" in reason or re.search(r"\bset CDP_", reason):  # the reason names the setting
        fix = _RERUN
    elif failed is not None and failed.type == "Fail":
        fix = f"the model did not meet its gate (thresholds above): more data (CDP_USERS) helps; {_RERUN}"
    elif failed is not None and failed.log:
        fix = f"read its log {failed.log}, fix the cause, {_RERUN}"
    else:
        fix = _RERUN
    return f"demo stopped: model {group!r} not trained: its pipeline's step {step!r} failed: {reason}; {fix}"


def require_champions() -> None:
    """Every model the demo serves has a champion; otherwise `DemoStopped` names the first without one."""
    from cdp.backends import Backends

    registry = Backends().model_registry
    for model, group in DEMO_MODELS:
        if group == STREAM_MODEL and registry.champion(group) is None:
            raise DemoStopped(
                f"demo stopped: model {group!r} has no champion, so the stream cannot be scored; "
                f"register a version (`run-pipeline --pipeline {model} --local`) and approve it "
                f"(`cdp models approve {group} VERSION`), {_RERUN}"
            )


def _demo_promote_first_champions() -> None:
    """A model with no champion yet gets its latest version approved by model-approver-1 (audited; not the
    pipeline's identity that registered it); later candidates wait for `cdp models approve` or the gate."""
    from cdp.backends import Backends

    registry = Backends().model_registry
    for _, name in DEMO_MODELS:
        if registry.champion(name) is not None:
            console.print(f"{name}: champion v{registry.champion(name).version} kept")
            continue
        versions = registry.list(name)
        if versions:
            latest = max(v.version for v in versions)
            with _as("model-approver-1"):
                models_approve(name, latest, reason="first champion of a fresh platform")


def _demo_model_card(model_name: str) -> None:
    """The champion's model card, as `cdp models card` prints it (a version without one is said in a line)."""
    from cdp.backends import Backends
    from cdp.registry import card_store
    from cdp.registry.model_card import render_markdown
    from cdp.registry.port import ModelVersionNotFoundError

    try:
        card = card_store.load(Backends().model_registry, model_name, "champion")
    except ModelVersionNotFoundError as missing:
        console.print(f"model card: {missing}")
        return
    console.print(render_markdown(card), markup=False, highlight=False, soft_wrap=True)
    console.print(
        f"(the same: `cdp models card {model_name} {card.version}`; every version: `cdp models inventory`)"
    )


def _demo_stream_metrics() -> None:
    """Alert rate and fraud metrics on the streamed period, per model version that scored it (PR-AUC on
    labelled months only)."""
    from rich.table import Table
    from sklearn.metrics import average_precision_score

    from cdp.backends import Backends

    b = Backends()
    scored = b.catalog.query(
        "SELECT model_version, fraud_probability AS p, is_fraud AS y, is_alert, year, month "
        "FROM transactions_scored"
    ).to_pandas()
    if scored.empty:
        console.print("stream handler: nothing scored")
        return
    scored["labelled"] = scored.groupby(["year", "month"])["y"].transform("any")
    table = Table("cdp-fraud version", "scored", "alerts", "alert %", "frauds", "caught", "recall", "PR-AUC",
                  title="the streamed period, by the model version that scored it")  # fmt: skip
    for version, part in scored.groupby("model_version"):
        frauds, caught = int(part["y"].sum()), int((part["y"] & part["is_alert"]).sum())
        labelled = part[part["labelled"]]
        pr_auc = average_precision_score(labelled["y"], labelled["p"]) if labelled["y"].any() else None
        table.add_row(
            f"v{version}", f"{len(part):,}", f"{int(part['is_alert'].sum()):,}",
            f"{100 * part['is_alert'].mean():.2f}", f"{frauds:,}", f"{caught:,}",
            f"{100 * caught / frauds:.0f}%" if frauds else "-",
            f"{pr_auc:.3f}" if pr_auc is not None else "-",
        )  # fmt: skip
    console.print(table)
    total = len(scored)
    console.print(f"streamed period: {total:,} scored, {int(scored['is_alert'].sum()):,} alerts")
