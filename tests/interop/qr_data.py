"""A small Q/R test corpus (two patients, three series) and helpers to run our node in-process."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

from pydicom import dcmread

from tests.interop.synth import make_ct, new_uid
from tui_pacs.config import Config
from tui_pacs.model import JobInfo
from tui_pacs.services.jobs import wait_for_job
from tui_pacs.services.node import Node


@dataclass
class Series:
    uid: str
    modality: str
    files: list[Path] = field(default_factory=list)

    @property
    def sop_uids(self) -> set[str]:
        return {str(dcmread(p, stop_before_pixels=True).SOPInstanceUID) for p in self.files}


@dataclass
class Study:
    uid: str
    patient_id: str
    patient_name: str
    study_date: str
    series: list[Series] = field(default_factory=list)

    @property
    def files(self) -> list[Path]:
        return [p for s in self.series for p in s.files]

    @property
    def sop_uids(self) -> set[str]:
        return {u for s in self.series for u in s.sop_uids}


def write_corpus(folder: Path) -> list[Study]:
    """Study A: ALPHA^ANNA, 2024-01-31, CT x3 + CT x2. Study B: BETA^BOB, 2023-06-15, MR x2."""
    studies = [
        Study(new_uid(), "PID_A", "Alpha^Anna", "20240131"),
        Study(new_uid(), "PID_B", "Beta^Bob", "20230615"),
    ]
    layout = {0: [("CT", 3), ("CT", 2)], 1: [("MR", 2)]}
    for index, study in enumerate(studies):
        for number, (modality, count) in enumerate(layout[index], start=1):
            series = Series(new_uid(), modality)
            for i in range(1, count + 1):
                ds = make_ct(
                    study.uid,
                    series.uid,
                    new_uid(),
                    32,
                    32,
                    patient_id=study.patient_id,
                    patient_name=study.patient_name,
                    instance_number=i,
                    series_number=number,
                    modality=modality,
                )
                ds.StudyDate = ds.SeriesDate = study.study_date
                ds.AccessionNumber = f"ACC{index}"
                path = folder / f"s{index}-{number}-{i}.dcm"
                path.parent.mkdir(parents=True, exist_ok=True)
                ds.save_as(path, enforce_file_format=True)
                series.files.append(path)
            study.series.append(series)
    return studies


def node_config(folder: Path, port: int, database_url: str | None = None, **kw: object) -> Config:
    """A config for an in-process node on a fixed loopback port (the port a peer knows us by)."""
    return replace(
        Config(),
        ae_title=str(kw.pop("ae_title", "TUI_PACS")),
        bind_address="127.0.0.1",
        port=port,
        storage_path=folder / "archive",
        database_url=database_url or f"sqlite:///{folder / 'index.sqlite3'}",
        log_file=folder / "tui-pacs.log",
        **kw,  # type: ignore[arg-type]
    )


@contextmanager
def running_node(config: Config) -> Iterator[Node]:
    """Our node (listener, job runner, heartbeat) in this process."""
    node = Node(config)
    node.start()
    try:
        yield node
    finally:
        node.stop()


def finish(config: Config, job: JobInfo, timeout: float = 120) -> JobInfo:
    """Wait for a job to end."""
    return wait_for_job(config, job.id, timeout=timeout, poll_interval=0.1)
