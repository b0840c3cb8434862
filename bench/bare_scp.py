"""A bare pynetdicom C-STORE SCP that only writes (and fsyncs) what it receives: the floor.

No index, no checksum, no header parsing: what pynetdicom itself costs per instance. Used by the
benchmarks as the optional ``pynetdicom`` target.

    /work/venv/bin/python bench/bare_scp.py PORT FOLDER
"""

from __future__ import annotations

import os
import socket
import sys
import uuid
from pathlib import Path

from pydicom.uid import AllTransferSyntaxes
from pynetdicom import AE, AllStoragePresentationContexts, evt
from pynetdicom.transport import ThreadedAssociationServer


class _Server(ThreadedAssociationServer):
    def get_request(self) -> tuple[socket.socket, tuple[str, int]]:
        client, address = super().get_request()
        client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return client, address


def main() -> None:
    port, folder = int(sys.argv[1]), Path(sys.argv[2])
    folder.mkdir(parents=True, exist_ok=True)

    def handle_store(event: evt.Event) -> int:
        fd = os.open(folder / uuid.uuid4().hex, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            os.write(fd, event.request.DataSet.getvalue())
            os.fsync(fd)
        finally:
            os.close(fd)
        return 0x0000

    ae = AE("BARE")
    ae.maximum_pdu_size = 0
    for cx in AllStoragePresentationContexts:
        ae.add_supported_context(cx.abstract_syntax, AllTransferSyntaxes)
    server = ae.make_server(
        ("127.0.0.1", port), evt_handlers=[(evt.EVT_C_STORE, handle_store)], server_class=_Server
    )
    server.serve_forever()


if __name__ == "__main__":
    main()
