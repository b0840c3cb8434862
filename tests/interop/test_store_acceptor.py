"""``tui-pacs serve`` with its store acceptor against DCMTK and pynetdicom: which path serves what.

The rest of the interop suite (test_store_scp, test_bad_input, test_crash ...) stores through the
acceptor too, since it is on by default; these tests pin down that it really is the acceptor,
that ``[node] fast_storage = false`` still works, that associations it does not take work as
before, that it answers C-FIND on an association that also stores, and that two listener
processes share the work.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.uid import DeflatedExplicitVRLittleEndian, JPEG2000Lossless, RLELossless
from pynetdicom import AE
from pynetdicom.pdu_primitives import SOPClassExtendedNegotiation
from pynetdicom.sop_class import (  # type: ignore[attr-defined]
    CTImageStorage,
    StudyRootQueryRetrieveInformationModelFind,
)

from tests.interop.synth import write_series
from tests.interop.test_store_scp import PROPOSAL_FLAGS, assert_archived_intact
from tests.net.archive_audit import count_instances, indexed_instances
from tests.net.dcmtk_store import BackgroundStorescu, run_storescu
from tests.peers import NodeProcess, pydicom_test_files, run_dcmtk

pytestmark = pytest.mark.interop

ACCEPTOR = "(store acceptor)"


def _node(folder: Path, node_keys: str = "", **kwargs: object) -> NodeProcess:
    """A NodeProcess whose [node] table gets ``node_keys`` too."""
    node = NodeProcess(folder, **kwargs)
    text = node.config_path.read_text()
    node.config_path.write_text(text.replace("[node]\n", f"[node]\n{node_keys}\n", 1))
    return node


def _db_url(node: NodeProcess) -> str:
    return f"sqlite:///{node.folder / 'index.sqlite3'}"


def _accepted_lines(node: NodeProcess) -> list[str]:
    return [line for line in node.log().splitlines() if "association accepted:" in line]


def _wait_for_log(node: NodeProcess, text: str, timeout: float = 60) -> None:
    """Poll the node's log (another process writes it) until ``text`` is in it."""
    deadline = time.monotonic() + timeout
    while text not in node.log():
        assert node.proc is not None and node.proc.poll() is None, node.log()[-3000:]
        assert time.monotonic() < deadline, f"{text!r} not logged after {timeout}s"
        time.sleep(0.05)  # polling a file another process writes


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_echoscu_and_compressed_storescu_go_through_the_acceptor(tmp_path: Path) -> None:
    """echoscu and storescu -R in RLE, JPEG 2000 and deflate: served by the acceptor, intact."""
    wanted = {str(RLELossless), str(JPEG2000Lossless), str(DeflatedExplicitVRLittleEndian)}
    picked: dict[str, Path] = {}
    for path in pydicom_test_files():
        ts = str(dcmread(path, stop_before_pixels=True).file_meta.TransferSyntaxUID)
        if ts in wanted and ts not in picked and "truncated" not in path.name:
            picked[ts] = path
    assert set(picked) == wanted
    with _node(tmp_path / "node") as node:
        assert run_dcmtk("echoscu", "-aec", "TUI_PACS", "127.0.0.1", str(node.port)).returncode == 0
        for ts, path in picked.items():
            run = run_storescu(node.port, [path], flags=["-R", *PROPOSAL_FLAGS[ts]])
            assert run.succeeded == {path}, run.output
        assert_archived_intact(node, list(picked.values()))
        accepted = _accepted_lines(node)
        assert len(accepted) == 1 + len(picked)
        assert all(line.endswith(ACCEPTOR) for line in accepted), accepted


def test_fast_storage_off_serves_storescu_with_pynetdicom(tmp_path: Path) -> None:
    """[node] fast_storage = false: storescu still stores, through pynetdicom."""
    files = write_series(tmp_path / "in", 5)
    with _node(tmp_path / "node", fast_storage=False) as node:
        run = run_storescu(node.port, [tmp_path / "in"], flags=["+sd"])
        assert run.succeeded == set(files), run.output
        accepted = _accepted_lines(node)
        assert len(accepted) == 1 and not accepted[0].endswith(ACCEPTOR)
        assert count_instances(_db_url(node)) == 5


@pytest.mark.parametrize("extended", [False, True], ids=["plain", "extended-negotiation"])
def test_storage_and_find_on_one_association(tmp_path: Path, extended: bool) -> None:
    """An association proposing storage and C-FIND: the store then the query answer. A plain one
    is the acceptor's (the node's own C-FIND handler runs there); one asking for relational
    queries (SOP Class Extended Negotiation) is pynetdicom's."""
    with _node(tmp_path / "node") as node:
        ae = AE(ae_title="MIXED")
        ae.add_requested_context(CTImageStorage)
        ae.add_requested_context(StudyRootQueryRetrieveInformationModelFind)
        ext_neg = []
        if extended:
            item = SOPClassExtendedNegotiation()
            item.sop_class_uid = StudyRootQueryRetrieveInformationModelFind
            item.service_class_application_information = b"\x01"
            ext_neg.append(item)
        assoc = ae.associate("127.0.0.1", node.port, ae_title="TUI_PACS", ext_neg=ext_neg)
        assert assoc.is_established
        try:
            [path] = write_series(tmp_path / "in", 1)
            ds = dcmread(path)
            assert assoc.send_c_store(ds).Status == 0
            query = Dataset()
            query.QueryRetrieveLevel = "STUDY"
            query.StudyInstanceUID = ds.StudyInstanceUID
            answers = list(assoc.send_c_find(query, StudyRootQueryRetrieveInformationModelFind))
        finally:
            assoc.release()
        assert [int(status.Status) for status, _ in answers] == [0xFF00, 0x0000]
        assert answers[0][1].StudyInstanceUID == ds.StudyInstanceUID
        accepted = _accepted_lines(node)
        assert len(accepted) == 1 and accepted[0].endswith(ACCEPTOR) is not extended


@pytest.mark.slow
def test_two_listener_processes_share_associations(tmp_path: Path) -> None:
    """listener_processes = 2: both processes serve storescu associations; each instance once."""
    with _node(tmp_path / "node", "listener_processes = 2") as node:
        # The port answers as soon as the first process listens; the second one starts after
        # (on a slow machine, after every batch below had gone to the first one).
        _wait_for_log(node, "1 extra listener process(es)")
        sent: list[Path] = []
        for batch in range(4):  # 8 associations per batch; stop once both processes served some
            runs = []
            for i in range(8):
                folder = tmp_path / f"b{batch}s{i}"
                sent += write_series(folder, 3, series_number=10 * batch + i)
                runs.append(
                    BackgroundStorescu(
                        node.port, [folder], tmp_path / f"b{batch}s{i}.log",
                        calling_ae=f"SCU{i}", flags=["+sd"],
                    )
                )  # fmt: skip
            for run in runs:
                result = run.wait()
                assert result.returncode == 0, result.output
            accepted = _accepted_lines(node)
            by_worker = [line for line in accepted if "[listener-2]" in line]
            if by_worker and len(by_worker) < len(accepted):
                break
        assert by_worker and len(by_worker) < len(accepted), accepted
        assert all(line.endswith(ACCEPTOR) for line in accepted)
        rows = indexed_instances(_db_url(node))
        assert len(rows) == len(sent) == count_instances(_db_url(node))
    assert_archived_intact(node, sent)
    assert not re.search(r"database is locked", node.log())
