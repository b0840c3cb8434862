"""``tui-pacs commitment``: storage commitment requests and where their reports stand.

Modalities ask the node to commit to what they sent (N-ACTION); the node answers with an
N-EVENT-REPORT, retried on a new association while the requester cannot be reached. This lists
the pending and failed ones a tech or admin must look at, shows one, and retries a failed one.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import click

from tui_pacs.cli import _config, handle_errors, main
from tui_pacs.model import CommitmentReport, CommitmentState


def _when(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value is not None else "-"


def _as_json(r: CommitmentReport) -> dict[str, Any]:
    return {
        "id": r.id,
        "transaction_uid": r.transaction_uid,
        "calling_ae_title": r.calling_ae_title,
        "state": r.state.value,
        "report_via": r.report_via,
        "attempts": r.attempts,
        "last_error": r.last_error,
        "owner": r.owner,
        "checked": r.checked,
        "committed": r.committed,
        "failed": r.failed,
        "items": [
            {
                "sop_class_uid": i.sop_class_uid,
                "sop_instance_uid": i.sop_instance_uid,
                "failure_reason": i.failure_reason if r.checked else None,
            }
            for i in r.items
        ],
        "next_attempt_at": r.next_attempt_at.isoformat() + "Z",
        "created_at": r.created_at.isoformat() + "Z",
        "updated_at": r.updated_at.isoformat() + "Z",
        "finished_at": r.finished_at.isoformat() + "Z" if r.finished_at else None,
    }


def _counts(r: CommitmentReport) -> str:
    if not r.checked:
        return f"?/{len(r.items)}"
    text = f"{r.committed}/{len(r.items)}"
    return text + (f" !{r.failed}" if r.failed else "")


def _status(r: CommitmentReport) -> str:
    if r.state == CommitmentState.PENDING:
        if r.owner:
            return "reporting now"
        return f"next attempt {_when(r.next_attempt_at)}" + (
            f"; {r.last_error}" if r.last_error else ""
        )
    if r.state == CommitmentState.FAILED:
        return r.last_error
    return f"reported {_when(r.finished_at)} on the {r.report_via.replace('-', ' ')}"


def _list_options(func: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed(
        [
            click.option(
                "--state",
                "states",
                multiple=True,
                type=click.Choice([s.value for s in CommitmentState]),
                help="Only requests in this state (repeatable). Default: pending and failed.",
            ),
            click.option(
                "--all",
                "show_all",
                is_flag=True,
                help="Every request kept ([commitment] keep_days), delivered ones too.",
            ),
            click.option(
                "--limit", type=int, default=50, show_default=True, help="Most requests shown."
            ),
            click.option("--json", "as_json", is_flag=True, help="Print JSON."),
        ]
    ):
        func = option(func)
    return func


@main.group(invoke_without_command=True)
@_list_options
@click.pass_context
@handle_errors
def commitment(
    ctx: click.Context, states: tuple[str, ...], show_all: bool, limit: int, as_json: bool
) -> None:
    """Storage commitment requests whose report is pending or failed (most recent first);
    or list, show or retry them."""
    if ctx.invoked_subcommand is not None:
        return
    _list(ctx, states, show_all, limit, as_json)


@commitment.command("list")
@_list_options
@click.pass_context
@handle_errors
def list_requests(
    ctx: click.Context, states: tuple[str, ...], show_all: bool, limit: int, as_json: bool
) -> None:
    """Storage commitment requests whose report is pending or failed (most recent first)."""
    _list(ctx, states, show_all, limit, as_json)


def _list(
    ctx: click.Context, states: tuple[str, ...], show_all: bool, limit: int, as_json: bool
) -> None:
    from tui_pacs.services.commitment import list_reports

    wanted: list[CommitmentState] | None
    if show_all:
        wanted = None
    elif states:
        wanted = [CommitmentState(s) for s in states]
    else:
        wanted = [CommitmentState.PENDING, CommitmentState.FAILED]
    rows = list_reports(_config(ctx), wanted, limit=limit)
    if as_json:
        click.echo(json.dumps([_as_json(r) for r in rows], indent=2))
        return
    if not rows:
        click.echo("no storage commitment requests" + ("" if show_all else " pending or failed"))
        return
    click.echo(
        f"{'ID':>5}  {'STATE':<9} {'REQUESTER':<16} {'COMMITTED':>11} {'TRIES':>5}  "
        f"{'RECEIVED':<19}  STATUS"
    )
    for r in rows:
        click.echo(
            f"{r.id:>5}  {r.state.value:<9} {r.calling_ae_title:<16} {_counts(r):>11} "
            f"{r.attempts:>5}  {_when(r.created_at):<19}  {_status(r)}"
        )


@commitment.command("show")
@click.argument("key")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
@handle_errors
def show(ctx: click.Context, key: str, as_json: bool) -> None:
    """One request, by id or Transaction UID, with the verdict on each instance."""
    from tui_pacs.services.commitment import get_report

    r = get_report(_config(ctx), key)
    if as_json:
        click.echo(json.dumps(_as_json(r), indent=2))
        return
    rows = [
        ("request", str(r.id)),
        ("transaction", r.transaction_uid),
        ("requester", r.calling_ae_title),
        ("state", r.state.value),
        ("report via", r.report_via),
        ("instances", f"{len(r.items)} ({_counts(r)} committed)"),
        ("attempts", str(r.attempts)),
        ("last error", r.last_error or "-"),
        ("next attempt", _when(r.next_attempt_at) if r.state == CommitmentState.PENDING else "-"),
        ("worked on by", r.owner or "-"),
        ("received", _when(r.created_at)),
        ("finished", _when(r.finished_at)),
    ]
    for label, value in rows:
        click.echo(f"{label:<13} {value}")
    if r.checked and r.failed:
        click.echo("failed instances (Failure Reason):")
        for item in r.items:
            if item.failure_reason:
                click.echo(f"  {item.sop_instance_uid}  0x{item.failure_reason:04X}")


@commitment.command("retry")
@click.argument("request_id", type=int)
@click.pass_context
@handle_errors
def retry(ctx: click.Context, request_id: int) -> None:
    """Report a failed request again (the running node sends it within seconds); the
    instances not committed so far are checked against the archive again first."""
    from tui_pacs.services.commitment import retry_report
    from tui_pacs.services.heartbeat import alive_nodes

    cfg = _config(ctx)
    r = retry_report(cfg, request_id)
    click.echo(
        f"storage commitment request {r.id} ({r.transaction_uid}) is pending again: "
        f"{_counts(r)} committed"
    )
    if alive_nodes(cfg):
        click.echo(f"the running node reports it to {r.calling_ae_title} within seconds")
    else:
        click.echo(
            f"no node is running: it is reported to {r.calling_ae_title} when `tui-pacs serve` "
            "starts",
            err=True,
        )
