"""The Q/R SCU against a scripted pynetdicom SCP: cancels, C-GET storage, contexts, progress."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from pydicom.dataset import Dataset
from pydicom.uid import CTImageStorage, MRImageStorage
from pynetdicom import AE, evt
from pynetdicom.sop_class import (  # type: ignore[attr-defined]
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelGet,
)

from tests.interop.synth import make_ct, new_uid
from tui_pacs.errors import NetworkError, StoreError
from tui_pacs.model import RemoteNode
from tui_pacs.net import qr_scu
from tui_pacs.net import status as st
from tui_pacs.net.scp import StoreRequest


class FakeScp:
    """A pynetdicom SCP on a free loopback port running the handlers a test gives it."""

    def __init__(self, handlers: list[tuple[Any, Callable[..., Any]]], get: bool = False) -> None:
        ae = AE("FAKE")
        ae.add_supported_context(StudyRootQueryRetrieveInformationModelFind)
        ae.add_supported_context(StudyRootQueryRetrieveInformationModelGet)
        if get:
            for sop in (CTImageStorage, MRImageStorage):
                ae.add_supported_context(sop, scu_role=True, scp_role=True)
        self.server = ae.start_server(("127.0.0.1", 0), block=False, evt_handlers=handlers)
        self.node = RemoteNode("fake", "FAKE", "127.0.0.1", self.server.server_address[1])

    def close(self) -> None:
        self.server.shutdown()


@pytest.fixture
def scp() -> Iterator[Callable[..., FakeScp]]:
    """Factory of fake SCPs, all shut down at the end."""
    made: list[FakeScp] = []

    def make(handlers: list[tuple[Any, Callable[..., Any]]], get: bool = False) -> FakeScp:
        made.append(FakeScp(handlers, get))
        return made[-1]

    yield make
    for server in made:
        server.close()


def _query() -> Dataset:
    ds = Dataset()
    ds.QueryRetrieveLevel = "STUDY"
    ds.StudyInstanceUID = ""
    return ds


def test_find_yields_matches_then_ends(scp: Callable[..., FakeScp]) -> None:
    """Every pending identifier is yielded, in order; the final success ends the generator."""

    def on_find(event: evt.Event) -> Iterator[tuple[int, Dataset | None]]:
        for i in range(3):
            ds = Dataset()
            ds.QueryRetrieveLevel = "STUDY"
            ds.StudyInstanceUID = f"1.2.{i}"
            yield st.PENDING, ds

    fake = scp([(evt.EVT_C_FIND, on_find)])
    got = [str(r.StudyInstanceUID) for r in qr_scu.find("US", fake.node, _query())]
    assert got == ["1.2.0", "1.2.1", "1.2.2"]


def test_find_failure_status_raises(scp: Callable[..., FakeScp]) -> None:
    """A failure status from the peer becomes a NetworkError carrying the status."""

    def on_find(event: evt.Event) -> Iterator[tuple[int, Dataset | None]]:
        yield 0xA900, None

    fake = scp([(evt.EVT_C_FIND, on_find)])
    with pytest.raises(NetworkError) as info:
        list(qr_scu.find("US", fake.node, _query()))
    assert info.value.status == 0xA900


def test_should_stop_between_results_sends_c_cancel(scp: Callable[..., FakeScp]) -> None:
    """Stopping after a few results sends a C-CANCEL: the peer sees it and stops streaming."""
    seen_cancel = threading.Event()

    def on_find(event: evt.Event) -> Iterator[tuple[int, Dataset | None]]:
        # Stream until the cancel arrives (bounded by time, not by count: on a loaded machine
        # a fixed number of responses can all be sent before the client reads the fifth).
        deadline = time.monotonic() + 30
        i = 0
        while time.monotonic() < deadline:
            if event.is_cancelled:
                seen_cancel.set()
                yield st.CANCEL, None
                return
            ds = Dataset()
            ds.QueryRetrieveLevel = "STUDY"
            ds.StudyInstanceUID = f"1.2.{i}"
            i += 1
            yield st.PENDING, ds
        yield st.SUCCESS, None

    fake = scp([(evt.EVT_C_FIND, on_find)])
    got: list[Dataset] = []
    results = qr_scu.find("US", fake.node, _query(), should_stop=lambda: len(got) >= 5)
    for result in results:
        got.append(result)
    assert len(got) == 5
    assert seen_cancel.wait(10)


def test_cancel_reaches_a_silent_peer(scp: Callable[..., FakeScp]) -> None:
    """A peer busy before its first response still gets the C-CANCEL (sent by the watcher)."""
    seen_cancel = threading.Event()
    stop = threading.Event()

    def on_find(event: evt.Event) -> Iterator[tuple[int, Dataset | None]]:
        # The user stops once the peer is working on the query: pynetdicom drops a C-CANCEL
        # that arrives before it dispatched the request (a fixed timer could fire that early
        # on a loaded machine).
        stop.set()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if event.is_cancelled:  # true once: pynetdicom consumes the C-CANCEL
                seen_cancel.set()
                break
            time.sleep(0.01)  # a slow database, polling for the cancel as real SCPs do
        yield st.CANCEL, None

    fake = scp([(evt.EVT_C_FIND, on_find)])
    started = time.monotonic()
    assert list(qr_scu.find("US", fake.node, _query(), should_stop=stop.is_set)) == []
    assert seen_cancel.is_set()
    assert time.monotonic() - started < 10


def test_get_stores_through_the_callable_and_reports_failures(
    scp: Callable[..., FakeScp],
) -> None:
    """C-GET hands each instance to ``store``; one it refuses is failed and listed by UID."""
    study, series = new_uid(), new_uid()
    datasets = [make_ct(study, series, new_uid(), 8, 8, instance_number=i) for i in (1, 2, 3)]
    refused = str(datasets[1].SOPInstanceUID)
    stored: list[StoreRequest] = []

    def store(request: StoreRequest) -> None:
        if request.sop_instance_uid == refused:
            raise StoreError("disk full", "Out of resources")
        stored.append(request)

    def on_get(event: evt.Event) -> Iterator[Any]:
        yield len(datasets)
        for ds in datasets:
            yield st.PENDING, ds

    fake = scp([(evt.EVT_C_GET, on_get)], get=True)
    identifier = Dataset()
    identifier.QueryRetrieveLevel = "STUDY"
    identifier.StudyInstanceUID = study
    progress = list(
        qr_scu.get("US", fake.node, identifier, store, sop_classes=[str(CTImageStorage)])
    )
    final = progress[-1]
    assert final.done and not any(p.done for p in progress[:-1])
    assert (final.completed, final.failed) == (2, 1)
    assert final.status == st.SUB_OPERATIONS_COMPLETE_WITH_FAILURES
    assert final.failed_uids == (refused,)
    assert [r.calling_ae_title for r in stored] == ["FAKE", "FAKE"]
    assert {r.sop_instance_uid for r in stored} == {str(d.SOPInstanceUID) for d in datasets} - {
        refused
    }
    assert progress[0].total == 3


def test_get_contexts_stay_within_128() -> None:
    """Known SOP classes get compressed contexts too; the broad default fits the limit."""
    broad = qr_scu.get_contexts(None)
    assert len(broad) <= qr_scu.MAX_CONTEXTS
    assert str(broad[0].abstract_syntax) == str(StudyRootQueryRetrieveInformationModelGet)
    two = qr_scu.get_contexts([str(CTImageStorage), str(MRImageStorage)])
    ct = [cx for cx in two if cx.abstract_syntax == CTImageStorage]
    assert len(ct) == 1 + len(qr_scu.COMPRESSED_PREFERENCE)
    many = qr_scu.get_contexts([f"1.2.840.10008.5.1.4.1.1.{i}" for i in range(1, 300)])
    assert len(many) == qr_scu.MAX_CONTEXTS


def test_no_association_is_a_network_error() -> None:
    """Nobody listening: a NetworkError naming the address, not a hang."""
    from tests.peers import free_port

    node = RemoteNode("none", "NONE", "127.0.0.1", free_port())
    with pytest.raises(NetworkError, match="127.0.0.1"):
        list(qr_scu.find("US", node, _query(), timeout=5))
