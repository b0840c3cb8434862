"""Our C-FIND SCP (``tui-pacs serve``) answering DCMTK ``findscu``: both roots, each level, every
matching rule, C-CANCEL, the result cap, non-ASCII names in ISO_IR 100 and ISO_IR 192, bad
identifiers, and the uncompressed transfer syntaxes."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset

from tests.find_data import ARCHIVE, Inst, uid, write_archive
from tests.peers import DCMTK, NodeProcess, dcmtk_env, require_dcmtk

pytestmark = pytest.mark.interop

#: A series of many instances, for C-CANCEL.
BULK = tuple(
    Inst(patient_id="P9", patient_name="Bulk^Series", study=9, series=1, number=n)
    for n in range(1, 151)
)
S = {inst.study: inst.study_uid for inst in ARCHIVE + BULK[:1]}


@dataclass
class FindResult:
    """What findscu printed and the response identifiers it extracted."""

    returncode: int
    log: str
    responses: list[Dataset]
    raw: list[bytes]

    @property
    def final(self) -> str:
        """The final status as findscu names it, e.g. ``Success``."""
        for line in self.log.splitlines():
            if "Received Final Find Response" in line:
                return line.split("(", 1)[1].rstrip(")")
        return ""


def _import(node: NodeProcess, folder: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "tui_pacs",
            "--config",
            str(node.config_path),
            "import",
            str(folder),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )


@pytest.fixture(scope="module", params=["acceptor", "pynetdicom"])
def node(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[NodeProcess]:
    """A node holding the test archive, combining date and time ranges always; every test runs
    against both receivers: the store acceptor (plain C-FIND associations, the default) and
    pynetdicom (``[node] fast_storage = false``, as for associations with extended negotiation).
    """
    require_dcmtk()
    folder = tmp_path_factory.mktemp("find-node")
    write_archive(folder / "files", ARCHIVE + BULK)
    proc = NodeProcess(
        folder / "node",
        extra='[query]\ncombined_datetime = "always"\n',
        fast_storage=request.param == "acceptor",
    )
    _import(proc, folder / "files")
    with proc:
        yield proc


@pytest.fixture(scope="module")
def capped_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    """A node answering at most 3 matches per query."""
    require_dcmtk()
    folder = tmp_path_factory.mktemp("find-capped")
    write_archive(folder / "files")
    proc = NodeProcess(folder / "node", extra="[query]\nmax_results = 3\n")
    _import(proc, folder / "files")
    with proc:
        yield proc


def findscu(
    node: NodeProcess,
    tmp_path: Path,
    *keys: str | bytes,
    model: str = "-S",
    options: Sequence[str] = (),
) -> FindResult:
    """Run DCMTK findscu with ``-k`` keys; extract every response identifier to a file."""
    out = tmp_path / f"rsp{len(list(tmp_path.iterdir()))}"
    out.mkdir()
    args: list[str | bytes] = [str(DCMTK / "findscu"), "-v", model, "-aec", node.ae_title]
    for key in keys:
        args += ["-k", key]
    args += [*options, "-X", "-od", str(out), "127.0.0.1", str(node.port)]
    proc = subprocess.run(args, capture_output=True, timeout=120, env=dcmtk_env())
    files = sorted(out.glob("rsp*.dcm"))
    return FindResult(
        proc.returncode,
        proc.stderr.decode("latin-1") + proc.stdout.decode("latin-1"),
        [dcmread(f, force=True) for f in files],
        [f.read_bytes() for f in files],
    )


def study_numbers(result: FindResult) -> list[int]:
    by_uid = {v: k for k, v in S.items()}
    return sorted(by_uid[r.StudyInstanceUID] for r in result.responses)


# -- levels and roots ----------------------------------------------------------------------------


def test_patient_root_patient_level(node: NodeProcess, tmp_path: Path) -> None:
    """-P PATIENT: one response per patient with the requested keys."""
    result = findscu(
        node,
        tmp_path,
        "QueryRetrieveLevel=PATIENT",
        "PatientID",
        "PatientName",
        "NumberOfPatientRelatedStudies",
        model="-P",
    )
    assert result.final == "Success", result.log
    got = sorted((r.PatientID, int(r.NumberOfPatientRelatedStudies)) for r in result.responses)
    assert got == [("P1", 1), ("P2", 2), ("P3", 1), ("P4", 1), ("P9", 1)]


def test_study_level_both_roots(node: NodeProcess, tmp_path: Path) -> None:
    """STUDY level: Study Root lists every study; Patient Root those of one patient."""
    result = findscu(node, tmp_path, "QueryRetrieveLevel=STUDY", "StudyInstanceUID")
    assert len(result.responses) == 6 and result.final == "Success"
    result = findscu(
        node, tmp_path, "QueryRetrieveLevel=STUDY", "PatientID=P2", "StudyInstanceUID", model="-P"
    )
    assert study_numbers(result) == [2, 3]


def test_series_level(node: NodeProcess, tmp_path: Path) -> None:
    """-S SERIES: the series of one study with modality and instance counts."""
    result = findscu(
        node,
        tmp_path,
        "QueryRetrieveLevel=SERIES",
        f"StudyInstanceUID={S[1]}",
        "Modality",
        "SeriesInstanceUID",
        "NumberOfSeriesRelatedInstances",
    )
    got = sorted((r.Modality, int(r.NumberOfSeriesRelatedInstances)) for r in result.responses)
    assert got == [("CT", 2), ("SR", 1)]


@pytest.mark.parametrize("model", ["-P", "-S"])
def test_image_level(node: NodeProcess, tmp_path: Path, model: str) -> None:
    """IMAGE level in both roots: the instances of one series."""
    keys = [
        "QueryRetrieveLevel=IMAGE",
        f"StudyInstanceUID={S[2]}",
        f"SeriesInstanceUID={uid(2, 1)}",
    ]
    if model == "-P":
        keys.append("PatientID=P2")
    result = findscu(node, tmp_path, *keys, "SOPInstanceUID", "InstanceNumber", "Rows", model=model)
    assert sorted(r.SOPInstanceUID for r in result.responses) == [uid(2, 1, 1), uid(2, 1, 2)]
    assert {r.Rows for r in result.responses} == {64}


# -- matching rules ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("keys", "expected"),
    [
        (["AccessionNumber=ACC003"], [3]),
        ([f"StudyInstanceUID={S[1]}\\{S[4]}"], [1, 4]),
        (["AccessionNumber"], [1, 2, 3, 4, 5, 9]),
        (["PatientName=doe*"], [2, 3, 5]),
        (["PatientName=D?E^J*"], [2, 3, 5]),
        (["StudyDescription=*HE*"], [1, 3]),
        (["StudyDescription=ct*"], []),
        (["StudyDate=20200101-20200215"], [1, 2, 9]),
        (["StudyDate=-20200101"], [1, 4, 9]),
        (["StudyDate=20200215-"], [2, 3]),
        (["StudyTime=2300-"], [2, 4]),
        (["StudyDate=20191231-20200215", "StudyTime=1200-2300"], [1, 4, 9]),
        (["ModalitiesInStudy=MR"], [2, 3]),
        (["ModalitiesInStudy=US\\SR"], [1, 5]),
    ],
    ids=[
        "single-value",
        "uid-list",
        "universal",
        "wildcard-name-any-case",
        "wildcard-question",
        "wildcard-text",
        "text-case-sensitive",
        "date-range",
        "date-open-start",
        "date-open-end",
        "time-open-end",
        "combined-date-time",
        "modalities-in-study",
        "modalities-list",
    ],
)
def test_matching_rules(
    node: NodeProcess, tmp_path: Path, keys: list[str], expected: list[int]
) -> None:
    """Each PS3.4 C.2.2.2 matching rule, sent by findscu at STUDY level (Study Root)."""
    result = findscu(node, tmp_path, "QueryRetrieveLevel=STUDY", "StudyInstanceUID", *keys)
    assert result.final == "Success", result.log
    assert study_numbers(result) == expected


def test_only_requested_keys_come_back(node: NodeProcess, tmp_path: Path) -> None:
    """Responses hold the requested keys plus Query/Retrieve Level and Retrieve AE Title."""
    result = findscu(
        node,
        tmp_path,
        "QueryRetrieveLevel=STUDY",
        f"StudyInstanceUID={S[2]}",
        "StudyDate",
        "PatientWeight",
    )
    (r,) = result.responses
    assert sorted(e.keyword for e in r) == [
        "PatientWeight",
        "QueryRetrieveLevel",
        "RetrieveAETitle",
        "StudyDate",
        "StudyInstanceUID",
    ]
    assert r.RetrieveAETitle == node.ae_title and r.PatientWeight is None


def test_each_receiver_serves_plain_find_associations(
    node: NodeProcess, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """findscu's association is the store acceptor's by default, pynetdicom's when it is off."""
    result = findscu(node, tmp_path, "QueryRetrieveLevel=STUDY", f"StudyInstanceUID={S[2]}")
    assert result.final == "Success", result.log
    accepted = [
        line for line in node.log().splitlines() if "association accepted: FINDSCU" in line
    ]
    assert accepted
    fast = request.node.callspec.params["node"] == "acceptor"
    assert ("(store acceptor)" in accepted[-1]) is fast


# -- cancel and cap ------------------------------------------------------------------------------


def test_cancel_stops_the_stream(node: NodeProcess, tmp_path: Path) -> None:
    """findscu --cancel 2: the SCP stops early and ends with Cancel (0xFE00)."""
    result = findscu(
        node,
        tmp_path,
        "QueryRetrieveLevel=IMAGE",
        f"StudyInstanceUID={uid(9)}",
        f"SeriesInstanceUID={uid(9, 1)}",
        "SOPInstanceUID",
        options=["--cancel", "2"],
    )
    assert result.final.startswith("Cancel"), result.log
    assert 2 <= len(result.responses) < len(BULK)
    assert "cancelled after" in node.log()


def test_result_cap(capped_node: NodeProcess, tmp_path: Path) -> None:
    """With [query] max_results = 3: three matches, then Cancel, and the node logs why."""
    result = findscu(capped_node, tmp_path, "QueryRetrieveLevel=STUDY", "StudyInstanceUID")
    assert len(result.responses) == 3
    assert result.final.startswith("Cancel"), result.log
    assert "max_results" in capped_node.log()


# -- character sets ------------------------------------------------------------------------------


def test_iso_ir_100_name(node: NodeProcess, tmp_path: Path) -> None:
    """ISO_IR 100: a Latin-1 query value matches, the name comes back Latin-1 encoded."""
    result = findscu(
        node,
        tmp_path,
        "QueryRetrieveLevel=STUDY",
        "SpecificCharacterSet=ISO_IR 100",
        "PatientName=MÜL*".encode("latin-1"),
        "StudyInstanceUID",
    )
    (r,) = result.responses
    assert r.SpecificCharacterSet == "ISO_IR 100"
    assert str(r.PatientName) == "Müller^Hans"
    assert "Müller^Hans".encode("latin-1") in result.raw[0]


def test_iso_ir_192_name(node: NodeProcess, tmp_path: Path) -> None:
    """ISO_IR 192: a UTF-8 query value matches, the name comes back UTF-8 encoded."""
    result = findscu(
        node,
        tmp_path,
        "QueryRetrieveLevel=STUDY",
        "SpecificCharacterSet=ISO_IR 192",
        "PatientName=山田*".encode(),
        "StudyInstanceUID",
    )
    (r,) = result.responses
    assert r.SpecificCharacterSet == "ISO_IR 192"
    assert str(r.PatientName) == "山田^太郎"
    assert "山田^太郎".encode() in result.raw[0]


def test_name_latin1_cannot_hold_comes_back_in_utf8(node: NodeProcess, tmp_path: Path) -> None:
    """An ISO_IR 100 query matching a Japanese name gets that response in ISO_IR 192."""
    result = findscu(
        node,
        tmp_path,
        "QueryRetrieveLevel=STUDY",
        "SpecificCharacterSet=ISO_IR 100",
        f"StudyInstanceUID={S[4]}",
        "PatientName",
    )
    (r,) = result.responses
    assert r.SpecificCharacterSet == "ISO_IR 192" and str(r.PatientName) == "山田^太郎"


# -- bad identifiers -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("keys", "final"),
    [
        (["PatientName"], "Error: DataSetDoesNotMatchSOPClass"),
        (["QueryRetrieveLevel=SERIES", "Modality"], "Error: DataSetDoesNotMatchSOPClass"),
        (["QueryRetrieveLevel=STUDY", "SOPInstanceUID"], "Error: DataSetDoesNotMatchSOPClass"),
        (["QueryRetrieveLevel=PATIENT", "PatientID"], "Error: DataSetDoesNotMatchSOPClass"),
        (["QueryRetrieveLevel=STUDY", "StudyDate=2020-01-01x"], "Failed: UnableToProcess"),
    ],
    ids=[
        "no-level",
        "series-without-study",
        "key-below-level",
        "patient-in-study-root",
        "bad-date",
    ],
)
def test_bad_identifier(node: NodeProcess, tmp_path: Path, keys: list[str], final: str) -> None:
    """A bad identifier gets 0xA900 or 0xC000, no match, and the node keeps serving."""
    result = findscu(node, tmp_path, *keys)
    assert result.final == final, result.log
    assert result.responses == []
    again = findscu(node, tmp_path, "QueryRetrieveLevel=STUDY", f"StudyInstanceUID={S[1]}")
    assert len(again.responses) == 1


# -- transfer syntaxes ---------------------------------------------------------------------------


@pytest.mark.parametrize("proposal", ["-xi", "-xe", "-xb", "-xd"])
def test_transfer_syntaxes(node: NodeProcess, tmp_path: Path, proposal: str) -> None:
    """Implicit, explicit little/big endian and deflated: identifiers (US values too) decode."""
    result = findscu(
        node,
        tmp_path,
        "QueryRetrieveLevel=IMAGE",
        f"StudyInstanceUID={S[1]}",
        f"SeriesInstanceUID={uid(1, 1)}",
        "Rows",
        "Columns",
        "PatientName",
        options=[proposal],
    )
    assert result.final == "Success", result.log
    assert [(r.Rows, r.Columns) for r in result.responses] == [(64, 32), (64, 32)]


# -- extended negotiation ------------------------------------------------------------------------


def test_relational_query_after_extended_negotiation(node: NodeProcess) -> None:
    """A pynetdicom SCU negotiating relational queries may leave out the Study Instance UID."""
    from pynetdicom import AE
    from pynetdicom.pdu_primitives import SOPClassExtendedNegotiation
    from pynetdicom.sop_class import (  # type: ignore[attr-defined]
        StudyRootQueryRetrieveInformationModelFind as FIND,
    )

    ae = AE(ae_title="RELATIONAL")
    ae.add_requested_context(FIND)
    item = SOPClassExtendedNegotiation()
    item.sop_class_uid = FIND
    item.service_class_application_information = b"\x01\x01"
    assoc = ae.associate("127.0.0.1", node.port, ae_title=node.ae_title, ext_neg=[item])
    assert assoc.is_established
    try:
        agreed = assoc.acceptor.sop_class_extended
        assert agreed.get(FIND) == b"\x01\x01"
        query = Dataset()
        query.QueryRetrieveLevel = "SERIES"
        query.Modality = "MR"
        query.SeriesInstanceUID = ""
        statuses, found = [], []
        for status, identifier in assoc.send_c_find(query, FIND):
            statuses.append(status.Status)
            if identifier is not None:
                found.append(identifier.SeriesInstanceUID)
    finally:
        assoc.release()
    assert statuses[-1] == 0x0000
    assert sorted(found) == sorted([uid(2, 1), uid(3, 2)])
