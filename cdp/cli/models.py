"""`cdp models list | show | approve | reject | retire | history | rollback | card | inventory`: the model
registry's versions, their approval and retirement, the champion's history, each version's model card
and the model inventory."""

from __future__ import annotations

from typing import Annotated

import typer

from cdp.console.access import authorized, refuse
from cdp.console.output import console

models_app = typer.Typer(name="models", help="The model registry: versions, approval status, champion.")


def _registry():  # noqa: ANN202
    from cdp.backends import Backends

    return Backends().model_registry


@models_app.command("list")
def models_list_command(
    model: Annotated[str | None, typer.Argument(help="Model name (all when omitted).")] = None,
) -> None:
    """Registered model versions with their approval status (* = champion)."""
    from cdp.registry.commands import list_models, models_table

    console.print(models_table(list_models(_registry(), model)))


@models_app.command("show")
def models_show_command(
    model: Annotated[str, typer.Argument(help="Model name.")],
    version: Annotated[str, typer.Argument(help="Version number or 'champion'.")] = "champion",
) -> None:
    """One model version: metrics, params, lineage, status."""
    from cdp.registry.commands import parse_version, show_model

    console.print_json(data=show_model(_registry(), model, parse_version(version)), default=str)


@models_app.command("approve")
def models_approve_command(
    model: Annotated[str, typer.Argument(help="Model name.")],
    version: Annotated[int, typer.Argument(help="Version to approve (becomes the champion).")],
    approver: Annotated[
        str, typer.Option("--as", help="Your own identity's name: the approver recorded (never the author).")
    ],
    reason: Annotated[str, typer.Option(help="Why (recorded).")] = "approved after its shadow comparison",
) -> None:
    """Approve the switch to a version: it becomes the champion; recorded and audited. Needs
    model-approver; not by its author; while a champion serves, only its challenger with a passed shadow
    comparison (or a first champion)."""
    models_approve(model, version, reason=reason, approver=approver)


def models_approve(model: str, version: int, *, reason: str, approver: str | None = None) -> None:
    """Approve `model` version `version` as the caller, named `approver` (default: the caller's own name);
    refused in one line (exit 3) by role, by the approval policy or for the version's author."""
    from cdp.backends import Backends
    from cdp.registry.approval import ApprovalRefused, approve_switch
    from cdp.security.errors import AccessDenied

    caller = authorized("model-approve")
    backends = Backends()
    try:
        approve_switch(
            backends.model_registry, backends.audit, model, version, caller_name=caller.id, role=caller.role,
            named=approver or caller.id, reason=reason,
        )  # fmt: skip
    except (AccessDenied, ApprovalRefused) as e:
        refuse(e)
    console.print(f"{model} v{version}: approved by {caller.id}, champion")


@models_app.command("reject")
def models_reject_command(
    model: Annotated[str, typer.Argument(help="Model name.")],
    version: Annotated[int, typer.Argument(help="Version to reject.")],
    reason: Annotated[str, typer.Option(help="Why (recorded).")],
) -> None:
    """Reject a version; audited. Needs model-approver."""
    from cdp.registry.commands import reject_model

    caller = authorized("model-reject")
    reject_model(_registry(), model, version, caller.id, reason, role=caller.role)
    console.print(f"{model} v{version}: rejected")


@models_app.command("retire")
def models_retire_command(
    model: Annotated[str, typer.Argument(help="Model name.")],
    version: Annotated[int, typer.Argument(help="Version to retire (never the champion).")],
    reason: Annotated[str, typer.Option(help="Why (recorded in the card and the audit log).")],
) -> None:
    """Retire a version for good: it is never promoted, shadowed or approved again; audited and shown in
    its card and the inventory. Needs model-approver; not by its author; never the champion."""
    from cdp.registry.commands import retire_model
    from cdp.registry.port import RetiredVersionError, RetireRefusedError
    from cdp.security.errors import AccessDenied

    caller = authorized("model-retire")
    try:
        retire_model(_registry(), model, version, caller.id, reason, role=caller.role)
    except (AccessDenied, RetireRefusedError, RetiredVersionError) as e:
        refuse(e)
    console.print(f"{model} v{version}: retired")


@models_app.command("history")
def models_history_command(
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
def models_rollback_command(
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


@models_app.command("card")
def models_card_command(
    model: Annotated[str, typer.Argument(help="Model name.")],
    version: Annotated[str, typer.Argument(help="Version number or 'champion'.")] = "champion",
    as_json: Annotated[bool, typer.Option("--json", help="The card's JSON instead of its Markdown.")] = False,
) -> None:
    """A version's model card: intended use, data, features, validation evidence, fairness, approver."""
    from cdp.registry import card_store
    from cdp.registry.commands import parse_version
    from cdp.registry.model_card import render_markdown

    try:
        chosen = parse_version(version)
    except ValueError as e:
        raise typer.BadParameter(str(e)) from None
    card = card_store.load(_registry(), model, chosen)
    if as_json:
        console.print_json(data=card.to_dict())
    else:
        console.print(render_markdown(card), markup=False, highlight=False, soft_wrap=True)


@models_app.command("inventory")
def models_inventory_command(
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines instead of a table.")] = False,
) -> None:
    """Every model and version: status, owner, approver, last validation, next review date."""
    from cdp.registry.inventory import inventory, inventory_table
    from cdp.settings import get_settings

    entries = inventory(_registry(), get_settings().model_review_days)
    if as_json:
        console.print_json(data=[e.to_dict() for e in entries])
    else:
        console.print(inventory_table(entries))
