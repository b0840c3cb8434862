"""Associations we request run with TCP_NODELAY; pynetdicom's debug event logging stays unbound."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from pynetdicom import AE, _config, evt
from pynetdicom.association import Association
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]

from tui_pacs.model import ArchivedInstance, RemoteNode
from tui_pacs.net import retrieve_scp, scu
from tui_pacs.net.scp import NODELAY_HANDLER, quiet_pynetdicom_events, set_tcp_nodelay


@pytest.fixture
def echo_peer() -> Iterator[RemoteNode]:
    """A pynetdicom Verification SCP on loopback."""
    ae = AE(ae_title="PEER")
    ae.add_supported_context(Verification)
    # Port 0: the kernel picks a free port at bind time (no window for another process to take it).
    server = ae.start_server(("127.0.0.1", 0), block=False)
    try:
        yield RemoteNode("peer", "PEER", "127.0.0.1", server.server_address[1])
    finally:
        server.shutdown()


@pytest.fixture
def opened(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """TCP_NODELAY of each client socket right after ``AE.associate`` returns."""
    seen: list[int] = []
    original = AE.associate

    def associate(self: AE, *args: Any, **kwargs: Any) -> Association:
        assoc = original(self, *args, **kwargs)
        sock = assoc.dul.socket.socket  # type: ignore[union-attr]
        seen.append(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
        return assoc

    monkeypatch.setattr(AE, "associate", associate)
    return seen


def test_set_tcp_nodelay_sets_the_option_on_a_connected_socket() -> None:
    """The EVT_CONN_OPEN handler turns Nagle's algorithm off on the association's socket."""
    with (
        closing(socket.create_server(("127.0.0.1", 0))) as server,
        closing(socket.create_connection(server.getsockname())) as client,
    ):
        event = SimpleNamespace(
            assoc=SimpleNamespace(dul=SimpleNamespace(socket=SimpleNamespace(socket=client)))
        )
        assert client.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 0
        set_tcp_nodelay(event)  # type: ignore[arg-type]
        assert client.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0


def test_set_tcp_nodelay_ignores_an_association_without_socket() -> None:
    """No socket (already closed): nothing happens, nothing raises."""
    set_tcp_nodelay(SimpleNamespace(assoc=SimpleNamespace(dul=SimpleNamespace(socket=None))))  # type: ignore[arg-type]


def test_echo_runs_with_tcp_nodelay(echo_peer: RemoteNode, opened: list[int]) -> None:
    """C-ECHO as SCU: the real client socket has TCP_NODELAY set."""
    result = scu.echo("TEST_SCU", echo_peer)
    assert result.ok
    assert opened and all(opened)


def test_move_sub_associations_bind_nodelay() -> None:
    """The C-MOVE SCP asks pynetdicom for TCP_NODELAY on its sub-association, failures included."""
    node = RemoteNode("dest", "DEST", "127.0.0.1", 11112)
    item = ArchivedInstance(
        sop_class_uid="1.2.840.10008.5.1.4.1.1.2",
        sop_instance_uid="1.2.3.4",
        transfer_syntax_uid="1.2.840.10008.1.2.1",
        path=Path("/nonexistent.dcm"),
    )
    event = SimpleNamespace(
        assoc=SimpleNamespace(requestor=SimpleNamespace(ae_title="CALLER", address="127.0.0.1")),
        move_destination="DEST",
        identifier=None,
        request=SimpleNamespace(AffectedSOPClassUID=str(next(iter(retrieve_scp.MOVE_MODELS)))),
        is_cancelled=False,
    )
    for locate in (lambda ds, model: [item], lambda ds, model: 1 / 0):
        gen = retrieve_scp.handle_move(event, locate, lambda title: node)  # type: ignore[arg-type]
        host, port, kwargs = next(gen)
        assert (host, port) == ("127.0.0.1", 11112)
        assert NODELAY_HANDLER in kwargs["evt_handlers"]
        gen.close()


def test_pynetdicom_event_logging_bound_only_when_debugging(echo_peer: RemoteNode) -> None:
    """Associations opened after quiet_pynetdicom_events(False) carry no standard log handlers."""
    before = _config.LOG_HANDLER_LEVEL
    try:
        for debug in (False, True):
            quiet_pynetdicom_events(debug)
            ae = AE(ae_title="TEST_SCU")
            ae.add_requested_context(Verification)
            assoc = ae.associate("127.0.0.1", echo_peer.port, ae_title="PEER")
            try:
                assert assoc.is_established
                bound = assoc.get_handlers(evt.EVT_PDU_RECV)
                assert bool(bound) is debug
            finally:
                assoc.release()
    finally:
        _config.LOG_HANDLER_LEVEL = before
