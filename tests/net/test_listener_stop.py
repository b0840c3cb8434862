"""The listener stops promptly whatever connections are open, and lets an association finish."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest
from pynetdicom import AE, _config
from pynetdicom.sop_class import Verification

from tui_pacs.net.scp import Listener, ListenerOptions, StoreRequest


@pytest.fixture
def listener(monkeypatch: pytest.MonkeyPatch) -> Iterator[Listener]:
    """An in-process listener on a free loopback port (pynetdicom settings restored after)."""
    monkeypatch.setitem(_config.VALIDATORS, "UI", _config.VALIDATORS["UI"])

    def store(request: StoreRequest) -> None:
        raise AssertionError("no C-STORE expected")

    lst = Listener(ListenerOptions(ae_title="STOP_TEST", bind_address="127.0.0.1", port=0), store)
    lst.start()
    yield lst
    lst.stop(grace=0.5)


def test_stop_does_not_wait_for_a_connection_that_never_associated(listener: Listener) -> None:
    """A TCP connection without an A-ASSOCIATE-RQ (a port probe) does not hold up stop()."""
    probe = socket.create_connection(("127.0.0.1", listener.port))
    try:
        deadline = time.monotonic() + 5
        while listener.active_associations == 0:
            assert time.monotonic() < deadline, "the probe never reached the listener"
            time.sleep(0.01)
        started = time.monotonic()
        listener.stop(grace=10)
        assert time.monotonic() - started < 2
    finally:
        probe.close()


def test_stop_lets_an_open_association_work_then_aborts_it(listener: Listener) -> None:
    """An established association keeps working during the grace period, then is aborted."""
    ae = AE(ae_title="SCU")
    ae.add_requested_context(Verification)
    assoc = ae.associate("127.0.0.1", listener.port, ae_title="STOP_TEST")
    assert assoc.is_established
    stopper = threading.Thread(target=listener.stop, kwargs={"grace": 1.5})
    started = time.monotonic()
    stopper.start()
    rsp = assoc.send_c_echo()
    assert rsp.Status == 0
    stopper.join(10)
    assert not stopper.is_alive()
    assert 1.4 < time.monotonic() - started < 8
    deadline = time.monotonic() + 5
    while assoc.is_established and time.monotonic() < deadline:
        time.sleep(0.01)
    assert assoc.is_aborted
