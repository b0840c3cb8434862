"""``tui-pacs jobs``: list, show, cancel and retry jobs; and how every job command waits.

A job is executed by the running node (``tui-pacs serve``), so it outlives the SSH session that
queued it. A command that waits draws a progress bar until the job ends; ``--detach`` returns at
once with the job id. With no node alive, a waiting command runs a node inside its own process
(listener and runner, for its own job only) until the job ends; ``--detach`` then refuses.
"""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Callable
from dataclasses import fields
from typing import Any

import click

from tui_pacs.cli import _config, handle_errors, main
from tui_pacs.config import Config
from tui_pacs.errors import PacsError
from tui_pacs.model import JobInfo, JobState

NO_NODE = (
    "no tui-pacs node is running on this database, and --detach needs one to run the job: "
    "start it with `tui-pacs serve` (or under systemd), or leave out --detach to run the job "
    "inside this command"
)


def _done(info: JobInfo) -> int:
    return info.completed + info.failed + info.warning


class ProgressLine:
    """A one-line progress bar on stderr, redrawn in place on a terminal, silent otherwise."""

    def __init__(self, label: str, quiet: bool = False) -> None:
        self.label = label
        self.quiet = quiet
        self.tty = sys.stderr.isatty()
        self._drawn = False

    def __call__(self, info: JobInfo) -> None:
        if self.quiet or not self.tty:
            return
        width = min(30, max(10, shutil.get_terminal_size((80, 24)).columns - 60))
        if info.state == JobState.QUEUED:
            text = f"{self.label}: queued, waiting for the node"
        elif info.total:
            filled = int(width * min(1.0, _done(info) / info.total))
            bar = "#" * filled + "-" * (width - filled)
            text = f"{self.label} [{bar}] {_done(info)}/{info.total}"
            if info.failed:
                text += f" failed {info.failed}"
        else:
            text = f"{self.label}: {info.state}, {_done(info)} done"
        click.echo("\r" + text.ljust(70), err=True, nl=False)
        self._drawn = True

    def close(self) -> None:
        if self._drawn:
            click.echo("", err=True)
            self._drawn = False


def summary(info: JobInfo) -> str:
    """One line saying how a job ended."""
    counts = f"{info.completed} completed, {info.warning} warning, {info.failed} failed"
    if info.total is not None:
        counts += f" of {info.total}"
    text = f"job {info.id} {info.state}: {counts}"
    if info.error:
        text += f" — {info.error}"
    return text


def follow(cfg: Config, job_id: int, label: str, quiet: bool) -> JobInfo:
    """Wait for a job with a progress bar; returns its final state."""
    from tui_pacs.services.jobs import wait_for_job

    bar = ProgressLine(label, quiet)
    try:
        return wait_for_job(cfg, job_id, on_update=bar)
    finally:
        bar.close()


def _report(info: JobInfo) -> None:
    line = summary(info)
    if info.state == JobState.COMPLETED:
        click.echo(line)
    else:
        click.echo(line, err=True)
    if info.failed_uids:
        shown = info.failed_uids[:20]
        click.echo("failed: " + ", ".join(shown), err=True)
        if len(info.failed_uids) > len(shown):
            click.echo(f"... and {len(info.failed_uids) - len(shown)} more", err=True)


def run_job(
    cfg: Config,
    queue: Callable[[], JobInfo],
    *,
    label: str,
    detach: bool,
    quiet: bool,
) -> None:
    """Queue a job with ``queue`` and wait for it (or not, with ``detach``); exits the command.

    Exit status: 0 when the job completed, 1 when it failed or was cancelled, 130 on Ctrl-C.
    """
    from tui_pacs.services.heartbeat import alive_nodes

    if alive_nodes(cfg):
        job = queue()
        if detach:
            click.echo(f"job {job.id} queued: {job.description}")
            click.echo(f"follow it with `tui-pacs jobs show {job.id}`", err=True)
            return
        try:
            info = follow(cfg, job.id, label, quiet)
        except KeyboardInterrupt:
            click.echo(
                f"\nstopped following; job {job.id} goes on in the node "
                f"(`tui-pacs jobs show {job.id}`, `tui-pacs jobs cancel {job.id}`)",
                err=True,
            )
            sys.exit(130)
    elif detach:
        raise PacsError(NO_NODE, "No node running")
    else:
        info = _run_in_process(cfg, queue, label, quiet)
    _report(info)
    sys.exit(0 if info.state == JobState.COMPLETED else 1)


def _run_in_process(cfg: Config, queue: Callable[[], JobInfo], label: str, quiet: bool) -> JobInfo:
    """Run a node in this process for one job (no node is alive to run it)."""
    from tui_pacs.services.jobs import cancel_job, wait_for_job
    from tui_pacs.services.node import Node, setup_logging

    setup_logging(cfg, to_stderr=False)
    try:
        node = Node(cfg, only_jobs=set())
    except OSError as exc:
        raise PacsError(
            f"no node is running and this command cannot run one: cannot listen on "
            f"{cfg.bind_address}:{cfg.port} ({exc.strerror or exc}); start `tui-pacs serve`",
            "No node running",
        ) from exc
    node.start()
    try:
        job = queue()
        node.jobs.allow(job.id)
        try:
            return follow(cfg, job.id, label, quiet)
        except KeyboardInterrupt:
            click.echo(f"\ncancelling job {job.id}", err=True)
            try:
                cancel_job(cfg, job.id)
                wait_for_job(cfg, job.id, timeout=20)
            except (PacsError, TimeoutError):
                pass
            sys.exit(130)
    finally:
        node.stop()


def _as_json(info: JobInfo) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in fields(info):
        name = f.name
        value = getattr(info, name)
        if hasattr(value, "isoformat"):
            value = value.isoformat() + "Z"
        elif isinstance(value, tuple):
            value = list(value)
        elif isinstance(value, JobState):
            value = value.value
        out[name] = value
    return out


def _age(info: JobInfo) -> str:
    return info.created_at.strftime("%Y-%m-%d %H:%M:%S")


@main.group(invoke_without_command=True)
@click.option("--all", "show_all", is_flag=True, help="Every job, not only the last 20.")
@click.option(
    "--state",
    "states",
    multiple=True,
    type=click.Choice([s.value for s in JobState]),
    help="Only jobs in this state (repeatable).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
@handle_errors
def jobs(ctx: click.Context, show_all: bool, states: tuple[str, ...], as_json: bool) -> None:
    """List jobs (retrieve, send), most recent first; or show, cancel, retry one."""
    if ctx.invoked_subcommand is not None:
        return
    from tui_pacs.services.jobs import list_jobs

    cfg = _config(ctx)
    rows = list_jobs(
        cfg, [JobState(s) for s in states] or None, limit=1_000_000 if show_all else 20
    )
    if as_json:
        click.echo(json.dumps([_as_json(r) for r in rows], indent=2))
        return
    if not rows:
        click.echo("no jobs")
        return
    click.echo(
        f"{'ID':>5}  {'STATE':<10} {'KIND':<9} {'PROGRESS':>13}  {'CREATED':<19}  DESCRIPTION"
    )
    for r in rows:
        progress = f"{_done(r)}/{r.total if r.total is not None else '?'}"
        if r.failed:
            progress += f" !{r.failed}"
        click.echo(
            f"{r.id:>5}  {r.state.value:<10} {r.kind:<9} {progress:>13}  {_age(r):<19}  "
            f"{r.description}"
        )


@jobs.command("show")
@click.argument("job_id", type=int)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
@handle_errors
def show(ctx: click.Context, job_id: int, as_json: bool) -> None:
    """Everything about one job."""
    from tui_pacs.net.status import describe
    from tui_pacs.services.jobs import get_job

    info = get_job(_config(ctx), job_id)
    if as_json:
        click.echo(json.dumps(_as_json(info), indent=2))
        return
    rows = [
        ("job", str(info.id)),
        ("kind", info.kind),
        (
            "state",
            info.state.value
            + (" (cancel requested)" if info.cancel_requested and not info.state.finished else ""),
        ),
        ("node", info.node_name),
        ("description", info.description),
        *_what_rows(info.params),
        ("total", "?" if info.total is None else str(info.total)),
        ("completed", str(info.completed)),
        ("warning", str(info.warning)),
        ("failed", str(info.failed)),
        ("remaining", "?" if info.remaining is None else str(info.remaining)),
        ("last status", describe(info.last_status) if info.last_status is not None else "-"),
        ("error", info.error or "-"),
        ("attempts", str(info.attempts)),
        ("run by", info.owner or "-"),
        ("created", str(info.created_at)),
        ("started", str(info.started_at or "-")),
        ("finished", str(info.finished_at or "-")),
    ]
    for key, value in rows:
        click.echo(f"{key:<12} {value}")
    if info.failed_uids:
        click.echo("failed UIDs:")
        for uid in info.failed_uids:
            click.echo(f"  {uid}")


@jobs.command("cancel")
@click.argument("job_id", type=int)
@click.pass_context
@handle_errors
def cancel(ctx: click.Context, job_id: int) -> None:
    """Cancel a queued or running job (a running one stops within a second or two)."""
    from tui_pacs.services.jobs import cancel_job

    state = cancel_job(_config(ctx), job_id)
    if state == JobState.CANCELLED:
        click.echo(f"job {job_id} cancelled")
    else:
        click.echo(f"job {job_id}: cancel requested; the node stops it shortly")


@jobs.command("retry")
@click.argument("job_id", type=int)
@click.option("--detach", is_flag=True, help="Return at once (the running node does the work).")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@click.pass_context
@handle_errors
def retry(ctx: click.Context, job_id: int, detach: bool, quiet: bool) -> None:
    """Queue a failed or cancelled job again and wait for it (unless --detach)."""
    from tui_pacs.services.jobs import get_job, retry_job

    cfg = _config(ctx)
    info = get_job(cfg, job_id)
    if info.state not in (JobState.FAILED, JobState.CANCELLED):
        raise PacsError(
            f"job {job_id} is {info.state}; only failed or cancelled jobs can be retried",
            "Cannot retry",
        )
    run_job(
        cfg,
        lambda: retry_job(cfg, job_id),
        label=f"job {job_id}",
        detach=detach,
        quiet=quiet,
    )


def _what_rows(params: dict[str, object]) -> list[tuple[str, str]]:
    """The study, series and paths a job names (its description may say it in words only)."""
    rows: list[tuple[str, str]] = []
    for key, label in (
        ("study_uid", "study"),
        ("study_uids", "study"),
        ("series_uids", "series"),
        ("paths", "path"),
    ):
        value = params.get(key)
        values = [value] if isinstance(value, str) else value if isinstance(value, list) else []
        rows.extend((label, str(v)) for v in values if v)
    return rows
