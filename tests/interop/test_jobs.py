"""The job runner of a real node process: crash and restart mid-retrieve, clean stop, cancel,
retry, and ``--detach`` followed by ``tui-pacs jobs``."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from tests.interop.synth import write_series
from tests.net.archive_audit import audit, count_instances
from tests.peers import NodeProcess, OrthancProcess, free_port, run_dcmtk
from tui_pacs.cli import main
from tui_pacs.config import load_config
from tui_pacs.model import JobInfo, JobState, RemoteNode
from tui_pacs.services.jobs import get_job, wait_for_job
from tui_pacs.store import heartbeat
from tui_pacs.store.db import open_database

pytestmark = [pytest.mark.interop, pytest.mark.slow]

#: The study a node is killed in the middle of ("a few hundred instances").
BIG = 200
#: The study of the quicker tests (still long enough to cancel in the middle).
SMALL = 40


class Source:
    """Orthanc holding a big and a small study; our node's port is in its modalities."""

    def __init__(self, orthanc: OrthancProcess, big: str, small: str, our_port: int) -> None:
        self.orthanc = orthanc
        self.big = big
        self.small = small
        self.our_port = our_port
        self.spec = f"{orthanc.ae_title}@127.0.0.1:{orthanc.dicom_port}"
        self.node = RemoteNode("orthanc", orthanc.ae_title, "127.0.0.1", orthanc.dicom_port)


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Source]:
    """One Orthanc with a study of a few hundred small images and one of a few dozen."""
    base = tmp_path_factory.mktemp("jobs-orthanc")
    big = _study_uid(write_series(base / "studies" / "big", BIG)[0])
    small = _study_uid(write_series(base / "studies" / "small", SMALL, patient_id="SMALL")[0])
    our_port = free_port()
    with OrthancProcess(
        base / "orthanc", modalities={"tuipacs": ("TUI_PACS", "127.0.0.1", our_port)}
    ) as orthanc:
        r = run_dcmtk("storescu", "-aec", orthanc.ae_title, "127.0.0.1", str(orthanc.dicom_port),
                      "+sd", "+r", str(base / "studies"))  # fmt: skip
        assert r.returncode == 0, r.stderr
        yield Source(orthanc, big, small, our_port)


def _study_uid(path: Path) -> str:
    from pydicom import dcmread

    return str(dcmread(path, stop_before_pixels=True).StudyInstanceUID)


@pytest.fixture
def node(tmp_path: Path, source: Source) -> Iterator[NodeProcess]:
    """Our node as a ``tui-pacs serve`` process on the port Orthanc knows (stopped at the end)."""
    proc = NodeProcess(tmp_path / "node", port=source.our_port)
    yield proc
    proc.stop()


def cli(node: NodeProcess, *args: str) -> Result:
    """``tui-pacs --config <the node's config> ARGS``, run in this process (the node is not)."""
    return CliRunner().invoke(main, ["--config", str(node.config_path), *args])


def _db_url(node: NodeProcess) -> str:
    return load_config(node.config_path).effective_database_url


def _start(node: NodeProcess) -> None:
    """Start the node and wait until its heartbeat says it is alive."""
    node.start()
    open_database(_db_url(node))
    deadline = time.monotonic() + 30
    while not heartbeat.alive_nodes():
        assert time.monotonic() < deadline, "no heartbeat from the node"
        time.sleep(0.05)


def _detach_retrieve(node: NodeProcess, source: Source, study_uid: str) -> int:
    r = cli(node, "retrieve", source.spec, "--study", study_uid, "--detach")
    assert r.exit_code == 0, r.output
    match = re.search(r"job (\d+) queued", r.stdout)
    assert match, r.stdout
    return int(match[1])


def _wait_instances(node: NodeProcess, at_least: int, timeout: float = 60) -> int:
    url = _db_url(node)
    deadline = time.monotonic() + timeout
    while True:
        n = count_instances(url)
        if n >= at_least:
            return n
        assert time.monotonic() < deadline, f"only {n} instance(s) arrived"
        time.sleep(0.02)


def _wait_job(node: NodeProcess, job_id: int, timeout: float = 120) -> JobInfo:
    config = load_config(node.config_path)
    return wait_for_job(config, job_id, timeout=timeout, poll_interval=0.1)


def _assert_archive_sound(node: NodeProcess) -> None:
    """Every index row has its whole file; no temporary file; a stray file is a committed one."""
    report = audit(node.archive, _db_url(node))
    assert report.problems() == []
    # A kill between linking a file and committing its row leaves a file no row points to;
    # it was never acknowledged, and the instance itself arrived again and is indexed.
    indexed = set(report.instances)
    for path in report.unindexed_files:
        stem = path.name.removesuffix(".dcm")  # <SOP UID> or <SOP UID>.<8 hex>
        assert stem in indexed or stem.rsplit(".", 1)[0] in indexed, path


def test_kill_9_mid_retrieve_then_restart(node: NodeProcess, source: Source) -> None:
    """kill -9 during a retrieve: after a restart the job is resumed and completes, sound."""
    _start(node)
    job_id = _detach_retrieve(node, source, source.big)
    arrived = _wait_instances(node, 40)
    node.kill()
    assert arrived < BIG, "the retrieve finished before the kill; make the study bigger"
    killed = get_job(load_config(node.config_path), job_id)
    assert killed.state == JobState.RUNNING  # the dead node could not say anything
    _start(node)
    job = _wait_job(node, job_id)
    assert job.state in (JobState.COMPLETED, JobState.FAILED), job
    if job.state == JobState.FAILED:
        assert job.error
    else:
        assert job.attempts == 1  # re-queued once by the recovery
        assert count_instances(_db_url(node)) == BIG
    node.stop()
    _assert_archive_sound(node)


def test_clean_stop_requeues_and_restart_finishes(node: NodeProcess, source: Source) -> None:
    """SIGTERM during a retrieve puts the job back in the queue; the next start finishes it."""
    _start(node)
    job_id = _detach_retrieve(node, source, source.small)
    _wait_instances(node, 5)
    assert node.stop() == 0
    stopped = get_job(load_config(node.config_path), job_id)
    assert stopped.state in (JobState.QUEUED, JobState.COMPLETED), stopped
    if stopped.state == JobState.QUEUED:
        assert stopped.attempts == 0 and "will resume" in stopped.error
    _start(node)
    job = _wait_job(node, job_id)
    assert job.state == JobState.COMPLETED, job.error
    assert count_instances(_db_url(node)) == SMALL
    node.stop()
    _assert_archive_sound(node)


def test_cancel_then_retry(node: NodeProcess, source: Source) -> None:
    """``jobs cancel`` stops a running retrieve; ``jobs retry`` runs it again to completion."""
    _start(node)
    job_id = _detach_retrieve(node, source, source.small)
    _wait_instances(node, 5)
    r = cli(node, "jobs", "cancel", str(job_id))
    # On a fast machine the retrieve may have ended first; then there is nothing to cancel.
    assert r.exit_code == 0 or "already ended" in r.output, r.output
    job = _wait_job(node, job_id, timeout=30)
    if job.state == JobState.CANCELLED:
        assert job.error == "cancelled by request"
        r = cli(node, "jobs", "retry", str(job_id), "-q")
        assert r.exit_code == 0, r.output
        assert f"job {job_id} completed" in r.stdout
        job = get_job(load_config(node.config_path), job_id)
        assert job.attempts == 1
    assert job.state == JobState.COMPLETED
    assert count_instances(_db_url(node)) == SMALL
    node.stop()
    _assert_archive_sound(node)


def test_detach_then_jobs_list_and_show(node: NodeProcess, source: Source) -> None:
    """``--detach`` returns the id at once; ``jobs`` and ``jobs show --json`` report the job."""
    _start(node)
    job_id = _detach_retrieve(node, source, source.small)
    job = _wait_job(node, job_id)
    assert job.state == JobState.COMPLETED, job.error
    r = cli(node, "jobs")
    assert r.exit_code == 0, r.output
    [line] = [ln for ln in r.stdout.splitlines() if ln.split()[:1] == [str(job_id)]]
    assert "completed" in line and f"{SMALL}/{SMALL}" in line
    r = cli(node, "jobs", "show", str(job_id), "--json")
    shown = json.loads(r.stdout)
    assert shown["state"] == "completed" and shown["completed"] == SMALL
    r = cli(node, "jobs", "retry", str(job_id))
    assert r.exit_code == 1 and "only failed or cancelled" in r.stderr
