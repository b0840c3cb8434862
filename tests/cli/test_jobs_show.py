"""`tui-pacs jobs show`: a job described in words still shows the UIDs and paths it names."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from click.testing import CliRunner

from tests.cli.config_file import write_config_file
from tui_pacs.cli import main
from tui_pacs.config import Config
from tui_pacs.model import RemoteNode
from tui_pacs.services import jobs as job_service

NODE = RemoteNode("pacs", "PACS", "127.0.0.1", 1, retrieve_method="get")


def test_labelled_jobs_keep_their_uids_in_show(tmp_path: Path) -> None:
    """Jobs queued with a label are described by it; `jobs show` lists the study and series."""
    config = replace(
        Config(),
        storage_path=tmp_path / "archive",
        database_url=f"sqlite:///{tmp_path / 'index.sqlite3'}",
    )
    path = write_config_file(config, tmp_path)
    send = job_service.queue_send(
        config, NODE, study_instance_uids=["1.2.3"], label="the study of DOE, John (CT HEAD)"
    )
    get = job_service.queue_retrieve(
        config, NODE, "1.2.4", ["1.2.4.1"], label="1 series of the study of DOE, Jane"
    )
    assert send.description == "send the study of DOE, John (CT HEAD) to pacs"
    assert get.description == "retrieve 1 series of the study of DOE, Jane from pacs (C-GET)"
    runner = CliRunner()
    shown = runner.invoke(main, ["--config", str(path), "jobs", "show", str(send.id)])
    assert shown.exit_code == 0, shown.output
    assert "study        1.2.3" in shown.stdout
    shown = runner.invoke(main, ["--config", str(path), "jobs", "show", str(get.id)])
    assert "study        1.2.4" in shown.stdout and "series       1.2.4.1" in shown.stdout
