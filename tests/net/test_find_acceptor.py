"""C-FIND served by the store acceptor (net/store_acceptor.py) on raw PDUs, beside pynetdicom.

Each test runs against both receivers of the same listener code: ``fast`` (the acceptor, the
default for plain C-FIND associations) and pynetdicom (``fast_storage=False``), which is the
reference for what goes on the wire. The ``find`` behind them is a stand-in whose matches can be
held at a gate, so what arrives between two responses is placed exactly.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from io import BytesIO

import pytest
from pydicom.dataset import Dataset
from pydicom.filereader import read_dataset
from pynetdicom import _config

from tests.net.dul_wire import (
    A_ABORT,
    A_RELEASE_RQ,
    EXPLICIT_LE,
    IMPLICIT_LE,
    STUDY_ROOT_FIND,
    Peer,
    accepted_contexts,
    associate_rq,
    c_cancel_rq,
    c_echo_rq,
    c_find_rq,
    p_data,
)
from tests.net.raw_store import encode_dataset
from tests.net.test_store_acceptor import served_here, wait_for
from tui_pacs.errors import IdentifierMismatchError, QueryError
from tui_pacs.model import DimseService
from tui_pacs.net import status as st
from tui_pacs.net.find_scp import FindRequest, find_contexts, find_handlers
from tui_pacs.net.scp import Listener, ListenerOptions, StoreRequest

FIND_CONTEXTS = [(1, STUDY_ROOT_FIND, [EXPLICIT_LE, IMPLICIT_LE])]
PATIENT_NAME = 0x00100010


@dataclass
class Matches:
    """What the stand-in ``find`` returns: ``count`` study matches, held before ``gate_at``."""

    count: int
    gate: threading.Event | None = None
    gate_at: int = 2
    warning: bool = False
    limit: int = 0
    truncated: bool = False
    closed: threading.Event = field(default_factory=threading.Event)

    def __iter__(self) -> Iterator[Dataset]:
        for n in range(self.count):
            if self.gate is not None and n == self.gate_at:
                assert self.gate.wait(10), "the test never opened the gate"
            match = Dataset()
            match.QueryRetrieveLevel = "STUDY"
            match.StudyInstanceUID = f"1.2.826.0.1.3680043.8.498.{n + 1}"
            yield match

    def close(self) -> None:
        self.closed.set()


@dataclass
class FakeFind:
    """A ``find`` callable: records each request and answers ``result`` (or raises it)."""

    result: Matches | Exception
    requests: list[FindRequest] = field(default_factory=list)

    def __call__(self, request: FindRequest) -> Matches:
        self.requests.append(request)
        _ = request.identifier.QueryRetrieveLevel  # decoded as the real query service would
        if isinstance(self.result, Exception):
            raise self.result
        return self.result


@pytest.fixture(params=[True, False], ids=["acceptor", "pynetdicom"])
def fast(request: pytest.FixtureRequest) -> bool:
    return bool(request.param)


@pytest.fixture
def find_listener(
    monkeypatch: pytest.MonkeyPatch, fast: bool
) -> Iterator[Callable[..., Listener]]:
    """Start a listener serving C-FIND with a stand-in ``find``; stopped afterwards."""
    monkeypatch.setitem(_config.VALIDATORS, "UI", _config.VALIDATORS["UI"])
    started: list[Listener] = []

    def start(
        find: FakeFind, authorize: Callable[[str, DimseService], bool] = lambda *_: True
    ) -> Listener:
        def store(request: StoreRequest) -> None:
            raise AssertionError("nothing is stored here")

        listener = Listener(
            ListenerOptions(
                ae_title="TUI_PACS", bind_address="127.0.0.1", port=0, fast_storage=fast
            ),
            store,
            extra_handlers=find_handlers(find, authorize=authorize),
            extra_contexts=find_contexts(),
            authorize=authorize,
        )
        listener.start()
        started.append(listener)
        return listener

    yield start
    for listener in started:
        listener.stop(grace=0.2)


def query(implicit: bool = False, **keys: str) -> bytes:
    ds = Dataset()
    ds.QueryRetrieveLevel = "STUDY"
    ds.StudyInstanceUID = ""
    for keyword, value in keys.items():
        setattr(ds, keyword, value)
    return encode_dataset(ds, implicit_vr=implicit)


def open_find(listener: Listener, max_length: int = 16384) -> Peer:
    peer = Peer(listener.port)
    ac = peer.associate(associate_rq(FIND_CONTEXTS, calling="FINDER", max_length=max_length))
    assert ac.type == 0x02
    assert accepted_contexts(ac)[1] == (0, EXPLICIT_LE)
    return peer


def read_until_final(peer: Peer) -> tuple[list[Dataset], Dataset]:
    """Pending identifiers, then the final response's command set."""
    matches = []
    while True:
        cmd, data = peer.read_message()
        assert cmd.CommandField == 0x8020
        if cmd.Status not in (st.PENDING, st.PENDING_WARNING):
            assert data is None
            return matches, cmd
        assert data is not None
        matches.append(read_dataset(BytesIO(data), False, True))


def test_matches_then_success_on_the_expected_receiver(
    find_listener: Callable[..., Listener], fast: bool
) -> None:
    """Every match comes as Pending with its identifier, then Success; the caller's identifier
    reached ``find`` decoded, with the negotiated encoding."""
    fake = FakeFind(Matches(5))
    listener = find_listener(fake)
    peer = open_find(listener)
    try:
        assert served_here(listener) == [fast]
        peer.send(p_data((1, 0x03, c_find_rq(7)), (1, 0x02, query(PatientName="DOE^*"))))
        matches, final = read_until_final(peer)
        assert (final.Status, final.MessageIDBeingRespondedTo) == (st.SUCCESS, 7)
        assert final.AffectedSOPClassUID == STUDY_ROOT_FIND
        assert [m.StudyInstanceUID.rsplit(".", 1)[1] for m in matches] == ["1", "2", "3", "4", "5"]
        (request,) = fake.requests
        assert str(request.identifier.PatientName) == "DOE^*"
        assert (request.calling_ae_title, request.implicit_vr) == ("FINDER", False)
        assert fake.result.closed.is_set()  # type: ignore[union-attr]
        peer.send(A_RELEASE_RQ)
        assert peer.read_pdu().type == 0x06
    finally:
        peer.close()


def test_a_tiny_peer_max_pdu_fragments_every_response(
    find_listener: Callable[..., Listener],
) -> None:
    """With the peer's maximum PDU at 64 bytes, commands and identifiers come in fragments
    that each fit, and still decode to the same matches."""
    listener = find_listener(FakeFind(Matches(3)))
    peer = open_find(listener, max_length=64)
    try:
        peer.send(p_data((1, 0x03, c_find_rq(1)), (1, 0x02, query())))
        sizes = []
        real_read = peer.read_pdu

        def read_pdu():  # type: ignore[no-untyped-def]
            got = real_read()
            sizes.append(len(got.body))
            return got

        peer.read_pdu = read_pdu  # type: ignore[method-assign]
        matches, final = read_until_final(peer)
        assert final.Status == st.SUCCESS and len(matches) == 3
        assert max(sizes) <= 64 and len(sizes) > 8
    finally:
        peer.close()


def test_cancel_between_matches_ends_with_cancel(
    find_listener: Callable[..., Listener], fast: bool
) -> None:
    """A C-CANCEL sent after two responses: at most the match in hand goes out (the check before
    it may already see the cancel), then Cancel (0xFE00); the matches are closed and the
    association goes on (a second C-FIND works).

    The acceptor reads the socket at its check; pynetdicom's reactor reads it on its own, so
    there the gate opens once the reactor has registered the cancel, or the stream has already
    ended on it (until then up to ``MAX_QUEUED_RESPONSES`` more may go out: see
    ``find_scp._pace``).
    """
    gate = threading.Event()
    first = Matches(10_000, gate=gate)
    fake = FakeFind(first)
    listener = find_listener(fake)
    peer = open_find(listener)
    try:
        peer.send(p_data((1, 0x03, c_find_rq(3)), (1, 0x02, query())))
        for _ in range(2):
            cmd, data = peer.read_message()
            assert cmd.Status == st.PENDING and data
        peer.send(p_data((1, 0x03, c_cancel_rq(3))))
        if not fast:  # registered by the reactor, or already seen (the stream then ended)
            wait_for(
                lambda: first.closed.is_set()
                or any(a.dimse.cancel_req for a in listener.server.active_associations)
            )
        gate.set()
        matches, final = read_until_final(peer)
        assert len(matches) <= 1
        assert (final.Status, final.MessageIDBeingRespondedTo) == (st.CANCEL, 3)
        assert first.closed.wait(5)

        fake.result = Matches(2)
        peer.send(p_data((1, 0x03, c_find_rq(4)), (1, 0x02, query())))
        matches, final = read_until_final(peer)
        assert (len(matches), final.Status) == (2, st.SUCCESS)
    finally:
        peer.close()


def test_abort_during_the_stream_ends_it(find_listener: Callable[..., Listener]) -> None:
    """An A-ABORT between matches: the association ends at once and the matches are closed."""
    gate = threading.Event()
    matches = Matches(10_000, gate=gate)
    listener = find_listener(FakeFind(matches))
    peer = open_find(listener)
    try:
        peer.send(p_data((1, 0x03, c_find_rq(1)), (1, 0x02, query())))
        peer.read_message()
        peer.send(A_ABORT)
        gate.set()
        assert matches.closed.wait(10)
        wait_for(lambda: listener.active_associations == 0)
    finally:
        peer.close()


def test_release_during_the_stream_is_answered_after_it(
    find_listener: Callable[..., Listener], fast: bool
) -> None:
    """An A-RELEASE-RQ sent while matches are still coming (PS3.7 forbids it; a peer may still
    do it): the acceptor completes the C-FIND, then answers the release."""
    if not fast:
        pytest.skip("pynetdicom cuts the stream short instead; only the acceptor's rule is tested")
    gate = threading.Event()
    listener = find_listener(FakeFind(Matches(5, gate=gate)))
    peer = open_find(listener)
    try:
        peer.send(p_data((1, 0x03, c_find_rq(1)), (1, 0x02, query())))
        peer.read_message()
        peer.send(A_RELEASE_RQ)
        gate.set()
        matches, final = read_until_final(peer)
        assert (len(matches), final.Status) == (4, st.SUCCESS)
        assert peer.read_pdu().type == 0x06
    finally:
        peer.close()


def test_cancel_of_another_message_is_ignored(find_listener: Callable[..., Listener]) -> None:
    """A C-CANCEL naming another Message ID does not stop the C-FIND running."""
    gate = threading.Event()
    listener = find_listener(FakeFind(Matches(4, gate=gate)))
    peer = open_find(listener)
    try:
        peer.send(p_data((1, 0x03, c_find_rq(5)), (1, 0x02, query())))
        peer.read_message()
        peer.read_message()
        peer.send(p_data((1, 0x03, c_cancel_rq(99))))
        gate.set()
        matches, final = read_until_final(peer)
        assert (len(matches), final.Status) == (2, st.SUCCESS)
    finally:
        peer.close()


@pytest.mark.parametrize(
    ("error", "status", "offending"),
    [
        pytest.param(
            QueryError("bad wildcard in PatientName", (PATIENT_NAME,)),
            st.UNABLE_TO_PROCESS,
            PATIENT_NAME,
            id="unable-to-process",
        ),
        pytest.param(
            IdentifierMismatchError("no Query/Retrieve Level", (0x00080052,)),
            st.IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS,
            0x00080052,
            id="identifier-mismatch",
        ),
    ],
)
def test_failures_carry_error_comment_and_offending_element(
    find_listener: Callable[..., Listener], error: QueryError, status: int, offending: int
) -> None:
    """A failed query is one response with its status, Error Comment and Offending Element."""
    listener = find_listener(FakeFind(error))
    peer = open_find(listener)
    try:
        peer.send(p_data((1, 0x03, c_find_rq(2)), (1, 0x02, query())))
        matches, final = read_until_final(peer)
        assert matches == []
        assert final.Status == status
        assert final.ErrorComment == str(error)
        assert final.OffendingElement == offending
    finally:
        peer.close()


def test_an_identifier_that_cannot_be_decoded_is_unable_to_process(
    find_listener: Callable[..., Listener],
) -> None:
    """Garbage in place of an identifier: 0xC000 with a comment, and the association goes on."""
    fake = FakeFind(Matches(1))
    listener = find_listener(fake)
    peer = open_find(listener)
    try:
        garbage = b"\x08\x00\x52\x00UX\xff\xff" + b"\x01" * 7
        peer.send(p_data((1, 0x03, c_find_rq(1)), (1, 0x02, garbage)))
        _, final = read_until_final(peer)
        assert final.Status == st.UNABLE_TO_PROCESS
        assert final.ErrorComment
        peer.send(p_data((1, 0x03, c_find_rq(2)), (1, 0x02, query())))
        matches, final = read_until_final(peer)
        assert (len(matches), final.Status) == (1, st.SUCCESS)
    finally:
        peer.close()


def test_a_caller_the_registry_refuses_gets_0124(find_listener: Callable[..., Listener]) -> None:
    """The node registry's permission check applies: 0x0124 and ``find`` is never called."""
    fake = FakeFind(Matches(3))
    listener = find_listener(fake, authorize=lambda ae, service: service != DimseService.FIND)
    peer = open_find(listener)
    try:
        peer.send(p_data((1, 0x03, c_find_rq(1)), (1, 0x02, query())))
        matches, final = read_until_final(peer)
        assert (matches, final.Status) == ([], st.REFUSED_NOT_AUTHORIZED)
        assert fake.requests == []
    finally:
        peer.close()


def test_another_request_during_the_stream_aborts(
    find_listener: Callable[..., Listener], fast: bool
) -> None:
    """The acceptor negotiates no asynchronous operations: a C-ECHO-RQ while a C-FIND runs is
    a protocol error (A-ABORT, unexpected PDU parameter) and the matches are closed."""
    if not fast:
        pytest.skip("pynetdicom queues the request instead; only the acceptor's rule is tested")
    gate = threading.Event()
    matches = Matches(100, gate=gate)
    listener = find_listener(FakeFind(matches))
    peer = open_find(listener)
    try:
        peer.send(p_data((1, 0x03, c_find_rq(1)), (1, 0x02, query())))
        peer.read_message()
        peer.send(p_data((1, 0x03, c_echo_rq(2))))
        gate.set()
        while True:
            got = peer.read_pdu()
            if got.type != 0x04:
                break
        assert got.type == 0x07
        assert (got.body[2], got.body[3]) == (2, 5)
        assert matches.closed.wait(5)
    finally:
        peer.close()
