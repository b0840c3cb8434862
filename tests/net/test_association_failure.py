"""An association we ask for that fails says why and what to check (nobody, refused, no service)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pydicom.dataset import Dataset
from pynetdicom import AE
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]

from tests.interop.synth import make_ct, new_uid
from tests.peers import free_port
from tui_pacs.errors import NetworkError
from tui_pacs.model import RemoteNode
from tui_pacs.net import qr_scu, scu

ECHO_ONLY = "ECHO_ONLY"


@pytest.fixture
def echo_only() -> Iterator[int]:
    """A pynetdicom peer on loopback that offers only Verification, for the AE ECHO_ONLY."""
    ae = AE(ae_title=ECHO_ONLY)
    ae.require_called_aet = True
    ae.add_supported_context(Verification)
    port = free_port()
    server = ae.start_server(("127.0.0.1", port), block=False)
    try:
        yield port
    finally:
        server.shutdown()


def query(node: RemoteNode) -> None:
    """A study C-FIND on ``node``, read to the end."""
    identifier = Dataset()
    identifier.QueryRetrieveLevel = "STUDY"
    identifier.StudyInstanceUID = ""
    list(qr_scu.find("ME", node, identifier, timeout=5))


def test_nothing_listening_says_to_check_the_node_and_address() -> None:
    """Nobody on the port: the message asks whether the node runs and the address is right."""
    node = RemoteNode("gone", "GONE", "127.0.0.1", free_port())
    with pytest.raises(NetworkError) as caught:
        query(node)
    message = str(caught.value)
    assert f"GONE@127.0.0.1:{node.port} could not be established" in message
    assert "is the node running, and are its host and port right?" in message


def test_no_accepted_service_names_what_was_asked(echo_only: int) -> None:
    """A peer that takes none of the proposed contexts: the message names the service asked."""
    node = RemoteNode("echo", ECHO_ONLY, "127.0.0.1", echo_only)
    with pytest.raises(NetworkError) as caught:
        query(node)
    message = str(caught.value)
    assert "accepted none of the services asked for" in message
    assert "Study Root Query/Retrieve Information Model - FIND" in message


def test_rejected_association_asks_about_ae_titles(echo_only: int, tmp_path: Path) -> None:
    """A peer that rejects the called AE title: the message asks about both AE titles (send)."""
    node = RemoteNode("echo", "WRONG_TITLE", "127.0.0.1", echo_only)
    dcm = tmp_path / "ct.dcm"
    make_ct(new_uid(), new_uid(), new_uid()).save_as(dcm, enforce_file_format=True)
    with pytest.raises(NetworkError) as caught:
        list(scu.send_files("ME", node, [dcm], timeout=5))
    message = str(caught.value)
    assert "was rejected (does the node accept our AE title ME" in message
    assert "WRONG_TITLE its own?" in message
