"""`tui-pacs worklist`: add, list (table and JSON, filters), show, edit, cancel and the CSV
import with line-numbered errors and exit status; one-line errors without tracebacks."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner, Result

from tests.cli.config_file import write_config_file
from tui_pacs.cli import main
from tui_pacs.config import Config


def _run(cfg: Path, *args: str) -> Result:
    return CliRunner().invoke(main, ["--config", str(cfg), "worklist", *args])


ADD = (
    "add",
    "--patient-name",
    "DOE^JOHN",
    "--patient-id",
    "P1",
    "--modality",
    "ct",
    "--station",
    "CT1",
    "--time",
    "09:30",
    "--accession",
    "A1",
    "--procedure",
    "CT head",
)


def test_add_list_show_edit_cancel(sqlite_config: Config, tmp_path: Path) -> None:
    """An order added for today is listed (table, JSON), shown, edited and cancelled."""
    cfg = write_config_file(sqlite_config, tmp_path)
    added = _run(cfg, *ADD, "--date", "today")
    assert added.exit_code == 0, added.output
    assert added.output.startswith("added order 1: DOE^JOHN CT ")
    assert "SPS SPS1" in added.output and "study 2.25." in added.output
    table = _run(cfg).output.splitlines()  # no subcommand: today's orders
    assert table[0].split()[:4] == ["ID", "WHEN", "MOD", "STATION"]
    assert table[1].split()[0] == "1" and "scheduled" in table[1] and "0/0" in table[1]
    listed = json.loads(_run(cfg, "list", "--json").output)
    assert [(o["id"], o["status"], o["instances_received"], o["flags"]) for o in listed] == [
        (1, "scheduled", 0, [])
    ]
    assert listed[0]["scheduled_procedure_step_start_time"] == "093000"
    shown = _run(cfg, "show", "1")
    assert shown.exit_code == 0 and "patient    DOE^JOHN (P1)" in shown.output
    data = json.loads(_run(cfg, "show", "1", "--json").output)
    assert data["performed_procedure_steps"] == [] and data["modality"] == "CT"
    assert _run(cfg, "edit", "1", "--modality", "MR", "--time", "1000").exit_code == 0
    edited = json.loads(_run(cfg, "show", "1", "--json").output)
    assert (edited["modality"], edited["scheduled_procedure_step_start_time"]) == ("MR", "100000")
    assert edited["study_instance_uid"] == data["study_instance_uid"]
    cancelled = _run(cfg, "cancel", "1")
    assert cancelled.exit_code == 0 and cancelled.output == "cancelled order 1\n"
    after = json.loads(_run(cfg, "list", "--json").output)[0]
    assert (after["status"], after["cancelled"]) == ("discontinued", True)


def test_list_filters(sqlite_config: Config, tmp_path: Path) -> None:
    """--date (single, range, all), --modality, --station and --status narrow the list."""
    cfg = write_config_file(sqlite_config, tmp_path)
    for date, modality, station in (
        ("20240501", "CT", "CT1"),
        ("2024-05-02", "MR", "MR1"),
        ("20240503", "CT", "CT2"),
    ):
        result = _run(
            cfg,
            "add",
            "--patient-name",
            "A^B",
            "--patient-id",
            "P",
            "--modality",
            modality,
            "--station",
            station,
            "--date",
            date,
        )
        assert result.exit_code == 0, result.output

    def ids(*args: str) -> list[int]:
        result = _run(cfg, "list", "--json", *args)
        assert result.exit_code == 0, result.output
        return [o["id"] for o in json.loads(result.output)]

    assert ids() == []  # today
    assert ids("--date", "all") == [1, 2, 3]
    assert ids("--date", "20240502") == [2]
    assert ids("--date", "2024-05-02-2024-05-03") == [2, 3]
    assert ids("--date", "20240502-") == [2, 3]
    assert ids("--date", "all", "--modality", "ct") == [1, 3]
    assert ids("--date", "all", "--station", "CT2") == [3]
    _run(cfg, "cancel", "1")
    assert ids("--date", "all", "--status", "discontinued") == [1]
    assert "no orders for today" in _run(cfg, "list").output
    bad = _run(cfg, "list", "--date", "May")
    assert bad.exit_code == 2 and "use today, all" in bad.output


def test_errors_are_one_line(sqlite_config: Config, tmp_path: Path) -> None:
    """Invalid fields, unknown orders and forbidden changes exit 1 with Title: message."""
    cfg = write_config_file(sqlite_config, tmp_path)
    assert _run(cfg, *ADD, "--date", "20240501").exit_code == 0
    cases = [
        ((*ADD, "--date", "20240231"), "Invalid order: ScheduledProcedureStepStartDate"),
        (("add", "--patient-id", "P2"), "PatientName: required"),
        ((*ADD, "--date", "20240501", "--sex", "Q"), "PatientSex: 'Q': use M, F or O"),
        (("edit", "7", "--modality", "CT"), "Unknown order: no order has id 7"),
        (("show", "7"), "Unknown order:"),
        (("cancel", "7"), "Unknown order:"),
    ]
    for args, message in cases:
        result = _run(cfg, *args)
        assert result.exit_code == 1, (args, result.output)
        assert message in result.output and "Traceback" not in result.output, result.output
        assert len(result.output.strip().splitlines()) == 1, result.output


def test_import(sqlite_config: Config, tmp_path: Path) -> None:
    """Good rows are imported; bad rows are listed as FILE:LINE: reasons and the exit status
    is 1; a clean file exits 0; a bad header refuses the file."""
    cfg = write_config_file(sqlite_config, tmp_path)
    path = tmp_path / "orders.csv"
    path.write_text(
        "PatientName,PatientID,Modality,ScheduledProcedureStepStartDate,PatientSex\n"
        "DOE^JOHN,P1,CT,20240501,M\n"
        "ROE^RICHARD,P2,CT,20240532,M\n"
        "SMITH^ANNA,P3,MR,20240502,F\n",
        encoding="utf-8",
    )
    result = _run(cfg, "import", str(path))
    assert result.exit_code == 1
    assert result.stdout == f"imported 2 order(s) from {path}\n"
    assert result.stderr.splitlines() == [
        f"{path}:3: ScheduledProcedureStepStartDate: '20240532' is not a calendar date",
        "1 row(s) refused",
    ]
    good = tmp_path / "good.csv"
    good.write_text(
        "PatientName;PatientID;Modality;ScheduledProcedureStepStartDate\nA^B;P9;US;20240501\n",
        encoding="utf-8",
    )
    assert _run(cfg, "import", str(good)).exit_code == 0
    assert len(json.loads(_run(cfg, "list", "--json", "--date", "all").output)) == 3
    bad = tmp_path / "bad.csv"
    bad.write_text("Name,ID\n", encoding="utf-8")
    refused = _run(cfg, "import", str(bad))
    assert (
        refused.exit_code == 1 and "Worklist: line 1: unknown column(s) Name, ID" in refused.output
    )
