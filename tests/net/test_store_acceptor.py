"""The store acceptor (net/store_acceptor.py) on raw PDUs and pynetdicom: pynetdicom's answers.

Each listener here runs in the test process on a free loopback port. ``fast_storage=False``
listeners are pynetdicom alone: the reference the acceptor's negotiation must equal byte for byte.
"""

from __future__ import annotations

import struct
import threading
import time
from collections.abc import Callable, Iterator

import pytest
from pydicom.dataset import Dataset
from pynetdicom import AE, _config, build_role, evt
from pynetdicom.sop_class import (  # type: ignore[attr-defined]
    CTImageStorage,
    StudyRootQueryRetrieveInformationModelFind,
)

from tests.net.dul_wire import (
    A_ABORT,
    A_RELEASE_RQ,
    CT_IMAGE_STORAGE,
    EXPLICIT_LE,
    IMPLICIT_LE,
    MR_IMAGE_STORAGE,
    STUDY_ROOT_FIND,
    VERIFICATION,
    Peer,
    accepted_contexts,
    associate_rq,
    c_echo_rq,
    c_store_rq,
    command,
    p_data,
    pdu,
    rejection,
)
from tests.net.raw_store import encode_dataset
from tests.store.synthetic import (
    archive_files,
    make_dataset,
    new_uid,
    open_ingestor,
    row_counts,
    temp_files,
)
from tui_pacs.config import Config
from tui_pacs.net import status as st
from tui_pacs.net.scp import Listener, ListenerOptions, StoreRequest
from tui_pacs.net.store_acceptor import StoreAssociation

CONTEXTS = [(1, CT_IMAGE_STORAGE, [EXPLICIT_LE, IMPLICIT_LE]), (3, VERIFICATION, [IMPLICIT_LE])]


class Recorder:
    """A ``store`` callable that keeps what it was given (bytes copied) and answers success."""

    def __init__(self) -> None:
        self.requests: list[tuple[StoreRequest, bytes]] = []

    def __call__(self, request: StoreRequest) -> None:
        self.requests.append((request, bytes(request.dataset)))


@pytest.fixture
def listeners(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., Listener]]:
    """Start listeners on free ports (``store`` and option overrides); all stopped afterwards."""
    monkeypatch.setitem(_config.VALIDATORS, "UI", _config.VALIDATORS["UI"])
    started: list[Listener] = []

    def start(store: Callable[[StoreRequest], object] | None = None, **options: object) -> Listener:
        opts = ListenerOptions(ae_title="TUI_PACS", bind_address="127.0.0.1", port=0)
        for key, value in options.items():
            setattr(opts, key, value)
        listener = Listener(opts, store or Recorder())
        listener.start()
        started.append(listener)
        return listener

    yield start
    for listener in started:
        listener.stop(grace=0.2)


def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.01)


def served_here(listener: Listener) -> list[bool]:
    """For each live association of the listener: is the store acceptor serving it?"""
    return [getattr(a, "fast", False) for a in listener.server.active_associations]


def dataset_bytes(sop_uid: str, pixel_bytes: int = 0) -> bytes:
    ds = make_dataset(study_uid=new_uid(), series_uid=new_uid(), sop_uid=sop_uid)
    if pixel_bytes:
        ds.Rows, ds.Columns, ds.BitsAllocated = 1, pixel_bytes, 8
        ds.add_new(0x7FE00010, "OB", bytes(range(256)) * (pixel_bytes // 256))
    del ds.file_meta
    return encode_dataset(ds)


def abort_reason(got: object) -> tuple[int, int]:
    """(source, reason) of an A-ABORT PDU."""
    assert got.type == 0x07, f"expected A-ABORT, got PDU type 0x{got.type:02X}"  # type: ignore[attr-defined]
    body = got.body  # type: ignore[attr-defined]
    return body[2], body[3]


# --- negotiation: byte-identical to pynetdicom's ---------------------------------------------


@pytest.mark.parametrize(
    ("contexts", "options"),
    [
        pytest.param(
            [*CONTEXTS, (5, MR_IMAGE_STORAGE, ["1.2.3.4"])], {}, id="accepted-one-context-refused"
        ),
        pytest.param([(1, CT_IMAGE_STORAGE, ["1.2.3.4"])], {}, id="no-acceptable-context"),
        pytest.param(
            CONTEXTS, {"allowed_calling_ae_titles": ("MODALITY",)}, id="calling-ae-refused"
        ),
        pytest.param(CONTEXTS, {"max_pdu_size": 32768}, id="our-max-pdu"),
    ],
)
def test_negotiation_answer_is_pynetdicoms(
    listeners: Callable[..., Listener], contexts: list, options: dict
) -> None:
    """The A-ASSOCIATE-AC/RJ of the acceptor equals pynetdicom's own, byte for byte."""
    answers = []
    for fast in (True, False):
        listener = listeners(fast_storage=fast, **options)
        peer = Peer(listener.port)
        try:
            answer = peer.associate(associate_rq(contexts))
            if answer.type == 0x02:
                assert served_here(listener) == [fast]
                peer.send(A_RELEASE_RQ)
                assert peer.read_pdu().type == 0x06
            answers.append(answer)
        finally:
            peer.close()
    assert answers[0] == answers[1]
    if options.get("allowed_calling_ae_titles"):
        assert answers[0].type == 0x03
        assert rejection(answers[0]) == (1, 1, 3)
    elif contexts[0][2] == ["1.2.3.4"]:
        assert accepted_contexts(answers[0]) == {1: (4, "1.2.3.4")}
    else:
        results = accepted_contexts(answers[0])
        assert results[1] == (0, EXPLICIT_LE)
        assert results[3] == (0, IMPLICIT_LE)


def test_association_limit_counts_store_associations(listeners: Callable[..., Listener]) -> None:
    """The AE's limit on associations counts the acceptor's associations (rejected 2/3/2)."""
    listener = listeners()
    listener.ae.maximum_associations = 1
    first = Peer(listener.port)
    second = None
    try:
        assert first.associate(associate_rq(CONTEXTS)).type == 0x02
        assert listener.active_associations == 1
        second = Peer(listener.port)
        answer = second.associate(associate_rq(CONTEXTS))
        assert answer.type == 0x03
        assert rejection(answer) == (2, 3, 2)
    finally:
        first.close()
        if second is not None:
            second.close()


def test_release_answers_and_counts(listeners: Callable[..., Listener]) -> None:
    """An association served here counts as live until the peer releases it, then is gone."""
    listener = listeners()
    peer = Peer(listener.port)
    try:
        assert peer.associate(associate_rq(CONTEXTS)).type == 0x02
        assert listener.active_associations == 1
        assert served_here(listener) == [True]
        peer.send(A_RELEASE_RQ)
        assert peer.read_pdu().type == 0x06  # A-RELEASE-RP
    finally:
        peer.close()
    wait_for(lambda: listener.active_associations == 0)


# --- DIMSE over raw PDUs -----------------------------------------------------------------------


def test_fragmented_messages_and_a_tiny_peer_max_pdu(listeners: Callable[..., Listener]) -> None:
    """Command and data set in many small PDVs (several per PDU) arrive whole; answers fit 16 B."""
    recorder = Recorder()
    listener = listeners(recorder)
    peer = Peer(listener.port)
    try:
        assert peer.associate(associate_rq(CONTEXTS, max_length=16)).type == 0x02
        echo = c_echo_rq(7)
        for start in range(0, len(echo), 5):
            last = start + 5 >= len(echo)
            peer.send(p_data((3, 0x03 if last else 0x01, echo[start : start + 5])))
        rsp, sizes = peer.read_response()
        assert (rsp.CommandField, rsp.MessageIDBeingRespondedTo, rsp.Status) == (0x8030, 7, 0)
        assert max(sizes) <= 16 and len(sizes) > 1

        uid = new_uid()
        data = dataset_bytes(uid, pixel_bytes=20_000)
        cmd = c_store_rq(8, CT_IMAGE_STORAGE, uid)
        pieces = [(1, 0x01, cmd[i : i + 7]) for i in range(0, len(cmd), 7)]
        pieces[-1] = (1, 0x03, pieces[-1][2])
        pieces += [(1, 0x00, data[i : i + 1000]) for i in range(0, len(data), 1000)]
        pieces[-1] = (1, 0x02, pieces[-1][2])
        for i in range(0, len(pieces), 3):
            peer.send(p_data(*pieces[i : i + 3]))
        rsp, sizes = peer.read_response()
        assert (rsp.CommandField, rsp.Status, rsp.AffectedSOPInstanceUID) == (0x8001, 0, uid)
        assert max(sizes) <= 16
        [(request, received)] = recorder.requests
        assert received == data
        assert request.transfer_syntax_uid == EXPLICIT_LE
        assert (request.sop_class_uid, request.sop_instance_uid) == (CT_IMAGE_STORAGE, uid)
        assert request.calling_ae_title == "RAWSCU"
        peer.send(A_RELEASE_RQ)
        assert peer.read_pdu().type == 0x06
    finally:
        peer.close()


def test_other_dimse_request_is_an_unrecognized_operation(
    listeners: Callable[..., Listener],
) -> None:
    """A C-FIND-RQ on a storage context gets 0x0211 (identifier read and dropped); echo works."""
    listener = listeners()
    peer = Peer(listener.port)
    try:
        peer.associate(associate_rq(CONTEXTS))
        find = command({0x0002: CT_IMAGE_STORAGE, 0x0100: 0x0020, 0x0110: 3, 0x0700: 0, 0x0800: 0})
        peer.send(p_data((1, 0x03, find), (1, 0x02, dataset_bytes(new_uid()))))
        rsp, _ = peer.read_response()
        assert (rsp.CommandField, rsp.MessageIDBeingRespondedTo) == (0x8020, 3)
        assert rsp.Status == st.UNRECOGNIZED_OPERATION
        peer.send(p_data((3, 0x03, c_echo_rq(4))))
        rsp, _ = peer.read_response()
        assert rsp.Status == 0
    finally:
        peer.close()


@pytest.mark.parametrize(
    ("bad", "expected"),
    [
        pytest.param(p_data((9, 0x03, c_echo_rq(1))), (2, 6), id="p-data-on-unaccepted-context"),
        pytest.param(pdu(0x55, b"\0" * 8), (2, 1), id="unknown-pdu-type"),
        pytest.param(associate_rq(CONTEXTS), (2, 2), id="second-associate-rq"),
        pytest.param(pdu(0x04, struct.pack(">IBB", 1, 1, 3)), (2, 6), id="pdv-item-too-short"),
        pytest.param(p_data((1, 0x02, b"\x08\x00")), (2, 5), id="data-set-without-command"),
        pytest.param(p_data((1, 0x03, b"\x00\x00\x00")), (2, 6), id="command-set-cut"),
    ],
)
def test_protocol_errors_abort_with_their_reason(
    listeners: Callable[..., Listener], bad: bytes, expected: tuple[int, int]
) -> None:
    """Each protocol error gets an A-ABORT with its PS3.8 reason, and the connection is closed."""
    listener = listeners()
    peer = Peer(listener.port)
    try:
        assert peer.associate(associate_rq(CONTEXTS)).type == 0x02
        peer.send(bad)
        assert abort_reason(peer.read_pdu()) == expected
        assert peer.closed_by_peer()
    finally:
        peer.close()
    wait_for(lambda: listener.active_associations == 0)


def test_idle_association_is_aborted_after_the_network_timeout(
    listeners: Callable[..., Listener],
) -> None:
    """An association with nothing to say is aborted (service user) after network_timeout."""
    listener = listeners(network_timeout=1)
    peer = Peer(listener.port)
    try:
        peer.associate(associate_rq(CONTEXTS))
        started = time.monotonic()
        assert abort_reason(peer.read_pdu()) == (0, 0)
        # The listener's clock starts when it sends the A-ASSOCIATE-AC, ours once we have read
        # it: on a loaded machine we may wake up a few hundred ms late. Not at once, not never.
        assert 0.5 < time.monotonic() - started < 5
        assert peer.closed_by_peer()
    finally:
        peer.close()


# --- with the real ingestor: nothing half-stored ---------------------------------------------


def test_peer_abort_or_cut_mid_data_set_stores_nothing(
    listeners: Callable[..., Listener], config: Config
) -> None:
    """A-ABORT, or a PDU cut by a closed connection, mid data set: no file, no row; then stores."""
    with open_ingestor(config) as ingestor:
        listener = listeners(ingestor.store_request)
        uid = new_uid()
        data = dataset_bytes(uid, pixel_bytes=8192)
        for ending in ("abort", "cut"):
            peer = Peer(listener.port)
            try:
                peer.associate(associate_rq(CONTEXTS))
                peer.send(p_data((1, 0x03, c_store_rq(1, CT_IMAGE_STORAGE, uid))))
                peer.send(p_data((1, 0x00, data[:4000])))
                if ending == "abort":
                    peer.send(A_ABORT)
                else:
                    peer.send(struct.pack(">BBI", 4, 0, 5000) + data[4000:4100])
            finally:
                peer.close()
            wait_for(lambda: listener.active_associations == 0)
        assert row_counts() == {"patient": 0, "study": 0, "series": 0, "instance": 0}
        assert archive_files(config.storage_path) == {}
        assert temp_files(config.storage_path) == []

        peer = Peer(listener.port)
        try:
            peer.associate(associate_rq(CONTEXTS))
            peer.send(p_data((1, 0x03, c_store_rq(2, CT_IMAGE_STORAGE, uid)), (1, 0x02, data)))
            rsp, _ = peer.read_response()
            assert rsp.Status == 0
        finally:
            peer.close()
        assert row_counts()["instance"] == 1


# --- listener stop ---------------------------------------------------------------------------


def test_stop_during_a_transfer_aborts_it(listeners: Callable[..., Listener]) -> None:
    """Listener.stop with a data set half received: A-ABORT after the grace, nothing stored."""
    recorder = Recorder()
    listener = listeners(recorder)
    peer = Peer(listener.port)
    try:
        peer.associate(associate_rq(CONTEXTS))
        peer.send(p_data((1, 0x03, c_store_rq(1, CT_IMAGE_STORAGE, new_uid()))))
        peer.send(p_data((1, 0x00, b"\x08\x00" * 100)))
        started = time.monotonic()
        listener.stop(grace=0.3)
        assert time.monotonic() - started < 5
        assert abort_reason(peer.read_pdu()) == (0, 0)
        assert peer.closed_by_peer()
    finally:
        peer.close()
    assert recorder.requests == []


def test_stop_lets_a_store_in_flight_finish_and_answers_it(
    listeners: Callable[..., Listener],
) -> None:
    """A store being archived when stop() begins is acknowledged (success) before the abort."""
    entered, release = threading.Event(), threading.Event()

    def slow_store(request: StoreRequest) -> None:
        entered.set()
        assert release.wait(10)

    listener = listeners(slow_store)
    peer = Peer(listener.port)
    stopper = threading.Thread(target=listener.stop, kwargs={"grace": 0.2})
    try:
        peer.associate(associate_rq(CONTEXTS))
        cmd = c_store_rq(1, CT_IMAGE_STORAGE, new_uid())
        peer.send(p_data((1, 0x03, cmd), (1, 0x02, dataset_bytes(new_uid()))))
        assert entered.wait(10)
        stopper.start()
        wait_for(lambda: listener.inflight.draining)  # past the grace, waiting for the store
        release.set()
        rsp, _ = peer.read_response()
        assert rsp.Status == 0
        assert abort_reason(peer.read_pdu()) == (0, 0)
        stopper.join(10)
        assert not stopper.is_alive()
    finally:
        release.set()
        peer.close()


# --- which path serves what ------------------------------------------------------------------


def _find_handler(event: evt.Event) -> Iterator[tuple[int, Dataset | None]]:
    match = Dataset()
    match.QueryRetrieveLevel = "STUDY"
    match.StudyInstanceUID = "1.2.3"
    yield 0xFF00, match


def test_storage_plus_find_goes_to_pynetdicom_and_both_work(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An association proposing storage and C-FIND is pynetdicom's; C-STORE and C-FIND answer."""
    monkeypatch.setitem(_config.VALIDATORS, "UI", _config.VALIDATORS["UI"])
    recorder = Recorder()
    from pynetdicom.presentation import build_context

    listener = Listener(
        ListenerOptions(ae_title="TUI_PACS", bind_address="127.0.0.1", port=0),
        recorder,
        extra_handlers=[(evt.EVT_C_FIND, _find_handler)],
        extra_contexts=[build_context(StudyRootQueryRetrieveInformationModelFind)],
    )
    listener.start()
    try:
        ae = AE(ae_title="MIXED")
        ae.add_requested_context(CTImageStorage, EXPLICIT_LE)
        ae.add_requested_context(StudyRootQueryRetrieveInformationModelFind)
        assoc = ae.associate("127.0.0.1", listener.port, ae_title="TUI_PACS")
        assert assoc.is_established
        try:
            assert served_here(listener) == [False]
            ds = make_dataset(study_uid=new_uid(), series_uid=new_uid())
            assert assoc.send_c_store(ds).Status == 0
            query = Dataset()
            query.QueryRetrieveLevel = "STUDY"
            query.StudyInstanceUID = ""
            answers = list(assoc.send_c_find(query, StudyRootQueryRetrieveInformationModelFind))
            assert [int(status.Status) for status, _ in answers] == [0xFF00, 0x0000]
        finally:
            assoc.release()
        assert len(recorder.requests) == 1
    finally:
        listener.stop(grace=0.2)


def test_role_negotiation_goes_to_pynetdicom(listeners: Callable[..., Listener]) -> None:
    """A storage association that proposes SCP/SCU roles is pynetdicom's (nothing unusual here)."""
    listener = listeners()
    ae = AE(ae_title="ROLES")
    ae.add_requested_context(CTImageStorage)
    role = build_role(CTImageStorage, scu_role=True)
    assoc = ae.associate("127.0.0.1", listener.port, ae_title="TUI_PACS", ext_neg=[role])
    assert assoc.is_established
    try:
        assert served_here(listener) == [False]
    finally:
        assoc.release()


@pytest.mark.parametrize("fast", [True, False], ids=["store-acceptor", "switch-off"])
def test_pynetdicom_scu_stores_and_echoes(listeners: Callable[..., Listener], fast: bool) -> None:
    """pynetdicom's SCU stores and echoes through the acceptor, and through pynetdicom when off."""
    recorder = Recorder()
    listener = listeners(recorder, fast_storage=fast)
    ae = AE(ae_title="PYSCU")
    ae.add_requested_context(CTImageStorage, [EXPLICIT_LE, IMPLICIT_LE])
    ae.add_requested_context(VERIFICATION)
    assoc = ae.associate("127.0.0.1", listener.port, ae_title="TUI_PACS")
    assert assoc.is_established
    try:
        assert served_here(listener) == [fast]
        assert isinstance(listener.server.active_associations[0], StoreAssociation) == fast
        assert assoc.send_c_echo().Status == 0
        ds = make_dataset(study_uid=new_uid(), series_uid=new_uid())
        assert assoc.send_c_store(ds).Status == 0
    finally:
        assoc.release()
    [(request, received)] = recorder.requests
    assert request.sop_instance_uid == ds.SOPInstanceUID
    del ds.file_meta
    assert received == encode_dataset(ds)


def test_pynetdicom_association_keeps_a_blocking_socket(listeners: Callable[..., Listener]) -> None:
    """An association handed to pynetdicom after the peek survives a pause inside a PDU."""
    listener = listeners()
    peer = Peer(listener.port)
    try:
        contexts = [(1, STUDY_ROOT_FIND, [IMPLICIT_LE]), (3, VERIFICATION, [IMPLICIT_LE])]
        assert peer.associate(associate_rq(contexts)).type == 0x02
        assert served_here(listener) == [False]
        echo = p_data((3, 0x03, c_echo_rq(5)))
        peer.send(echo[:20])
        time.sleep(1.2)  # longer than the peek's 0.5 s socket timeout: what this test is about
        peer.send(echo[20:])
        rsp, _ = peer.read_response()
        assert (rsp.MessageIDBeingRespondedTo, rsp.Status) == (5, 0)
    finally:
        peer.close()


@pytest.mark.parametrize("sent", [b"", associate_rq(CONTEXTS)[:30]], ids=["nothing", "partial-rq"])
def test_no_complete_request_within_the_acse_timeout_is_closed(
    listeners: Callable[..., Listener], sent: bytes
) -> None:
    """A connection that never completes its A-ASSOCIATE-RQ is closed after the ACSE timeout."""
    listener = listeners()
    listener.ae.acse_timeout = 1
    peer = Peer(listener.port)
    try:
        peer.send(sent)
        started = time.monotonic()
        assert peer.closed_by_peer(timeout=8)
        assert time.monotonic() - started < 6
    finally:
        peer.close()
    wait_for(lambda: listener.active_associations == 0)


def test_stop_leaves_no_thread_behind_a_connection_without_request(
    listeners: Callable[..., Listener],
) -> None:
    """A connection that never sent its A-ASSOCIATE-RQ leaves no thread running after stop()."""
    listener = listeners()
    peer = Peer(listener.port)
    try:
        wait_for(lambda: listener.active_associations == 1)
        before = {t.ident for t in threading.enumerate()}
        listener.stop(grace=0.2)
        wait_for(lambda: not [t for t in threading.enumerate() if "AcceptorThread" in t.name])
        assert not [t for t in threading.enumerate() if t.ident not in before and t.is_alive()]
        assert peer.closed_by_peer()
    finally:
        peer.close()
