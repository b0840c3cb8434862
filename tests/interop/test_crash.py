"""Crash safety and concurrency of the node under DCMTK storescu bursts.

kill -9 mid-burst must lose nothing that was acknowledged and leave no half-written state; eight
simultaneous associations must all be indexed, on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydicom import dcmread

from tests.interop.synth import write_series
from tests.net.archive_audit import INCOMING, audit, count_instances, row_counts
from tests.net.dcmtk_store import BackgroundStorescu, run_storescu
from tests.peers import IN_CI, NodeProcess
from tui_pacs.store.db import open_database
from tui_pacs.store.models import ALL_MODELS

pytestmark = [pytest.mark.interop, pytest.mark.slow]

PG_URL_ENV = "TUI_PACS_TEST_PG_URL"


def _uids(files: list[Path]) -> dict[Path, str]:
    return {
        p: str(dcmread(p, stop_before_pixels=True, specific_tags=["SOPInstanceUID"]).SOPInstanceUID)
        for p in files
    }


def _wait_for_instances(node: NodeProcess, url: str, n: int, timeout: float = 120) -> None:
    """Poll the index until it holds ``n`` instances (the node is a separate process)."""
    deadline = time.monotonic() + timeout
    while count_instances(url) < n:
        assert node.proc is not None and node.proc.poll() is None, node.log()[-3000:]
        assert time.monotonic() < deadline, f"fewer than {n} instances after {timeout}s"
        time.sleep(0.02)


def test_kill_9_mid_burst_loses_nothing_acknowledged(tmp_path: Path) -> None:
    """kill -9 during a 500-instance burst: after a restart every acknowledged instance is
    archived and indexed with its checksum, no temporary file or orphan row is left, and the
    node accepts stores again."""
    folder = tmp_path / "burst"
    files = write_series(folder, 500)
    uid_of = _uids(files)
    node = NodeProcess(tmp_path / "node")
    url = f"sqlite:///{node.folder / 'index.sqlite3'}"
    node.start()
    assert node.proc is not None
    dead_incoming = node.archive / INCOMING / f"{socket.gethostname()}-{node.proc.pid}"
    sender = BackgroundStorescu(node.port, [folder], tmp_path / "storescu.log", flags=["+sd"])
    try:
        _wait_for_instances(node, url, 100)
        node.kill()
    finally:
        burst = sender.wait()
    acknowledged = {uid_of[p] for p in burst.succeeded}
    # The index may hold a few more than storescu saw acknowledged (answers in flight).
    assert 50 <= len(acknowledged) < len(files), "the kill did not land mid-burst"
    assert dead_incoming.is_dir(), "kill -9 leaves the dead process's incoming folder"

    restarted = NodeProcess(tmp_path / "node").start()
    try:
        report = audit(restarted.archive, url)
        assert acknowledged <= set(report.instances)
        assert report.problems() == []
        assert not dead_incoming.exists(), "restart did not clean the dead PID's incoming folder"
        # Files the interrupted transaction had linked into place were never acknowledged:
        # the restart removes them along with the dead process's temporary files.
        assert report.unindexed_files == []

        resend = run_storescu(restarted.port, [folder], flags=["+sd"])
        assert resend.returncode == 0 and resend.succeeded == set(files), resend.output[-3000:]
        final = audit(restarted.archive, url)
        assert set(final.instances) == set(uid_of.values())
        assert final.problems() == []
    finally:
        assert restarted.stop() == 0, restarted.log()[-3000:]


@pytest.fixture(scope="module")
def eight_series(tmp_path_factory: pytest.TempPathFactory) -> list[list[Path]]:
    """Eight series of 200 small CT images on disk, shared by the concurrency runs."""
    base = tmp_path_factory.mktemp("eight-series")
    return [write_series(base / f"series{i}", 200, series_number=i + 1) for i in range(8)]


def _fresh_postgres() -> Iterator[str]:
    url = os.environ.get(PG_URL_ENV)
    if not url:
        if IN_CI:
            pytest.fail(f"{PG_URL_ENV} is not set in CI")
        pytest.skip(f"PostgreSQL tests need {PG_URL_ENV}")
    db = open_database(url, create=False)
    db.drop_tables(ALL_MODELS, safe=True, cascade=True)
    db.close()
    yield url


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty index: SQLite in tmp_path, then the test PostgreSQL with its tables dropped."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'node' / 'index.sqlite3'}"
    else:
        yield from _fresh_postgres()


def test_eight_concurrent_associations(
    tmp_path: Path, database: str, eight_series: list[list[Path]]
) -> None:
    """8 storescu processes x 200 instances at once: all 1,600 acknowledged and indexed with
    their checksums, per-series counts right, no "database is locked" anywhere."""
    node = NodeProcess(tmp_path / "node", database_url=database).start()
    try:
        senders = [
            BackgroundStorescu(
                node.port, [files[0].parent], tmp_path / f"storescu{i}.log",
                calling_ae=f"MODALITY{i}", flags=["+sd"],
            )
            for i, files in enumerate(eight_series)
        ]  # fmt: skip
        runs = [s.wait(timeout=240) for s in senders]
        for files, run in zip(eight_series, runs, strict=True):
            assert run.returncode == 0, run.output[-3000:]
            assert run.succeeded == set(files)
        report = audit(node.archive, database)
        all_files = [f for files in eight_series for f in files]
        assert set(report.instances) == set(_uids(all_files).values())
        assert report.problems() == []
        assert report.unindexed_files == []
        assert row_counts(database) == {"patient": 1, "study": 8, "series": 8, "instance": 1600}
    finally:
        code = node.stop()
    log = node.log() + (tmp_path / "node" / "node.log").read_text()
    assert "database is locked" not in log
    assert "Traceback" not in log
    assert code == 0, log[-3000:]
