"""Our Modality Worklist SCP (``tui-pacs serve``) queried by DCMTK ``findscu -W`` for each matching
key, side by side with DCMTK ``wlmscpfs`` serving the same worklist from files: same matches, same
returned values. Then what only we do: names without regard to case, character sets, statuses."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset

from tests.peers import DCMTK, NodeProcess, dcmtk_env, free_port, require_dcmtk, wait_for_port
from tests.worklist_data import BASE, WORKLIST
from tui_pacs.config import load_config
from tui_pacs.model import OrderFields, WorklistOrder
from tui_pacs.services.worklist import WorklistService

pytestmark = pytest.mark.interop

WLM_AE = "WLMSCP"
#: Return keys of every compared query (top level, then inside the step item).
RETURN_KEYS = (
    "PatientName",
    "PatientID",
    "AccessionNumber",
    "StudyInstanceUID",
    "RequestedProcedureID",
    "PatientSex",
)
STEP_KEYS = (
    "Modality",
    "ScheduledStationAETitle",
    "ScheduledProcedureStepStartDate",
    "ScheduledProcedureStepStartTime",
    "ScheduledProcedureStepID",
    "ScheduledPerformingPhysicianName",
)
#: Orders only our SCP holds: matched by none of the compared queries.
OURS_ONLY: tuple[tuple[str, OrderFields], ...] = (
    (
        "latin1",
        replace(
            BASE,
            patient_name="MÜLLER^JÖRG",
            patient_id="P8",
            accession_number="C8",
            modality="CR",
            scheduled_station_ae_title="XR9",
            scheduled_procedure_step_start_date="20240510",
        ),
    ),
    (
        "cancelled",
        replace(
            BASE,
            patient_name="GONE^GARY",
            patient_id="P9",
            accession_number="C9",
            modality="CR",
            scheduled_station_ae_title="XR9",
            scheduled_procedure_step_start_date="20240510",
        ),
    ),
)


@dataclass
class Peers:
    node: NodeProcess
    wlm_port: int
    orders: dict[str, WorklistOrder]


def _wl_file(order: WorklistOrder, path: Path) -> None:
    """The order as a wlmscpfs worklist file (every Type 1 return key it checks for)."""
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    for keyword in (
        "PatientName",
        "PatientID",
        "PatientBirthDate",
        "PatientSex",
        "AccessionNumber",
        "RequestedProcedureID",
        "RequestedProcedureDescription",
        "StudyInstanceUID",
    ):
        setattr(ds, keyword, getattr(order, _snake(keyword)))
    ds.ReferencedStudySequence = []
    ds.ReferencedPatientSequence = []
    item = Dataset()
    for keyword in (*STEP_KEYS, "ScheduledProcedureStepDescription", "ScheduledStationName"):
        setattr(item, keyword, getattr(order, _snake(keyword)))
    ds.ScheduledProcedureStepSequence = [item]
    ds.save_as(path, implicit_vr=True, little_endian=True, enforce_file_format=False)


def _snake(keyword: str) -> str:
    special = {
        "ScheduledStationAETitle": "scheduled_station_ae_title",
        "StudyInstanceUID": "study_instance_uid",
        "PatientID": "patient_id",
        "RequestedProcedureID": "requested_procedure_id",
        "ScheduledProcedureStepID": "scheduled_procedure_step_id",
    }
    if keyword in special:
        return special[keyword]
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in keyword).lstrip("_")


@pytest.fixture(scope="module")
def peers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Peers]:
    """Our node and wlmscpfs, both holding the test worklist."""
    require_dcmtk()
    folder = tmp_path_factory.mktemp("mwl")
    node = NodeProcess(folder / "node")
    service = WorklistService(load_config(node.config_path))
    orders = {name: service.create(fields) for name, fields in (*WORKLIST, *OURS_ONLY)}
    service.cancel(orders["cancelled"].id)
    service.db.close()
    data = folder / "wlm" / WLM_AE
    data.mkdir(parents=True)
    (data / "lockfile").touch()
    for name, _fields in WORKLIST:
        _wl_file(orders[name], data / f"{name}.wl")
    port = free_port()
    wlm = subprocess.Popen(
        [str(DCMTK / "wlmscpfs"), "--single-process", "-dfp", str(folder / "wlm"), str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=dcmtk_env(),
    )
    try:
        wait_for_port(port, 20, wlm)
        with node:
            yield Peers(node, port, orders)
    finally:
        wlm.terminate()
        wlm.wait(10)


def findscu(port: int, ae_title: str, out: Path, *keys: str | bytes) -> tuple[str, list[Dataset]]:
    """``findscu -W`` with these ``-k`` keys; the log and the response identifiers."""
    out.mkdir(parents=True)
    args: list[str | bytes] = [str(DCMTK / "findscu"), "-v", "-W", "-aec", ae_title]
    for key in keys:
        args += ["-k", key]
    args += ["-X", "-od", str(out), "127.0.0.1", str(port)]
    proc = subprocess.run(args, capture_output=True, timeout=60, env=dcmtk_env())
    log = proc.stderr.decode("latin-1") + proc.stdout.decode("latin-1")
    return log, [dcmread(f, force=True) for f in sorted(out.glob("rsp*.dcm"))]


def _canonical(responses: list[Dataset]) -> list[tuple[tuple[str, str], ...]]:
    """Each response as (keyword, text) pairs of the compared keys, sorted; the orders only we
    hold are left out."""
    out = []
    ours_only = {fields.patient_id for _name, fields in OURS_ONLY}
    for rsp in responses:
        if rsp.PatientID in ours_only:
            continue
        pairs = [(k, str(rsp.get(k, "<absent>"))) for k in RETURN_KEYS]
        item = rsp.ScheduledProcedureStepSequence[0]
        pairs += [(f">{k}", str(item.get(k, "<absent>"))) for k in STEP_KEYS]
        out.append(tuple(pairs))
    return sorted(out)


def _keys(matching: dict[str, str]) -> list[str]:
    keys = []
    for keyword in RETURN_KEYS:
        keys.append(f"{keyword}={matching.get(keyword, '')}")
    for keyword in STEP_KEYS:
        keys.append(
            f"ScheduledProcedureStepSequence[0].{keyword}={matching.get(f'>{keyword}', '')}"
        )
    return keys


COMPARED: dict[str, dict[str, str]] = {
    "station": {">ScheduledStationAETitle": "CT1"},
    "station-list": {">ScheduledStationAETitle": "MR1\\US1"},
    "date": {">ScheduledProcedureStepStartDate": "20240502"},
    "date-range": {">ScheduledProcedureStepStartDate": "20240501-20240502"},
    "date-from": {">ScheduledProcedureStepStartDate": "20240502-"},
    "date-until": {">ScheduledProcedureStepStartDate": "-20240501"},
    "time-range": {">ScheduledProcedureStepStartTime": "0900-1200"},
    "date-time-range": {
        ">ScheduledProcedureStepStartDate": "20240501-20240502",
        ">ScheduledProcedureStepStartTime": "1000-0900",
    },
    "modality": {">Modality": "MR"},
    "modality-and-date": {">Modality": "CT", ">ScheduledProcedureStepStartDate": "20240501"},
    "physician": {">ScheduledPerformingPhysicianName": "WHO*"},
    "name-wildcard": {"PatientName": "DOE*"},
    "name-exact": {"PatientName": "SMITH^ANNA"},
    "name-single-char": {"PatientName": "?OE^*"},
    "patient-id": {"PatientID": "P4"},
    "accession-wildcard": {"AccessionNumber": "A*"},
    "accession": {"AccessionNumber": "B4"},
    "sex": {"PatientSex": "F"},
    "nothing": {"PatientID": "NOBODY"},
}


@pytest.mark.parametrize("name", list(COMPARED))
def test_same_matches_as_wlmscpfs(peers: Peers, tmp_path: Path, name: str) -> None:
    """findscu -W gets the same worklist items, with the same values, from us and wlmscpfs."""
    keys = _keys(COMPARED[name])
    ours_log, ours = findscu(peers.node.port, peers.node.ae_title, tmp_path / "ours", *keys)
    theirs_log, theirs = findscu(peers.wlm_port, WLM_AE, tmp_path / "wlm", *keys)
    assert "Received Final Find Response (Success)" in ours_log, ours_log
    assert "Received Final Find Response (Success)" in theirs_log, theirs_log
    assert _canonical(ours) == _canonical(theirs)
    if name != "nothing":
        assert ours, "the query should match something"


def test_names_match_without_regard_to_case(peers: Peers, tmp_path: Path) -> None:
    """Unlike wlmscpfs, we match "doe*" against DOE^JOHN and DOE^JANE (as our Q/R SCP does)."""
    keys = _keys({"PatientName": "doe*"})
    _log, ours = findscu(peers.node.port, peers.node.ae_title, tmp_path / "ours", *keys)
    _log, theirs = findscu(peers.wlm_port, WLM_AE, tmp_path / "wlm", *keys)
    assert sorted(str(r.PatientID) for r in ours) == ["P1", "P5"]
    assert theirs == []


def test_station_wildcard(peers: Peers, tmp_path: Path) -> None:
    """Unlike wlmscpfs, we apply wildcards to the AE title (PS3.4 C.2.2.2.4 allows them for AE)."""
    keys = _keys({">ScheduledStationAETitle": "*1"})
    _log, ours = findscu(peers.node.port, peers.node.ae_title, tmp_path / "ours", *keys)
    _log, theirs = findscu(peers.wlm_port, WLM_AE, tmp_path / "wlm", *keys)
    assert sorted(str(r.PatientID) for r in ours) == ["P1", "P2", "P3", "P4", "P5"]
    assert theirs == []


def test_character_set_and_only_requested_keys(peers: Peers, tmp_path: Path) -> None:
    """A Latin-1 name comes back in ISO_IR 100 when asked so, with only the requested keys."""
    _log, (rsp,) = findscu(
        peers.node.port,
        peers.node.ae_title,
        tmp_path / "q",
        "SpecificCharacterSet=ISO_IR 100",
        "PatientName=MÜLLER*".encode("latin-1"),
        "PatientID",
        "ScheduledProcedureStepSequence[0].ScheduledStationAETitle=XR9",
    )
    assert rsp.SpecificCharacterSet == "ISO_IR 100"
    assert rsp.PatientName == "MÜLLER^JÖRG"
    assert sorted(e.keyword for e in rsp) == [
        "PatientID",
        "PatientName",
        "ScheduledProcedureStepSequence",
        "SpecificCharacterSet",
    ]
    assert [e.keyword for e in rsp.ScheduledProcedureStepSequence[0]] == ["ScheduledStationAETitle"]
    _log, (utf8,) = findscu(
        peers.node.port, peers.node.ae_title, tmp_path / "u", "PatientID=P8", "PatientName"
    )
    assert utf8.SpecificCharacterSet == "ISO_IR 192" and utf8.PatientName == "MÜLLER^JÖRG"


def test_statuses_and_whole_step(peers: Peers, tmp_path: Path) -> None:
    """Cancelled orders leave the worklist unless asked for by status; an empty step sequence
    returns the whole step."""
    _log, found = findscu(
        peers.node.port,
        peers.node.ae_title,
        tmp_path / "a",
        "PatientID=P9",
        "ScheduledProcedureStepSequence",
    )
    assert found == []
    _log, (rsp,) = findscu(
        peers.node.port,
        peers.node.ae_title,
        tmp_path / "b",
        "PatientID=P9",
        "ScheduledProcedureStepSequence[0].ScheduledProcedureStepStatus=DISCONTINUED",
    )
    assert rsp.ScheduledProcedureStepSequence[0].ScheduledProcedureStepStatus == "DISCONTINUED"
    _log, (whole,) = findscu(
        peers.node.port,
        peers.node.ae_title,
        tmp_path / "c",
        "PatientID=P1",
        "ScheduledProcedureStepSequence",
    )
    item = whole.ScheduledProcedureStepSequence[0]
    assert (item.Modality, item.ScheduledStationName, item.ScheduledProcedureStepStatus) == (
        "CT",
        "CT ROOM 1",
        "SCHEDULED",
    )


def test_bad_range_is_refused(peers: Peers, tmp_path: Path) -> None:
    """A malformed date range fails with Unable to process (0xC000), naming the attribute."""
    log, found = findscu(
        peers.node.port,
        peers.node.ae_title,
        tmp_path / "q",
        "PatientID",
        "ScheduledProcedureStepSequence[0].ScheduledProcedureStepStartDate=2024-05",
    )
    assert found == []
    assert "Received Final Find Response (Failed: UnableToProcess)" in log, log
