"""``tui-pacs worklist``: the tech desk's orders from the command line.

``add``, ``edit`` and ``cancel`` change orders (the same validation as the console's form);
``list`` shows them with the images received, the MPPS status and the flags (``--json`` for
scripts); ``show`` one order with its MPPS; ``import FILE.csv`` reads orders from a CSV file whose
header row names DICOM keywords. The running node serves the orders to modalities as a Modality
Worklist at once.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Any

import click

from tui_pacs.cli import _config, handle_errors, main
from tui_pacs.model import (
    OrderFields,
    OrderProgress,
    OrderStatus,
    PerformedStepInfo,
    WorklistFilter,
    WorklistOrder,
)

#: (option, OrderFields field, help) of every order field.
FIELD_OPTIONS: tuple[tuple[str, str, str], ...] = (
    ("--patient-name", "patient_name", "Patient's Name, e.g. DOE^JOHN (required)."),
    ("--patient-id", "patient_id", "Patient ID (required)."),
    ("--birth-date", "patient_birth_date", "Patient's Birth Date, YYYYMMDD or YYYY-MM-DD."),
    ("--sex", "patient_sex", "Patient's Sex: M, F or O."),
    ("--accession", "accession_number", "Accession Number."),
    ("--modality", "modality", "Modality, e.g. CT (required)."),
    ("--date", "scheduled_procedure_step_start_date", "Scheduled start date or today (required)."),
    ("--time", "scheduled_procedure_step_start_time", "Scheduled start time, HH:MM or HHMMSS."),
    ("--station", "scheduled_station_ae_title", "Scheduled Station AE Title (the modality)."),
    ("--station-name", "scheduled_station_name", "Scheduled Station Name."),
    ("--physician", "scheduled_performing_physician_name", "Scheduled performing physician."),
    (
        "--sps-id",
        "scheduled_procedure_step_id",
        "Scheduled Procedure Step ID (assigned if left out).",
    ),
    ("--sps-description", "scheduled_procedure_step_description", "Step description."),
    ("--procedure-id", "requested_procedure_id", "Requested Procedure ID."),
    ("--procedure", "requested_procedure_description", "Requested Procedure Description."),
    ("--code-value", "requested_procedure_code_value", "Requested procedure code value."),
    ("--code-scheme", "requested_procedure_coding_scheme_designator", "Its coding scheme."),
    ("--code-meaning", "requested_procedure_code_meaning", "Its meaning."),
    ("--study-uid", "study_instance_uid", "Study Instance UID (assigned if left out)."),
)

_DAY = r"\d{8}|\d{4}-\d{2}-\d{2}"
_DATE_RANGE = re.compile(rf"({_DAY})?(\.\.|-)?({_DAY})?")


def _field_options(func: Callable[..., Any]) -> Callable[..., Any]:
    for option, field, text in reversed(FIELD_OPTIONS):
        func = click.option(option, field, default=None, help=text)(func)
    return func


def _given(values: dict[str, str | None]) -> dict[str, str]:
    """The options given, with ``--date today`` as today's date."""
    given = {k: v for k, v in values.items() if v is not None}
    date = given.get("scheduled_procedure_step_start_date", "")
    if date.strip().lower() == "today":
        given["scheduled_procedure_step_start_date"] = datetime.now().strftime("%Y%m%d")
    return given


def _service(ctx: click.Context) -> Any:
    from tui_pacs.services.worklist import WorklistService

    return WorklistService(_config(ctx))


def _date_range(text: str) -> tuple[str, str]:
    """``today``, ``all``, ``YYYYMMDD``, ``YYYY-MM-DD`` or a range ``A-B`` / ``A..B`` (open ends
    allowed) as ``(from, to)`` in ``YYYYMMDD``."""
    value = text.strip().lower()
    if value == "today":
        today = datetime.now().strftime("%Y%m%d")
        return today, today
    if value in ("", "all"):
        return "", ""
    match = _DATE_RANGE.fullmatch(value)
    if not match or not (match.group(1) or match.group(3)):
        raise click.BadParameter(f"{text!r}: use today, all, YYYYMMDD, YYYY-MM-DD or a range A-B")
    lo, sep, hi = match.groups()
    lo, hi = (lo or "").replace("-", ""), (hi or "").replace("-", "")
    return (lo, hi) if sep else (lo, lo)


def _order_json(order: WorklistOrder) -> dict[str, Any]:
    data = asdict(order)
    data["status"] = order.status.value
    data["created_at"] = order.created_at.isoformat()
    data["updated_at"] = order.updated_at.isoformat()
    return data


def _progress_json(progress: OrderProgress) -> dict[str, Any]:
    return {
        **_order_json(progress.order),
        "studies": list(progress.study_instance_uids),
        "matched_by": progress.matched_by,
        "series_received": progress.series_received,
        "instances_received": progress.instances_received,
        "mpps_status": progress.mpps_status,
        "mpps_instances": progress.mpps_instances,
        "flags": [f.value for f in progress.flags],
    }


def _step_json(step: PerformedStepInfo) -> dict[str, Any]:
    data = asdict(step)
    data["order_ids"] = list(step.order_ids)
    data["updated_at"] = step.updated_at.isoformat()
    return data


def _when(order: WorklistOrder) -> str:
    d, t = order.scheduled_procedure_step_start_date, order.scheduled_procedure_step_start_time
    text = f"{d[:4]}-{d[4:6]}-{d[6:]}" if len(d) == 8 else d
    if len(t) >= 4:
        text += f" {t[:2]}:{t[2:4]}"
    return text


def _table(rows: list[OrderProgress]) -> None:
    heads = (
        "ID",
        "WHEN",
        "MOD",
        "STATION",
        "PATIENT",
        "PATIENT ID",
        "ACCESSION",
        "STATUS",
        "IMAGES",
        "MPPS",
        "FLAGS",
    )
    cells = [
        (
            str(p.order.id),
            _when(p.order),
            p.order.modality,
            p.order.scheduled_station_ae_title,
            p.order.patient_name,
            p.order.patient_id,
            p.order.accession_number,
            p.order.status.value + (" (cancelled)" if p.order.cancelled else ""),
            f"{p.series_received}/{p.instances_received}",
            p.mpps_status or "-",
            ",".join(f.value for f in p.flags) or "-",
        )
        for p in rows
    ]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(heads)]
    for row in (heads, *cells):
        click.echo("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


@main.group(invoke_without_command=True)
@click.pass_context
def worklist(ctx: click.Context) -> None:
    """Orders of the tech desk (the Modality Worklist): list, add, edit, cancel, import."""
    if ctx.invoked_subcommand is None:
        ctx.invoke(list_orders)


@worklist.command("list")
@click.option(
    "--date",
    "dates",
    default="today",
    show_default=True,
    help="Scheduled date: today, all, YYYYMMDD, YYYY-MM-DD or a range A-B.",
)
@click.option("--modality", "-m", default="", help="Only this modality (e.g. CT).")
@click.option("--station", "-s", default="", help="Only this scheduled station AE title.")
@click.option(
    "--status",
    "statuses",
    multiple=True,
    type=click.Choice([s.value for s in OrderStatus]),
    help="Only these statuses (repeat the option for several).",
)
@click.option("--patient", "-p", default="", help="Patient name (wildcards) or exact patient ID.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
@handle_errors
def list_orders(
    ctx: click.Context,
    dates: str = "today",
    modality: str = "",
    station: str = "",
    statuses: tuple[str, ...] = (),
    patient: str = "",
    as_json: bool = False,
) -> None:
    """List orders with their images so far, MPPS status and flags."""
    date_from, date_to = _date_range(dates)
    flt = WorklistFilter(
        date_from=date_from,
        date_to=date_to,
        modality=modality.strip().upper(),
        station=station.strip(),
        statuses=frozenset(OrderStatus(s) for s in statuses),
        patient=patient,
    )
    service = _service(ctx)
    rows = service.progress(service.list_orders(flt))
    if as_json:
        click.echo(json.dumps([_progress_json(p) for p in rows], indent=2))
        return
    if not rows:
        click.echo("no orders" + ("" if dates == "all" else f" for {dates}"))
        return
    _table(rows)


@worklist.command("show")
@click.argument("order_id", type=int)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
@handle_errors
def show(ctx: click.Context, order_id: int, as_json: bool) -> None:
    """Show one order, the images received for it and its MPPS."""
    service = _service(ctx)
    progress = service.progress([service.get(order_id)])[0]
    steps = service.performed_steps(order_id)
    if as_json:
        data = _progress_json(progress)
        data["performed_procedure_steps"] = [_step_json(s) for s in steps]
        click.echo(json.dumps(data, indent=2))
        return
    order = progress.order
    for label, value in (
        ("order", str(order.id)),
        ("status", order.status.value + (" (cancelled)" if order.cancelled else "")),
        ("patient", f"{order.patient_name} ({order.patient_id})"),
        ("accession", order.accession_number),
        ("procedure", order.requested_procedure_description),
        ("modality", order.modality),
        ("station", order.scheduled_station_ae_title),
        ("scheduled", _when(order)),
        ("sps id", order.scheduled_procedure_step_id),
        ("study uid", order.study_instance_uid),
        ("images", f"{progress.series_received} series, {progress.instances_received} instances"),
        ("mpps", progress.mpps_status or "none"),
        ("flags", ", ".join(f.value for f in progress.flags) or "none"),
    ):
        click.echo(f"{label:<10} {value}")
    for step in steps:
        click.echo(
            f"mpps {step.sop_instance_uid}: {step.status}, {step.instances} instance(s)"
            f" from {step.performed_station_ae_title or step.calling_ae_title}"
        )


@worklist.command("add")
@_field_options
@click.pass_context
@handle_errors
def add(ctx: click.Context, **values: str | None) -> None:
    """Add an order (a Scheduled Procedure Step)."""
    fields = OrderFields(**_given(values))
    order = _service(ctx).create(fields)
    click.echo(
        f"added order {order.id}: {order.patient_name} {order.modality} {_when(order)} "
        f"(accession {order.accession_number or '-'}, SPS {order.scheduled_procedure_step_id}, "
        f"study {order.study_instance_uid})"
    )


@worklist.command("edit")
@click.argument("order_id", type=int)
@_field_options
@click.pass_context
@handle_errors
def edit(ctx: click.Context, order_id: int, **values: str | None) -> None:
    """Change an order (options left out keep their value)."""
    order = _service(ctx).edit(order_id, **_given(values))
    click.echo(f"updated order {order.id}")


@worklist.command("cancel")
@click.argument("order_id", type=int)
@click.pass_context
@handle_errors
def cancel(ctx: click.Context, order_id: int) -> None:
    """Cancel an order: it leaves the worklist (status discontinued)."""
    order = _service(ctx).cancel(order_id)
    click.echo(f"cancelled order {order.id}")


@worklist.command("import")
@click.argument("csv_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.pass_context
@handle_errors
def import_csv(ctx: click.Context, csv_file: Path) -> None:
    """Import orders from CSV; the header row names DICOM keywords.

    Columns: PatientName, PatientID, PatientBirthDate, PatientSex, AccessionNumber,
    RequestedProcedureID, RequestedProcedureDescription, ScheduledProcedureStepID,
    ScheduledProcedureStepDescription, Modality, ScheduledStationAETitle, ScheduledStationName,
    ScheduledProcedureStepStartDate, ScheduledProcedureStepStartTime,
    ScheduledPerformingPhysicianName, StudyInstanceUID (and CodeValue, CodingSchemeDesignator,
    CodeMeaning for the requested procedure code). PatientName, PatientID, Modality and
    ScheduledProcedureStepStartDate are required. Good rows are imported; bad rows are listed
    by line number on stderr and the command exits with status 1.
    """
    report = _service(ctx).import_csv(csv_file)
    click.echo(f"imported {len(report.imported)} order(s) from {csv_file}")
    for error in report.errors:
        click.echo(f"{csv_file}:{error.line}: {'; '.join(error.reasons)}", err=True)
    if report.errors:
        click.echo(f"{len(report.errors)} row(s) refused", err=True)
        sys.exit(1)
