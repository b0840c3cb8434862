"""The node as a Storage SCP against DCMTK echoscu/storescu: what arrives is archived intact."""

from __future__ import annotations

import re
import signal
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.uid import (
    JPEG2000,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGExtended12Bit,
    JPEGLosslessSV1,
    JPEGLSLossless,
    JPEGLSNearLossless,
    RLELossless,
)
from pynetdicom.dsutils import split_dataset

from tests.interop.synth import write_series
from tests.net.archive_audit import (
    archive_files,
    audit,
    count_instances,
    dataset_differences,
    indexed_instances,
    row_counts,
    sha256_file,
    temp_files,
)
from tests.net.dcmtk_store import BackgroundStorescu, run_storescu
from tests.net.raw_store import send_raw
from tests.peers import NodeProcess, pydicom_test_files, run_dcmtk
from tui_pacs.net import status as st

pytestmark = pytest.mark.interop

#: storescu flags that make it propose a file's own transfer syntax (with -R: only what is needed).
PROPOSAL_FLAGS: dict[str, list[str]] = {
    ImplicitVRLittleEndian: ["-xi"],
    ExplicitVRLittleEndian: ["-xe"],
    ExplicitVRBigEndian: ["-xb"],
    DeflatedExplicitVRLittleEndian: ["-xd"],
    JPEGBaseline8Bit: ["-xy"],
    JPEGExtended12Bit: ["-xx"],
    JPEGLosslessSV1: ["-xs"],
    JPEGLSLossless: ["-xt"],
    JPEGLSNearLossless: ["-xu"],
    JPEG2000Lossless: ["-xv"],
    JPEG2000: ["-xw"],
    RLELossless: ["-xr"],
}


def db_url(node: NodeProcess) -> str:
    return f"sqlite:///{node.folder / 'index.sqlite3'}"


def uid_of(path: Path) -> str:
    return str(
        dcmread(path, stop_before_pixels=True, specific_tags=["SOPInstanceUID"]).SOPInstanceUID
    )


def assert_archived_intact(
    node: NodeProcess, files: list[Path], through_dcmtk: bool = True
) -> None:
    """Each file is indexed, its archived copy has the right checksum, the same transfer syntax
    and the same elements; the archive and index agree with each other."""
    rows = indexed_instances(db_url(node))
    for path in files:
        sent = dcmread(path)
        row = rows.get(str(sent.SOPInstanceUID))
        assert row is not None, f"{path.name} not indexed"
        archived_path = node.archive / row.path
        assert sha256_file(archived_path) == row.checksum, path.name
        archived = dcmread(archived_path)
        ts = str(sent.file_meta.TransferSyntaxUID)
        assert row.transfer_syntax_uid == ts, path.name
        assert str(archived.file_meta.TransferSyntaxUID) == ts, path.name
        diffs = dataset_differences(sent, archived, through_dcmtk=through_dcmtk)
        assert diffs == [], f"{path.name}: {diffs}"
    report = audit(node.archive, db_url(node))
    assert report.problems() == []
    assert report.unindexed_files == []


@pytest.fixture(scope="module")
def shared_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    """A default node for the tests that need no special configuration."""
    node = NodeProcess(tmp_path_factory.mktemp("store-scp") / "node").start()
    yield node
    assert node.stop() == 0, node.log()[-3000:]


# --- 1. Verification and calling AE titles -------------------------------------------------


def test_echoscu_succeeds(shared_node: NodeProcess) -> None:
    """DCMTK echoscu gets a successful C-ECHO response from the node."""
    r = run_dcmtk("echoscu", "-v", "-aec", shared_node.ae_title, "127.0.0.1", str(shared_node.port))
    assert r.returncode == 0, r.stderr
    assert "Received Echo Response (Success)" in r.stdout + r.stderr


def test_calling_ae_title_not_allowed_is_rejected(tmp_path: Path) -> None:
    """Only allowed calling AE titles associate: others are rejected and can store nothing."""
    [image] = write_series(tmp_path / "in", 1)
    node = NodeProcess(tmp_path / "node", allowed=["MODALITY1", "MODALITY2"]).start()
    try:
        args = ("-aec", node.ae_title, "127.0.0.1", str(node.port))
        rejected = run_dcmtk("echoscu", "-aet", "INTRUDER", *args)
        assert rejected.returncode != 0
        assert "Calling AE Title Not Recognized" in rejected.stdout + rejected.stderr
        allowed = run_dcmtk("echoscu", "-aet", "MODALITY2", *args)
        assert allowed.returncode == 0, allowed.stderr

        intruder = run_storescu(node.port, [image], calling_ae="INTRUDER")
        assert intruder.returncode != 0 and not intruder.succeeded
        assert count_instances(db_url(node)) == 0
        modality = run_storescu(node.port, [image], calling_ae="MODALITY1")
        assert modality.succeeded == {image}, modality.output
        assert count_instances(db_url(node)) == 1
    finally:
        assert node.stop() == 0


# --- 2. storescu: one file, a folder, parallel associations ----------------------------------


def test_storescu_single_file(shared_node: NodeProcess, tmp_path: Path) -> None:
    """One file from storescu is archived byte-for-byte as DCMTK sent it, with its checksum."""
    [image] = write_series(tmp_path / "in", 1)
    run = run_storescu(shared_node.port, [image])
    assert run.returncode == 0 and run.succeeded == {image}, run.output
    assert_archived_intact(shared_node, [image])


def test_storescu_scans_folder_recursively(shared_node: NodeProcess, tmp_path: Path) -> None:
    """storescu +sd +r sends a folder tree; every instance is archived and indexed."""
    files = write_series(tmp_path / "in" / "series1", 12, series_number=1)
    files += write_series(tmp_path / "in" / "deeper" / "series2", 8, series_number=2)
    run = run_storescu(shared_node.port, [tmp_path / "in"], flags=["+sd", "+r"])
    assert run.returncode == 0, run.output
    assert run.succeeded == set(files)
    assert_archived_intact(shared_node, files)


def test_four_parallel_storescu_associations(shared_node: NodeProcess, tmp_path: Path) -> None:
    """Four storescu processes at once, each with its own series: all 200 instances archived."""
    series = {f"STORE{i}": write_series(tmp_path / f"s{i}", 50, series_number=i) for i in range(4)}
    runs = [
        BackgroundStorescu(
            shared_node.port, [tmp_path / f"s{i}"], tmp_path / f"s{i}.log",
            calling_ae=ae, flags=["+sd"],
        )
        for i, ae in enumerate(series)
    ]  # fmt: skip
    results = [r.wait() for r in runs]
    for (ae, files), result in zip(series.items(), results, strict=True):
        assert result.returncode == 0, result.output
        assert result.succeeded == set(files), ae
        assert re.search(rf"association accepted: {ae} from", shared_node.log())
    assert_archived_intact(shared_node, [f for files in series.values() for f in files])


# --- 3. pydicom's own test files, each in its own transfer syntax -----------------------------


def _rounds_of_distinct_uids(files: list[Path]) -> list[list[Path]]:
    """Split files into rounds in which no SOP Instance UID repeats (pydicom reuses some)."""
    rounds: list[tuple[set[str], list[Path]]] = []
    for path in files:
        uid = uid_of(path)
        for uids, members in rounds:
            if uid not in uids:
                uids.add(uid)
                members.append(path)
                break
        else:
            rounds.append(({uid}, [path]))
    return [members for _, members in rounds]


def _transfer_syntax(path: Path) -> str:
    return str(dcmread(path, stop_before_pixels=True).file_meta.TransferSyntaxUID)


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::UserWarning")
def test_pydicom_test_files_round_trip(tmp_path: Path) -> None:
    """Every complete pydicom test file sent over C-STORE comes back element for element, in its
    own transfer syntax: DCMTK proposes it where it can, else the exact bytes go out raw."""
    files = [f for f in pydicom_test_files() if "truncated" not in f.name]
    assert len(files) > 50
    # pydicom's files share SOP Instance UIDs between variants: each round is checked before
    # the next one replaces some of them.
    node = NodeProcess(tmp_path / "node", duplicate_policy="overwrite").start()
    by_dcmtk: list[Path] = []
    raw_sent: list[Path] = []
    try:
        for files_of_round in _rounds_of_distinct_uids(files):
            groups: dict[str, list[Path]] = defaultdict(list)
            for path in files_of_round:
                groups[_transfer_syntax(path)].append(path)
            dcmtk_round: list[Path] = []
            raw_round: list[Path] = []
            for ts, group in groups.items():
                if ts not in PROPOSAL_FLAGS:
                    raw_round += group
                    continue
                run = run_storescu(node.port, group, flags=["-R", *PROPOSAL_FLAGS[ts]])
                failed = {p.name: s for p, s in run.responses.items() if s != "Success"}
                assert failed == {}, run.output
                dcmtk_round += [p for p in group if p in run.succeeded]
                # Files DCMTK cannot read ("missing SOP class", unknown VR) go out raw.
                raw_round += [p for p in group if p not in run.responses]
            if raw_round:
                statuses = send_raw(node.port, raw_round)
                assert statuses == [st.SUCCESS] * len(raw_round), list(
                    zip(raw_round, statuses, strict=True)
                )
            assert_archived_intact(node, dcmtk_round, through_dcmtk=True)
            for path in raw_round:
                _assert_bytes_identical(node, path)
            by_dcmtk += dcmtk_round
            raw_sent += raw_round
    finally:
        assert node.stop() == 0, node.log()[-3000:]
    assert len(by_dcmtk) + len(raw_sent) == len(files)
    assert len(by_dcmtk) >= len(files) - 6, f"DCMTK sent only {len(by_dcmtk)}; raw: {raw_sent}"


def _assert_bytes_identical(node: NodeProcess, path: Path) -> None:
    """A file sent raw is archived with exactly the same data set bytes and transfer syntax."""
    rows = indexed_instances(db_url(node))
    row = rows[uid_of(path)]
    sent_meta, sent_offset = split_dataset(path)
    archived_path = node.archive / row.path
    archived_meta, archived_offset = split_dataset(archived_path)
    assert archived_meta.TransferSyntaxUID == sent_meta.TransferSyntaxUID == row.transfer_syntax_uid
    assert archived_path.read_bytes()[archived_offset:] == path.read_bytes()[sent_offset:], (
        path.name
    )
    assert sha256_file(archived_path) == row.checksum


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_truncated_pydicom_files_are_rejected(tmp_path: Path) -> None:
    """pydicom's truncated test files, sent byte for byte, are refused and leave nothing behind."""
    truncated = [f for f in pydicom_test_files() if "truncated" in f.name]
    assert truncated, "pydicom no longer ships truncated test files"
    node = NodeProcess(tmp_path / "node").start()
    try:
        statuses = send_raw(node.port, truncated)
        assert statuses == [st.ERROR_CANNOT_UNDERSTAND] * len(truncated)
        assert row_counts(db_url(node))["instance"] == 0
        assert archive_files(node.archive) == [] and temp_files(node.archive) == []
    finally:
        assert node.stop() == 0


# --- 8. Duplicate policy over the network ------------------------------------------------------


@pytest.mark.parametrize(
    ("policy", "second_status", "kept"),
    [
        ("reject", st.DUPLICATE_SOP_INSTANCE, "first"),
        ("keep-first", st.SUCCESS, "first"),
        ("overwrite", st.SUCCESS, "second"),
    ],
)
def test_duplicate_policy(tmp_path: Path, policy: str, second_status: int, kept: str) -> None:
    """A modified resend of an archived SOP instance is refused, ignored or replaces it."""
    [first] = write_series(tmp_path / "in", 1)
    ds = dcmread(first)
    ds.PatientName = "Changed^Name"
    second = tmp_path / "second.dcm"
    ds.save_as(second)
    node = NodeProcess(tmp_path / "node", duplicate_policy=policy).start()
    try:
        assert run_storescu(node.port, [first]).succeeded == {first}
        run = run_storescu(node.port, [second])
        assert run.statuses == {second: second_status}, run.output
        rows = indexed_instances(db_url(node))
        assert len(rows) == 1
        expected = first if kept == "first" else second
        assert_archived_intact(node, [expected])
        assert len(archive_files(node.archive)) == 1
    finally:
        assert node.stop() == 0, node.log()[-3000:]


# --- 9. Clean shutdown ------------------------------------------------------------------------


def _wait_for_instances(node: NodeProcess, n: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while count_instances(db_url(node)) < n:
        assert node.proc is not None and node.proc.poll() is None, node.log()[-3000:]
        assert time.monotonic() < deadline, f"fewer than {n} instances after {timeout}s"
        time.sleep(0.02)


@pytest.mark.slow
def test_sigterm_during_storescu_stops_cleanly(tmp_path: Path) -> None:
    """SIGTERM mid-transfer: exit 0 within seconds, every acknowledged instance indexed, logged."""
    files = write_series(tmp_path / "in", 200)
    node = NodeProcess(tmp_path / "node").start()
    sender = BackgroundStorescu(
        node.port, [tmp_path / "in"], tmp_path / "storescu.log", flags=["+sd"]
    )
    try:
        _wait_for_instances(node, 20)
        started = time.monotonic()
        code = node.stop(signal.SIGTERM, timeout=30)
        elapsed = time.monotonic() - started
    finally:
        run = sender.wait()
        node.stop()
    assert code == 0, node.log()[-3000:]
    assert elapsed < 12, f"node took {elapsed:.1f}s to stop"
    acknowledged = {uid_of(p) for p in run.succeeded}
    assert len(acknowledged) >= 20
    assert set(files) >= run.succeeded
    report = audit(node.archive, db_url(node))
    assert acknowledged <= set(report.instances)
    assert report.problems() == []
    log = node.log()
    assert "received SIGTERM" in log and "node stopped" in log


# --- 10. Logging ------------------------------------------------------------------------------


def test_log_goes_to_file_and_stderr(tmp_path: Path) -> None:
    """The node logs to the configured file and mirrors the same lines to stderr."""
    node = NodeProcess(tmp_path / "node").start()
    try:
        r = run_dcmtk(
            "echoscu", "-aet", "LOGCHECK", "-aec", node.ae_title, "127.0.0.1", str(node.port)
        )
        assert r.returncode == 0
    finally:
        assert node.stop() == 0
    log_file = (tmp_path / "node" / "node.log").read_text()
    stderr = node.log()
    for text in (
        f"listening as {node.ae_title} on 127.0.0.1:{node.port}",
        "association accepted: LOGCHECK from 127.0.0.1",
        "node stopped",
    ):
        assert text in log_file, text
        assert text in stderr, text
