"""Query/Retrieve commands: ``find`` on a remote node, ``retrieve`` a study or series from it."""

from __future__ import annotations

import json

import click

from tui_pacs.cli import _config, handle_errors, main
from tui_pacs.config import Config
from tui_pacs.model import RemoteNode

#: Column headings and widths of the table ``find`` prints, per keyword.
_COLUMNS: dict[str, tuple[str, int]] = {
    "PatientID": ("PATIENT ID", 14),
    "PatientName": ("NAME", 24),
    "PatientBirthDate": ("BORN", 8),
    "PatientSex": ("SEX", 3),
    "NumberOfPatientRelatedStudies": ("STUDIES", 7),
    "StudyDate": ("DATE", 8),
    "StudyTime": ("TIME", 6),
    "AccessionNumber": ("ACCESSION", 12),
    "ModalitiesInStudy": ("MODS", 8),
    "StudyDescription": ("DESCRIPTION", 24),
    "NumberOfStudyRelatedSeries": ("SER", 4),
    "NumberOfStudyRelatedInstances": ("IMGS", 5),
    "SeriesNumber": ("NO", 4),
    "Modality": ("MOD", 4),
    "SeriesDescription": ("DESCRIPTION", 24),
    "SeriesDate": ("DATE", 8),
    "NumberOfSeriesRelatedInstances": ("IMGS", 5),
    "InstanceNumber": ("NO", 5),
    "SOPClassUID": ("SOP CLASS", 28),
}


def _resolve(cfg: Config, spec: str) -> RemoteNode:
    """A node by registry name, AE title or ``AE@HOST:PORT``."""
    from tui_pacs.services import remote

    return remote.resolve_node(cfg, spec)


def _print_table(rows: list[dict[str, str]], keys: tuple[str, ...]) -> None:
    columns = [k for k in keys if k in _COLUMNS or k.endswith("UID")]
    widths = {}
    for key in columns:
        head, width = _COLUMNS.get(key, (key.removesuffix("InstanceUID").upper() + " UID", 0))
        widest = max((len(r.get(key, "")) for r in rows), default=0)
        widths[key] = (head, max(len(head), min(width or 64, widest)))
    click.echo("  ".join(head.ljust(w) for head, w in widths.values()).rstrip())
    for row in rows:
        cells = []
        for key in columns:
            _head, width = widths[key]
            value = row.get(key, "")
            if len(value) > width:
                value = value[: width - 1] + "…"
            cells.append(value.ljust(width))
        click.echo("  ".join(cells).rstrip())


@main.command()
@click.argument("node")
@click.option(
    "--level",
    type=click.Choice(["patient", "study", "series", "image"]),
    default="study",
    show_default=True,
    help="Query/Retrieve level.",
)
@click.option(
    "--root",
    type=click.Choice(["patient", "study"]),
    default=None,
    help="Information model (default: study; patient for --level patient).",
)
@click.option("--patient-id", default="", help="Patient ID (wildcards * and ? allowed).")
@click.option("--name", default="", help="Patient's name, e.g. 'DOE^J*' (case rules: the peer's).")
@click.option("--accession", default="", help="Accession number.")
@click.option("--date", "date", default="", help="Study date or range: YYYYMMDD[-YYYYMMDD].")
@click.option("--modality", default="", help="Modality (in study, or of the series).")
@click.option("--study", "study_uid", default="", help="Study Instance UID.")
@click.option("--series", "series_uid", default="", help="Series Instance UID.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (a list of {keyword: value}).")
@click.pass_context
@handle_errors
def find(
    ctx: click.Context,
    node: str,
    level: str,
    root: str | None,
    patient_id: str,
    name: str,
    accession: str,
    date: str,
    modality: str,
    study_uid: str,
    series_uid: str,
    as_json: bool,
) -> None:
    """Query a remote NODE with C-FIND and print what matches (a table, or --json)."""
    from tui_pacs.services.qr import RETURN_KEYS, FindQuery, QueryError, find

    cfg = _config(ctx)
    target = _resolve(cfg, node)
    query = FindQuery(
        level=level.upper(),
        root=root or ("patient" if level == "patient" else "study"),
        patient_id=patient_id,
        patient_name=name,
        accession_number=accession,
        study_date=date,
        modality=modality,
        study_instance_uid=study_uid,
        series_instance_uid=series_uid,
    )
    try:
        rows = list(find(cfg, target, query))
    except QueryError as exc:
        raise click.UsageError(exc.message) from exc
    if as_json:
        click.echo(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    if not rows:
        click.echo("no matches", err=True)
        return
    _print_table(rows, RETURN_KEYS[query.level])
    click.echo(f"{len(rows)} match(es)", err=True)


@main.command()
@click.argument("node")
@click.option("--study", "study_uid", required=True, help="Study Instance UID to retrieve.")
@click.option(
    "--series",
    "series_uids",
    multiple=True,
    help="Only this series of the study (repeatable).",
)
@click.option(
    "--method",
    type=click.Choice(["move", "get"]),
    default=None,
    help="C-MOVE to our own AE or C-GET (default: the node's retrieve_method).",
)
@click.option("--detach", is_flag=True, help="Return at once with the job id (needs `serve`).")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@click.pass_context
@handle_errors
def retrieve(
    ctx: click.Context,
    node: str,
    study_uid: str,
    series_uids: tuple[str, ...],
    method: str | None,
    detach: bool,
    quiet: bool,
) -> None:
    """Retrieve a study (or some of its series) from NODE into our archive, as a job.

    The running node does the work, so it goes on if this terminal goes away. Without --detach
    the command waits with a progress bar; exit status 0 when every instance arrived.
    """
    from tui_pacs.cli.jobs import run_job
    from tui_pacs.services.jobs import queue_retrieve

    cfg = _config(ctx)
    target = _resolve(cfg, node)
    run_job(
        cfg,
        lambda: queue_retrieve(cfg, target, study_uid, series_uids, method),
        label=f"Retrieving from {target.ae_title}",
        detach=detach,
        quiet=quiet,
    )
