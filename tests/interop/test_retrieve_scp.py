"""DCMTK movescu / getscu against ``tui-pacs serve``: our C-MOVE and C-GET SCP, and permissions.

One node serves the whole module: it holds two patients (P1: a study of two series and a study
of one; P2: one study) plus a JPEG 2000 MR image, and its config registers the destinations
(DCMTK storescp, an in-test pynetdicom storage SCP, movescu's own port) and AEs with reduced
permissions. Every retrieve is checked against the archive: the right instances arrive, each
with the data set bytes and transfer syntax we hold.
"""

from __future__ import annotations

import re
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pydicom
import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filereader import read_dataset
from pydicom.uid import (
    UID,
    AllTransferSyntaxes,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
)
from pynetdicom import AE, AllStoragePresentationContexts, build_role, evt
from pynetdicom.presentation import build_context
from pynetdicom.sop_class import (
    CTImageStorage,
    MRImageStorage,
    StudyRootQueryRetrieveInformationModelGet,
)
from pynetdicom.transport import ThreadedAssociationServer

from tests.interop.synth import new_uid, write_series
from tests.peers import (
    DCMTK,
    NodeProcess,
    StorescpProcess,
    dcmtk_env,
    free_port,
    require_dcmtk,
    run_dcmtk,
)
from tui_pacs.net import status as st
from tui_pacs.store.header import dataset_offset

pytestmark = pytest.mark.interop

J2K_FILE = Path(pydicom.__file__).parent / "data" / "test_files" / "MR_small_jp2klossless.dcm"
J2K_DECODED = J2K_FILE.with_name("MR_small.dcm")
STORESCP_AE, PICKY_AE, EXACT_AE, MOVESCU_AE = "STORESCP", "PICKY", "EXACT", "MOVESCU"


# -- DCMTK output ------------------------------------------------------------------------------


@dataclass
class Response:
    """The final C-MOVE / C-GET / C-STORE / C-ECHO response as DCMTK's debug log shows it."""

    status: int
    remaining: int | None
    completed: int | None
    failed: int | None
    warning: int | None
    failed_uids: list[str]
    pending: int


def final_response(output: str, message_type: str) -> Response:
    """Parse the last incoming ``message_type`` (e.g. ``C-MOVE RSP``) of a ``-d`` log."""
    found: list[tuple[str, str]] = []
    for piece in output.split("INCOMING DIMSE MESSAGE")[1:]:
        head, _, rest = piece.partition("END DIMSE MESSAGE")
        kind = re.search(r"Message Type\s*:\s*(.+)", head)
        if kind and kind.group(1).strip() == message_type:
            found.append((head, rest))
    assert found, f"no {message_type} in the output:\n{output[-3000:]}"
    head, rest = found[-1]
    status = re.search(r"DIMSE Status\s*:\s*0x([0-9a-fA-F]+)", head)
    assert status, head
    counts: dict[str, int | None] = dict.fromkeys(("Remaining", "Completed", "Failed", "Warning"))
    for name, value in re.findall(r"(Remaining|Completed|Failed|Warning) Suboperations\s*:\s*(\d+)",
                                  head):
        counts[name] = int(value)
    uids = re.search(r"\(0008,0058\) UI \[([^\]]*)\]", rest)
    return Response(
        status=int(status.group(1), 16),
        remaining=counts["Remaining"],
        completed=counts["Completed"],
        failed=counts["Failed"],
        warning=counts["Warning"],
        failed_uids=[u for u in uids.group(1).split("\\") if u] if uids else [],
        pending=len(found) - 1,
    )


def echo_status(output: str) -> int:
    """The status of echoscu's C-ECHO response (its log names it, without a DIMSE dump)."""
    found = re.search(r"Received Echo Response \((.*)\)", output)
    assert found, output[-3000:]
    if found.group(1) == "Success":
        return st.SUCCESS
    code = re.search(r"0x([0-9a-fA-F]+)", found.group(1))
    assert code, found.group(0)
    return int(code.group(1), 16)


# -- what arrives ------------------------------------------------------------------------------


def encoded(path: Path) -> tuple[str, bytes]:
    """(transfer syntax, data set bytes after the File Meta Information) of a DICOM file."""
    blob = path.read_bytes()
    offset, transfer_syntax = dataset_offset(blob)
    return str(transfer_syntax), blob[offset:]


def by_sop_uid(files: list[Path]) -> dict[str, Path]:
    return {str(dcmread(p, stop_before_pixels=True).SOPInstanceUID): p for p in files}


@dataclass
class Recorder:
    """An in-test storage SCP (pynetdicom) keeping each data set exactly as it arrived.

    It can fail chosen SOP Instance UIDs with 0xA700, and hold stores from the second one on
    until ``gate`` is set.
    """

    port: int
    #: Transfer syntaxes it accepts (None: every one pydicom knows).
    syntaxes: list[str] | None = None
    fail_uids: set[str] = field(default_factory=set)
    received: dict[str, tuple[str, bytes]] = field(default_factory=dict)
    gate: threading.Event | None = None
    stores: int = 0

    def reset(self) -> None:
        self.fail_uids = set()
        self.received = {}
        self.gate = None
        self.stores = 0

    def on_store(self, event: evt.Event) -> int:
        self.stores += 1
        if self.gate is not None and self.stores >= 2:
            assert self.gate.wait(30), "the cancel never came"
        uid = str(event.request.AffectedSOPInstanceUID)
        if uid in self.fail_uids:
            return st.REFUSED_OUT_OF_RESOURCES
        self.received[uid] = (str(event.context.transfer_syntax), event.request.DataSet.getvalue())
        return st.SUCCESS

    def start(self, ae_title: str) -> ThreadedAssociationServer:
        ae = AE(ae_title)
        syntaxes = self.syntaxes or [str(ts) for ts in AllTransferSyntaxes]
        ae.supported_contexts = [
            build_context(cx.abstract_syntax, syntaxes) for cx in AllStoragePresentationContexts
        ]
        return ae.start_server(("127.0.0.1", self.port), block=False,
                               evt_handlers=[(evt.EVT_C_STORE, self.on_store)])


@dataclass
class World:
    """The module's node, its holdings and the destinations it knows."""

    node: NodeProcess
    storescp: StorescpProcess
    #: Takes only uncompressed syntaxes.
    picky: Recorder
    #: Takes every syntax and keeps the bytes as they came off the wire.
    exact: Recorder
    movescu_port: int
    patients: dict[str, list[str]]  # patient id -> study uids
    studies: dict[str, list[str]]  # study uid -> series uids
    series: dict[str, list[str]]  # series uid -> sop uids
    j2k_study: str
    j2k_sop: str

    def archived(self, sop_uid: str) -> Path:
        (path,) = self.node.archive.rglob(f"{sop_uid}.dcm")
        return path

    def sops(self, *, patient: str | None = None, study: str | None = None,
             series: str | None = None) -> set[str]:
        if series:
            return set(self.series[series])
        studies = [study] if study else self.patients[patient or ""]
        return {sop for s in studies for ser in self.studies[s] for sop in self.series[ser]}

    def assert_as_held(self, received: dict[str, tuple[str, bytes]], expected: set[str]) -> None:
        """Exactly ``expected`` arrived, each in the transfer syntax and bytes we archived."""
        assert set(received) == expected
        for uid, got in received.items():
            assert got == encoded(self.archived(uid)), f"{uid} differs from the archived copy"

    def storescp_received(self) -> dict[str, tuple[str, bytes]]:
        return {uid: encoded(p) for uid, p in by_sop_uid(self.storescp.files()).items()}


#: Registered AEs with reduced permissions (they only call us: their port is never used).
LIMITED_AES: dict[str, tuple[str, list[str]]] = {
    "no-move": ("NOMOVE", ["echo", "find", "get", "store"]),
    "no-get": ("NOGET", ["echo", "find", "move", "store"]),
    "echo-only": ("ECHOONLY", ["echo"]),
    "store-only": ("STOREONLY", ["store"]),
}


def node_entry(name: str, ae_title: str, port: int, services: list[str] | None = None) -> str:
    """One ``[[nodes]]`` table of the node's config (every service allowed unless listed)."""
    entry = f'\n[[nodes]]\nname = "{name}"\nae_title = "{ae_title}"\nhost = "127.0.0.1"\n'
    entry += f"port = {port}\n"
    if services is not None:
        entry += "allowed_services = [" + ", ".join(f'"{s}"' for s in services) + "]\n"
    return entry


def nodes_toml(storescp_port: int, picky_port: int, exact_port: int, movescu_port: int) -> str:
    """The node registry of the module's node: the destinations, then the limited AEs."""
    destinations = [
        ("storescp", STORESCP_AE, storescp_port),
        ("picky", PICKY_AE, picky_port),
        ("exact", EXACT_AE, exact_port),
        ("movescu", MOVESCU_AE, movescu_port),
    ]
    return "".join(node_entry(*destination) for destination in destinations) + "".join(
        node_entry(name, ae_title, 104, services)
        for name, (ae_title, services) in LIMITED_AES.items()
    )


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """Start the node with its holdings imported, DCMTK storescp and the picky SCP."""
    require_dcmtk()
    folder = tmp_path_factory.mktemp("retrieve-scp")
    patients: dict[str, list[str]] = {}
    studies: dict[str, list[str]] = {}
    series: dict[str, list[str]] = {}
    for patient, layout in {"P1": [[3, 2], [1]], "P2": [[2]]}.items():
        for study_index, counts in enumerate(layout):
            study = new_uid()
            patients.setdefault(patient, []).append(study)
            for number, count in enumerate(counts, start=1):
                files = write_series(
                    folder / "in" / f"{patient}-{study_index}-{number}", count, study_uid=study,
                    patient_id=patient, series_number=number,
                )
                header = [dcmread(f, stop_before_pixels=True) for f in files]
                studies.setdefault(study, []).append(str(header[0].SeriesInstanceUID))
                series[str(header[0].SeriesInstanceUID)] = [str(h.SOPInstanceUID) for h in header]
    j2k = dcmread(J2K_FILE, stop_before_pixels=True)
    # Each port is bound right after free_port() picked it (the import below takes seconds,
    # long enough for another process to take a port picked before it and left unbound).
    picky = Recorder(free_port(), [ExplicitVRLittleEndian, ImplicitVRLittleEndian])
    servers = [picky.start(PICKY_AE)]
    exact = Recorder(free_port())
    servers.append(exact.start(EXACT_AE))
    movescu_port = free_port()
    try:
        with StorescpProcess(folder / "storescp", STORESCP_AE) as storescp:
            extra = nodes_toml(storescp.port, picky.port, exact.port, movescu_port)
            importer = NodeProcess(folder / "node", extra=extra)
            subprocess.run(
                [*node_command(importer), "import", str(folder / "in"), str(J2K_FILE)],
                check=True, capture_output=True, timeout=120,
            )
            # Same folder and registry, a port picked now: the node binds it at once.
            with NodeProcess(folder / "node", extra=extra) as node:
                yield World(node, storescp, picky, exact, movescu_port, patients, studies,
                            series, str(j2k.StudyInstanceUID), str(j2k.SOPInstanceUID))
    finally:
        for server in servers:
            server.shutdown()


def node_command(node: NodeProcess) -> list[str]:
    return [sys.executable, "-m", "tui_pacs", "--config", str(node.config_path)]


@pytest.fixture
def fresh(world: World) -> World:
    """The world with storescp's folder emptied and the picky SCP reset."""
    for path in world.storescp.files():
        path.unlink()
    world.picky.reset()
    world.exact.reset()
    return world


def call_node(
    node: NodeProcess, tool: str, aet: str, *options: str, files: Sequence[str] = ()
) -> str:
    """Run DCMTK ``tool`` as ``aet`` against the node (then ``files``); its whole log."""
    address = ["127.0.0.1", str(node.port)]
    done = run_dcmtk(
        tool, "-aet", aet, "-aec", node.ae_title, *options, *address, *files, timeout=120
    )
    return done.stdout + done.stderr


def retrieve(world: World, tool: str, aet: str, keys: list[str], *options: str) -> Response:
    """Run movescu or getscu (``tool``) with ``keys`` (``-k``); its final response."""
    keys_args = [arg for key in keys for arg in ("-k", key)]
    output = call_node(world.node, tool, aet, "-d", *options, *keys_args)
    return final_response(output, "C-MOVE RSP" if tool == "movescu" else "C-GET RSP")


def movescu(world: World, keys: list[str], *options: str, dest: str = STORESCP_AE,
            root: str = "-S", aet: str = MOVESCU_AE) -> Response:
    return retrieve(world, "movescu", aet, keys, root, "-aem", dest, *options)


def getscu(world: World, keys: list[str], out: Path, *options: str, root: str = "-S",
           aet: str = "GETSCU") -> Response:
    out.mkdir(parents=True, exist_ok=True)
    return retrieve(world, "getscu", aet, keys, root, "-od", str(out), *options)


def echo(node: NodeProcess, aet: str) -> int:
    """The status echoscu gets from the node when it calls as ``aet``."""
    return echo_status(call_node(node, "echoscu", aet, "-v"))


def received_files(folder: Path) -> dict[str, tuple[str, bytes]]:
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    return {uid: encoded(p) for uid, p in by_sop_uid(files).items()}


# -- every level, both roots -------------------------------------------------------------------

Case = tuple[str, Callable[[World], list[str]], Callable[[World], set[str]]]


def _p1(w: World) -> tuple[str, str, str, str, str]:
    study1, study2 = w.patients["P1"]
    series_a, series_b = w.studies[study1]
    (series_c,) = w.studies[study2]
    return study1, study2, series_a, series_b, series_c


CASES: dict[str, Case] = {
    "patient-root-PATIENT": (
        "-P",
        lambda w: ["QueryRetrieveLevel=PATIENT", "PatientID=P1"],
        lambda w: w.sops(patient="P1"),
    ),
    "patient-root-STUDY": (
        "-P",
        lambda w: ["QueryRetrieveLevel=STUDY", "PatientID=P1", f"StudyInstanceUID={_p1(w)[0]}"],
        lambda w: w.sops(study=_p1(w)[0]),
    ),
    "patient-root-SERIES": (
        "-P",
        lambda w: ["QueryRetrieveLevel=SERIES", "PatientID=P1", f"StudyInstanceUID={_p1(w)[0]}",
                   f"SeriesInstanceUID={_p1(w)[2]}"],
        lambda w: w.sops(series=_p1(w)[2]),
    ),
    "patient-root-IMAGE-list": (
        "-P",
        lambda w: ["QueryRetrieveLevel=IMAGE", "PatientID=P1", f"StudyInstanceUID={_p1(w)[0]}",
                   f"SeriesInstanceUID={_p1(w)[2]}",
                   "SOPInstanceUID=" + "\\".join(w.series[_p1(w)[2]][::2])],
        lambda w: set(w.series[_p1(w)[2]][::2]),
    ),
    "study-root-STUDY-list": (
        "-S",
        lambda w: ["QueryRetrieveLevel=STUDY",
                   f"StudyInstanceUID={_p1(w)[0]}\\{w.patients['P2'][0]}"],
        lambda w: w.sops(study=_p1(w)[0]) | w.sops(study=w.patients["P2"][0]),
    ),
    "study-root-SERIES": (
        "-S",
        lambda w: ["QueryRetrieveLevel=SERIES", f"StudyInstanceUID={_p1(w)[0]}",
                   f"SeriesInstanceUID={_p1(w)[3]}"],
        lambda w: w.sops(series=_p1(w)[3]),
    ),
    "study-root-SERIES-list": (
        "-S",
        lambda w: ["QueryRetrieveLevel=SERIES", f"SeriesInstanceUID={_p1(w)[2]}\\{_p1(w)[4]}"],
        lambda w: w.sops(series=_p1(w)[2]) | w.sops(series=_p1(w)[4]),
    ),
    "study-root-IMAGE": (
        "-S",
        lambda w: ["QueryRetrieveLevel=IMAGE", f"StudyInstanceUID={_p1(w)[0]}",
                   f"SeriesInstanceUID={_p1(w)[3]}", f"SOPInstanceUID={w.series[_p1(w)[3]][1]}"],
        lambda w: {w.series[_p1(w)[3]][1]},
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_move_each_level_and_root(fresh: World, case: str) -> None:
    """movescu at each level of both roots: exactly the named instances reach storescp, as held."""
    root, keys, expected = CASES[case]
    rsp = movescu(fresh, keys(fresh), root=root)
    want = expected(fresh)
    assert rsp.status == st.SUCCESS
    assert (rsp.completed, rsp.failed, rsp.warning) == (len(want), 0, 0)
    assert rsp.pending == len(want), "one pending response per sub-operation"
    fresh.assert_as_held(fresh.storescp_received(), want)


@pytest.mark.parametrize("case", list(CASES))
def test_get_each_level_and_root(fresh: World, case: str, tmp_path: Path) -> None:
    """getscu at each level of both roots: exactly the named instances come back, as held."""
    root, keys, expected = CASES[case]
    rsp = getscu(fresh, keys(fresh), tmp_path, root=root)
    want = expected(fresh)
    assert rsp.status == st.SUCCESS
    assert (rsp.completed, rsp.failed, rsp.warning) == (len(want), 0, 0)
    fresh.assert_as_held(received_files(tmp_path), want)


def test_move_to_the_requestors_own_port(fresh: World, tmp_path: Path) -> None:
    """movescu as its own destination (+P): our sub-association reaches it and it stores all."""
    study1 = _p1(fresh)[0]
    out = tmp_path / "movescu"
    out.mkdir()
    rsp = movescu(fresh, ["QueryRetrieveLevel=STUDY", f"StudyInstanceUID={study1}"],
                  "+P", str(fresh.movescu_port), "-od", str(out), dest=MOVESCU_AE)
    assert rsp.status == st.SUCCESS
    fresh.assert_as_held(received_files(out), fresh.sops(study=study1))


# -- failures ----------------------------------------------------------------------------------


def test_unknown_destination(fresh: World) -> None:
    """A Move Destination that is not in the node registry gets 0xA801 and nothing is sent."""
    rsp = movescu(fresh, ["QueryRetrieveLevel=STUDY", f"StudyInstanceUID={_p1(fresh)[0]}"],
                  dest="NOWHERE")
    assert rsp.status == st.MOVE_DESTINATION_UNKNOWN
    assert fresh.storescp.files() == []


def test_invalid_identifiers(fresh: World, tmp_path: Path) -> None:
    """A level the model lacks, or a missing unique key, is answered 0xA900 (C-MOVE and C-GET)."""
    study1 = _p1(fresh)[0]
    rsp = movescu(fresh, ["QueryRetrieveLevel=PATIENT", "PatientID=P1"], root="-S")
    assert rsp.status == st.IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS
    rsp = movescu(fresh, ["QueryRetrieveLevel=SERIES", f"StudyInstanceUID={study1}"])
    assert rsp.status == st.IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS
    rsp = getscu(fresh, ["QueryRetrieveLevel=STUDY", "PatientID=P1"], tmp_path)
    assert rsp.status == st.IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS
    assert fresh.storescp.files() == [] and received_files(tmp_path) == {}


def test_nothing_matches(fresh: World, tmp_path: Path) -> None:
    """An identifier naming nothing we hold ends in success with no sub-operations."""
    keys = ["QueryRetrieveLevel=STUDY", f"StudyInstanceUID={new_uid()}"]
    for rsp in (movescu(fresh, keys), getscu(fresh, keys, tmp_path)):
        assert (rsp.status, rsp.completed, rsp.failed, rsp.pending) == (st.SUCCESS, 0, 0, 0)


def test_partial_failure_is_a_warning_with_the_failed_uids(fresh: World) -> None:
    """Sub-operations the destination refuses make the final status 0xB000 listing their UIDs."""
    study1 = _p1(fresh)[0]
    held = fresh.sops(study=study1)
    refused = set(sorted(held)[:2])
    fresh.picky.fail_uids = refused
    rsp = movescu(fresh, ["QueryRetrieveLevel=STUDY", f"StudyInstanceUID={study1}"], dest=PICKY_AE)
    assert rsp.status == st.SUB_OPERATIONS_COMPLETE_WITH_FAILURES
    assert (rsp.completed, rsp.failed, rsp.warning) == (len(held) - 2, 2, 0)
    assert set(rsp.failed_uids) == refused
    fresh.assert_as_held(fresh.picky.received, held - refused)


def test_all_sub_operations_failing_is_a_failure(fresh: World) -> None:
    """When every sub-operation fails the final status is 0xA702 with every UID listed."""
    series_b = _p1(fresh)[3]
    fresh.picky.fail_uids = fresh.sops(series=series_b)
    rsp = movescu(fresh, ["QueryRetrieveLevel=SERIES", f"SeriesInstanceUID={series_b}"],
                  dest=PICKY_AE)
    assert rsp.status == st.OUT_OF_RESOURCES_UNABLE_TO_PERFORM_SUB_OPERATIONS
    assert (rsp.completed, rsp.failed) == (0, 2)
    assert set(rsp.failed_uids) == fresh.sops(series=series_b)


def test_move_cancel(fresh: World) -> None:
    """movescu --cancel 1: the move stops with 0xFE00 and counts, the rest is never sent.

    The destination holds the second store until movescu has sent its C-CANCEL, so the node
    sees the cancel before it would start the third sub-operation.
    """
    study1 = _p1(fresh)[0]
    total = len(fresh.sops(study=study1))
    fresh.picky.gate = gate = threading.Event()
    proc = subprocess.Popen(
        [str(DCMTK / "movescu"), "-d", "-S", "--cancel", "1", "-aec", fresh.node.ae_title,
         "-aem", PICKY_AE, "-k", "QueryRetrieveLevel=STUDY", "-k", f"StudyInstanceUID={study1}",
         "127.0.0.1", str(fresh.node.port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=dcmtk_env(),
    )
    lines = []
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.append(line)
        if "Sending Cancel Request" in line:
            gate.set()
    assert proc.wait(60) is not None
    rsp = final_response("".join(lines), "C-MOVE RSP")
    assert rsp.status == st.CANCEL
    assert rsp.completed is not None and 2 <= rsp.completed < total
    assert rsp.remaining == total - rsp.completed
    assert len(fresh.picky.received) == rsp.completed


def pynetdicom_get(
    world: World,
    study_uid: str,
    storage: dict[str, list[str]],
    on_store: Callable[[evt.Event, Any], int],
) -> Dataset:
    """C-GET a study with a pynetdicom SCU taking the SCP role for ``storage`` (class: syntaxes).

    ``on_store(event, cancel)`` answers each C-STORE; ``cancel()`` sends a C-CANCEL for the get.
    Returns the final C-GET response's status data set.
    """
    ae = AE("PYGETSCU")
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelGet)
    for sop_class, syntaxes in storage.items():
        ae.add_requested_context(sop_class, syntaxes)
    roles = [build_role(sop_class, scp_role=True) for sop_class in storage]
    holder: dict[str, Any] = {}

    def cancel() -> None:
        holder["assoc"].send_c_cancel(1, holder["context_id"])

    assoc = ae.associate(
        "127.0.0.1", world.node.port, ae_title=world.node.ae_title, ext_neg=roles,
        evt_handlers=[(evt.EVT_C_STORE, lambda event: on_store(event, cancel))],
    )
    assert assoc.is_established
    holder["assoc"] = assoc
    holder["context_id"] = next(
        cx.context_id for cx in assoc.accepted_contexts
        if cx.abstract_syntax == StudyRootQueryRetrieveInformationModelGet
    )
    query = Dataset()
    query.QueryRetrieveLevel = "STUDY"
    query.StudyInstanceUID = study_uid
    try:
        responses = list(assoc.send_c_get(query, StudyRootQueryRetrieveInformationModelGet,
                                          msg_id=1))
    finally:
        assoc.release()
    return responses[-1][0]


def test_get_cancel(fresh: World) -> None:
    """A C-CANCEL sent while the second C-GET sub-operation runs ends the get with 0xFE00.

    getscu cannot cancel, so a pynetdicom SCU does: its C-STORE handler sends the C-CANCEL
    before it answers the second store, so the node sees it before the third sub-operation.
    """
    study1 = _p1(fresh)[0]
    total = len(fresh.sops(study=study1))
    stores: list[str] = []

    def on_store(event: evt.Event, cancel: Callable[[], None]) -> int:
        stores.append(str(event.request.AffectedSOPInstanceUID))
        if len(stores) == 2:
            cancel()
        return st.SUCCESS

    final = pynetdicom_get(fresh, study1, {CTImageStorage: [ExplicitVRLittleEndian]}, on_store)
    assert final.Status == st.CANCEL
    assert final.NumberOfCompletedSuboperations == 2 == len(stores)
    assert final.NumberOfRemainingSuboperations == total - 2


# -- transfer syntaxes -------------------------------------------------------------------------


def test_compressed_instance_is_sent_as_stored(fresh: World) -> None:
    """A JPEG 2000 instance reaches a peer that accepts JPEG 2000 in it, bytes unchanged.

    (DCMTK storescp rewrites encapsulated pixel data when it saves, so a pynetdicom SCP that
    keeps the bytes off the wire is the judge; storescp must still receive it as JPEG 2000.)
    """
    keys = ["QueryRetrieveLevel=STUDY", f"StudyInstanceUID={fresh.j2k_study}"]
    rsp = movescu(fresh, keys, dest=EXACT_AE)
    assert (rsp.status, rsp.completed) == (st.SUCCESS, 1)
    fresh.assert_as_held(fresh.exact.received, {fresh.j2k_sop})
    assert fresh.exact.received[fresh.j2k_sop][0] == JPEG2000Lossless
    assert movescu(fresh, keys).status == st.SUCCESS
    assert [ts for ts, _ in fresh.storescp_received().values()] == [JPEG2000Lossless]


def test_compressed_instance_is_decoded_for_an_uncompressed_peer(fresh: World) -> None:
    """A peer that takes only uncompressed syntaxes gets the J2K image decoded, same UID."""
    rsp = movescu(fresh, ["QueryRetrieveLevel=STUDY", f"StudyInstanceUID={fresh.j2k_study}"],
                  dest=PICKY_AE)
    assert (rsp.status, rsp.completed) == (st.SUCCESS, 1)
    transfer_syntax, data = fresh.picky.received[fresh.j2k_sop]
    assert transfer_syntax in (ExplicitVRLittleEndian, ImplicitVRLittleEndian)
    decoded = read_received(data, transfer_syntax)
    assert str(decoded.SOPInstanceUID) == fresh.j2k_sop
    assert (decoded.pixel_array == dcmread(J2K_DECODED).pixel_array).all()


def read_received(data: bytes, transfer_syntax: str) -> Dataset:
    """A received data set read back (it has no File Meta Information of its own)."""
    ts = UID(transfer_syntax)
    ds = read_dataset(DicomBytesIO(data), ts.is_implicit_VR, ts.is_little_endian)
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ts
    return ds


def test_get_compressed_instance_decoded(fresh: World, tmp_path: Path) -> None:
    """getscu (uncompressed syntaxes with the J2K one, in one context) gets the image decoded.

    With C-GET the acceptor picks one syntax per context and we prefer uncompressed ones, so a
    compressed instance goes out decoded unless its syntax has a context of its own.
    """
    keys = ["QueryRetrieveLevel=STUDY", f"StudyInstanceUID={fresh.j2k_study}"]
    for flags in ([], ["+xv"]):
        out = tmp_path / ("plain" if not flags else "xv")
        rsp = getscu(fresh, keys, out, *flags)
        assert (rsp.status, rsp.completed) == (st.SUCCESS, 1)
        (path,) = list(out.iterdir())
        decoded = dcmread(path)
        assert decoded.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
        assert str(decoded.SOPInstanceUID) == fresh.j2k_sop
        assert (decoded.pixel_array == dcmread(J2K_DECODED).pixel_array).all()


def test_get_compressed_instance_as_stored(fresh: World) -> None:
    """A C-GET SCU giving JPEG 2000 a context of its own gets the instance bytes as held."""
    received: dict[str, tuple[str, bytes]] = {}

    def on_store(event: evt.Event, cancel: Callable[[], None]) -> int:
        uid = str(event.request.AffectedSOPInstanceUID)
        received[uid] = (str(event.context.transfer_syntax), event.request.DataSet.getvalue())
        return st.SUCCESS

    final = pynetdicom_get(fresh, fresh.j2k_study, {MRImageStorage: [JPEG2000Lossless]}, on_store)
    assert (final.Status, final.NumberOfCompletedSuboperations) == (st.SUCCESS, 1)
    fresh.assert_as_held(received, {fresh.j2k_sop})


# -- permissions -------------------------------------------------------------------------------


def test_move_refused_without_move_permission(fresh: World) -> None:
    """A registered AE without 'move' gets 0x0124 and nothing reaches the destination."""
    rsp = movescu(fresh, ["QueryRetrieveLevel=STUDY", f"StudyInstanceUID={_p1(fresh)[0]}"],
                  aet="NOMOVE")
    assert rsp.status == st.REFUSED_NOT_AUTHORIZED
    assert fresh.storescp.files() == []


def test_get_refused_without_get_permission(fresh: World, tmp_path: Path) -> None:
    """A registered AE without 'get' gets 0x0124 and receives nothing."""
    rsp = getscu(fresh, ["QueryRetrieveLevel=STUDY", f"StudyInstanceUID={_p1(fresh)[0]}"],
                 tmp_path, aet="NOGET")
    assert rsp.status == st.REFUSED_NOT_AUTHORIZED
    assert received_files(tmp_path) == {}


def test_store_and_echo_permissions(fresh: World) -> None:
    """C-STORE and C-ECHO are refused (0x0124) to registered AEs without 'store' / 'echo'."""
    held = fresh.archived(next(iter(fresh.sops(patient="P2"))))

    def store(aet: str) -> Response:
        output = call_node(fresh.node, "storescu", aet, "-d", files=[str(held)])
        return final_response(output, "C-STORE RSP")

    assert store("ECHOONLY").status == st.REFUSED_NOT_AUTHORIZED
    assert store("STOREONLY").status == st.SUCCESS
    assert echo(fresh.node, "STOREONLY") == st.REFUSED_NOT_AUTHORIZED
    assert echo(fresh.node, "ECHOONLY") == st.SUCCESS
    assert echo(fresh.node, "SOMEONE") == st.SUCCESS, "unknown callers are allowed by default"


def test_unknown_callers_rejected(tmp_path: Path) -> None:
    """With [node] unknown_callers = "reject", an AE outside the registry is refused 0x0124."""
    require_dcmtk()
    node = NodeProcess(
        tmp_path / "node", extra=nodes_toml(free_port(), free_port(), free_port(), free_port())
    )
    text = node.config_path.read_text()
    node.config_path.write_text(text.replace("[node]\n", '[node]\nunknown_callers = "reject"\n', 1))
    with node:
        assert echo(node, "STRANGER") == st.REFUSED_NOT_AUTHORIZED
        assert echo(node, "ECHOONLY") == st.SUCCESS
