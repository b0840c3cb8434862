"""The DICOM listener: an AE accepting C-ECHO and C-STORE, with handlers as plain functions.

Handlers take their dependencies as extra arguments (the pynetdicom qrscp way). The C-STORE
handler is given a ``store`` callable by the services layer; it hands over the encoded data set
exactly as received and maps the domain error it may raise to the right DIMSE status. The success
status is returned only after ``store`` returns, i.e. after the file is durable and indexed.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import socketserver
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from pydicom.dataset import Dataset
from pynetdicom import AE, _config, evt
from pynetdicom.association import Association
from pynetdicom.dimse_primitives import C_STORE
from pynetdicom.transport import ThreadedAssociationServer

from tui_pacs.errors import (
    DatasetError,
    DatasetMismatchError,
    DuplicateInstanceError,
    InvalidUIDError,
    StoreError,
)
from tui_pacs.model import DimseService
from tui_pacs.net import status as st
from tui_pacs.net.contexts import (
    STORAGE_SOP_CLASSES,
    cheap_to_copy,
    storage_scp_contexts,
    verification_context,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class StoreRequest:
    """One C-STORE request as received, before anything is decoded."""

    sop_class_uid: str
    sop_instance_uid: str
    transfer_syntax_uid: str
    #: The encoded data set (no File Meta Information), in ``transfer_syntax_uid``.
    dataset: memoryview
    calling_ae_title: str
    peer_address: str


StoreCallable = Callable[[StoreRequest], Any]
#: ``authorize(calling_ae_title, service)``: may this AE use this service? (the node registry)
AuthorizeCallable = Callable[[str, DimseService], bool]


def allow_all(calling_ae_title: str, service: DimseService) -> bool:
    """The permission check of a listener without a node registry: everyone may do everything."""
    return True


def refused(authorize: AuthorizeCallable, event: evt.Event, service: DimseService) -> bool:
    """True (and logged) when the calling AE may not use ``service``: answer 0x0124."""
    requestor = event.assoc.requestor
    return refused_caller(authorize, requestor.ae_title, requestor.address, service)


def refuse_n_request(
    event: evt.Event,
    sop_class_uid: str,
    expected: str,
    operation: str,
    service: DimseService,
    authorize: AuthorizeCallable,
) -> int | Dataset | None:
    """The response to an N-service request for another SOP class (0x0118) or from an AE the
    node registry does not allow (0x0124); None when the request may go on.
    """
    if sop_class_uid != expected:
        return st.failure(
            st.NO_SUCH_SOP_CLASS, f"{operation} of {sop_class_uid} is not supported"
        )
    if refused(authorize, event, service):
        return st.REFUSED_NOT_AUTHORIZED
    return None


def refused_caller(
    authorize: AuthorizeCallable, calling: str, address: str, service: DimseService
) -> bool:
    """:func:`refused` for a caller known by AE title and address (no pynetdicom event)."""
    if authorize(calling, service):
        return False
    log.warning(
        "refused %s from %s (%s): not allowed by the node registry",
        service.value.upper(), calling, address,
    )
    return True


class ListenerServer(ThreadedAssociationServer):
    """pynetdicom's threaded server with TCP_NODELAY on every accepted socket.

    Small PDUs (C-STORE responses, A-RELEASE) must not wait for Nagle's algorithm. With
    ``reuse_port`` several node processes can share one port, the kernel spreading callers.
    No forced full garbage collection every 60 associations (see :meth:`service_actions`).
    """

    reuse_port = False

    def server_bind(self) -> None:
        if self.reuse_port and hasattr(socket, "SO_REUSEPORT") and self.socket is not None:
            self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        super().server_bind()

    def shutdown(self) -> None:
        # pynetdicom's shutdown also unregisters from AE.start_server's list, which a server
        # made with AE.make_server was never put on.
        socketserver.BaseServer.shutdown(self)
        self.server_close()

    def process_request(self, request: Any, client_address: Any) -> None:
        """Set the association up in the listener's thread; it runs in its own thread.

        ``ThreadingMixIn`` starts a thread per connection only to build the association object
        and start *its* thread, then ends: a second thread start (and, on a loaded machine, a
        second wait to be scheduled) before a word is read. Building it takes ~0.2 ms.
        """
        self.process_request_thread(request, client_address)

    def service_actions(self) -> None:
        """Nothing: pynetdicom's runs ``gc.collect()`` every 60 loops of ``serve_forever``.

        A full collection of the node's heap (pydicom's dictionaries, the index's objects)
        holds the GIL for tens of milliseconds: every association in flight stalls, once a
        minute when idle and every 60 associations under load, and it was the listener's
        largest CPU item in a profile of short C-FIND associations. Python's own collector
        frees finished associations' reference cycles anyway.
        """

    def get_request(self) -> tuple[socket.socket, tuple[str, int]]:
        client, address = super().get_request()
        with contextlib.suppress(OSError):  # not TCP (tests may use odd sockets); harmless
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return client, address


class InFlight:
    """Counts C-STORE operations being handled so shutdown can wait for them."""

    def __init__(self) -> None:
        self._count = 0
        self._cond = threading.Condition()
        self.draining = False

    def __enter__(self) -> InFlight:
        with self._cond:
            self._count += 1
        return self

    def __exit__(self, *exc: object) -> None:
        with self._cond:
            self._count -= 1
            self._cond.notify_all()

    def wait_idle(self, timeout: float) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: self._count == 0, timeout)


def handle_echo(event: evt.Event, authorize: AuthorizeCallable = allow_all) -> int:
    """C-ECHO: success (PS3.4 A.4), or 0x0124 when the calling AE may not echo."""
    requestor = event.assoc.requestor
    return echo_status(authorize, requestor.ae_title, requestor.address)


def echo_status(authorize: AuthorizeCallable, calling: str, address: str) -> int:
    """The C-ECHO status for this caller (shared by pynetdicom's path and the store acceptor)."""
    if refused_caller(authorize, calling, address, DimseService.ECHO):
        return st.REFUSED_NOT_AUTHORIZED
    return st.SUCCESS


def handle_store(
    event: evt.Event,
    store: StoreCallable,
    inflight: InFlight,
    authorize: AuthorizeCallable = allow_all,
) -> int:
    """C-STORE: hand the raw data set to ``store``; map what happens to a status (PS3.4 B.2.3)."""
    request = cast(C_STORE, event.request)
    requestor = event.assoc.requestor

    def dataset() -> memoryview | None:
        data = request.DataSet
        # getvalue() hands over the received bytes without copying; getbuffer() would
        # export the BytesIO, and an export caught in a reference cycle (an exception's
        # traceback) crashes CPython 3.12's garbage collector (bytesiobuf_releasebuffer).
        return None if data is None else memoryview(data.getvalue())

    return receive_store(
        store,
        inflight,
        authorize,
        calling=requestor.ae_title,
        address=requestor.address,
        port=requestor.port,
        sop_class_uid=str(request.AffectedSOPClassUID or ""),
        sop_instance_uid=str(request.AffectedSOPInstanceUID or ""),
        transfer_syntax_uid=str(event.context.transfer_syntax),
        dataset=dataset,
    )


def receive_store(
    store: StoreCallable,
    inflight: InFlight,
    authorize: AuthorizeCallable,
    *,
    calling: str,
    address: str,
    port: int,
    sop_class_uid: str,
    sop_instance_uid: str,
    transfer_syntax_uid: str,
    dataset: Callable[[], memoryview | None],
) -> int:
    """One received C-STORE request to its status: permission, shutdown, then ``store``.

    Shared by pynetdicom's path (:func:`handle_store`) and the store acceptor. ``dataset``
    gives the encoded data set as received (None: the request carried none).
    """
    if refused_caller(authorize, calling, address, DimseService.STORE):
        return st.REFUSED_NOT_AUTHORIZED
    if inflight.draining:
        log.warning("refusing C-STORE from %s during shutdown", calling)
        return st.REFUSED_OUT_OF_RESOURCES
    with inflight:
        data = dataset()
        if data is None:
            return st.ERROR_CANNOT_UNDERSTAND
        req = StoreRequest(
            sop_class_uid=sop_class_uid,
            sop_instance_uid=sop_instance_uid,
            transfer_syntax_uid=transfer_syntax_uid,
            dataset=data,
            calling_ae_title=calling,
            peer_address=f"{address}:{port}",
        )
        return store_status(store, req)


def store_status(store: StoreCallable, req: StoreRequest) -> int:
    """Call ``store`` and map what happens to a C-STORE status (PS3.4 B.2.3).

    Shared by the listener and by the C-GET SCU, which receives C-STOREs on its own association.
    """
    calling = req.calling_ae_title
    try:
        store(req)
    except DuplicateInstanceError as exc:
        log.info("C-STORE from %s refused: %s", calling, exc)
        return st.DUPLICATE_SOP_INSTANCE
    except (DatasetMismatchError, InvalidUIDError) as exc:
        log.warning("C-STORE from %s: %s", calling, exc)
        return st.ERROR_DATA_SET_DOES_NOT_MATCH_SOP_CLASS
    except DatasetError as exc:
        log.warning("C-STORE from %s: %s", calling, exc)
        return st.ERROR_CANNOT_UNDERSTAND
    except StoreError as exc:
        log.error("C-STORE from %s failed: %s", calling, exc)
        return st.REFUSED_OUT_OF_RESOURCES
    except Exception:
        log.exception("C-STORE from %s: unexpected failure", calling)
        return st.PROCESSING_FAILURE
    return st.SUCCESS


def _any_uid(value: object) -> tuple[bool, str]:
    return isinstance(value, str), "must be a str"


def let_dimse_pass_any_uid() -> None:
    """Have pynetdicom decode every UID in a DIMSE command, valid or not (process-wide setting).

    By default a request whose Affected SOP Instance UID is longer than 64 characters fails
    pynetdicom's decoding and the association is aborted with no status. The handlers validate
    every UID they use (``validate_uid``), so C-STORE answers such a request with 0xA900.
    """
    _config.VALIDATORS["UI"] = _any_uid


def quiet_pynetdicom_events(debug: bool) -> None:
    """Bind pynetdicom's standard event logging handlers only when debugging (process-wide).

    With ``LOG_HANDLER_LEVEL = "standard"`` every association runs a handler for each PDU and
    DIMSE message sent or received, formatting DEBUG lines (and copying each received data set
    once) even when DEBUG is off: about a tenth of the CPU spent per C-STORE received and per
    C-FIND match sent. Its documented configuration switches them off; associations opened
    afterwards follow it.
    """
    _config.LOG_HANDLER_LEVEL = "standard" if debug else "none"


def _hand_back_stolen_responses() -> None:
    """Mend a race in pynetdicom's reactor pause: a response must reach the call waiting for it.

    A ``send_*`` call pauses the association's reactor (``_reactor_checkpoint.clear()``) and goes
    on once ``_is_paused`` is true; but that flag is still true just after the reactor passed its
    checkpoint, so the reactor may run one more turn, take the response off the DIMSE queue and
    drop it as "Received unexpected C-STORE service message"; the call then waits out the DIMSE
    timeout and the association is aborted (a C-MOVE sub-operation failed that way under load).
    A message that is no request, taken while a call is waiting (the checkpoint is clear), is put
    back on the queue for that call instead. Process-wide, applied on import, idempotent.
    """
    serve = Association._serve_request
    if getattr(serve, "hands_back_responses", False):
        return

    def serve_request(self: Association, msg: Any, context_id: int) -> None:
        if not msg.is_valid_request and not self._reactor_checkpoint.is_set():
            log.debug("handed a %s back to the call waiting for it", msg.msg_type)
            self.dimse.msg_queue.put((context_id, msg))
            return
        serve(self, msg, context_id)

    serve_request.hands_back_responses = True  # type: ignore[attr-defined]
    Association._serve_request = serve_request  # type: ignore[method-assign]


_hand_back_stolen_responses()


def set_tcp_nodelay(event: evt.Event) -> None:
    """EVT_CONN_OPEN handler of an association we request: TCP_NODELAY on its socket.

    pynetdicom writes each PDU with its own send; with Nagle's algorithm on, the small tail of
    a data set waits for the peer's delayed acknowledgement, which cut the C-STORE
    sub-operations of a C-MOVE to DCMTK storescp from about 150 to 90 instances/s.
    """
    sock = getattr(getattr(event.assoc.dul, "socket", None), "socket", None)
    if sock is None:
        return
    with contextlib.suppress(OSError):  # not TCP; harmless
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


#: Bind this to every association we request (``evt_handlers`` of ``AE.associate``).
NODELAY_HANDLER = (evt.EVT_CONN_OPEN, set_tcp_nodelay)


@dataclass
class ListenerOptions:
    ae_title: str
    bind_address: str
    port: int
    allowed_calling_ae_titles: tuple[str, ...] = ()
    max_pdu_size: int = 0
    network_timeout: int = 60
    reuse_port: bool = False
    #: Serve storage, echo and plain C-FIND associations with :mod:`tui_pacs.net.store_acceptor`.
    fast_storage: bool = True


class Listener:
    """The node's DICOM listener.

    Args:
        options: Address, AE title and association limits.
        store: Called with each :class:`StoreRequest`; returns once the instance is durable.
        extra_handlers: More ``(event, handler[, args])`` bindings (C-FIND, C-MOVE, C-GET ...),
            built by their own modules and composed by the services layer.
        extra_contexts: Presentation contexts those handlers need.
        authorize: The per-node permission check of C-ECHO and C-STORE (the extra handlers
            are given it by the services layer too); everyone may do everything by default.
    """

    def __init__(
        self,
        options: ListenerOptions,
        store: StoreCallable,
        extra_handlers: list[tuple] | None = None,
        extra_contexts: list | None = None,
        authorize: AuthorizeCallable = allow_all,
    ) -> None:
        self.options = options
        self.inflight = InFlight()
        let_dimse_pass_any_uid()
        ae = AE(ae_title=options.ae_title)
        ae.maximum_pdu_size = options.max_pdu_size
        ae.network_timeout = options.network_timeout
        ae.acse_timeout = 30
        ae.dimse_timeout = max(30, options.network_timeout)
        ae.maximum_associations = 64
        if options.allowed_calling_ae_titles:
            ae.require_calling_aet = list(options.allowed_calling_ae_titles)
        contexts = cheap_to_copy(
            [verification_context(), *storage_scp_contexts(), *(extra_contexts or [])]
        )
        self.ae = ae
        handlers = [
            (evt.EVT_C_ECHO, handle_echo, [authorize]),
            (evt.EVT_C_STORE, handle_store, [store, self.inflight, authorize]),
            (evt.EVT_ACCEPTED, _log_assoc, ["accepted"]),
            (evt.EVT_RELEASED, _log_assoc, ["released"]),
            (evt.EVT_ABORTED, _log_assoc, ["aborted"]),
            (evt.EVT_REJECTED, _log_assoc, ["rejected"]),
            *(extra_handlers or []),
        ]
        server_class = type("NodeServer", (ListenerServer,), {"reuse_port": options.reuse_port})
        extra: dict[str, Any] = {}
        if options.fast_storage:
            # Imported here: the acceptor module builds on this one's handlers.
            from tui_pacs.net.store_acceptor import StoreRequestHandler, StoreServices

            extra["request_handler"] = StoreRequestHandler
            services = StoreServices(
                store=store,
                inflight=self.inflight,
                authorize=authorize,
                abstract_syntaxes=frozenset(
                    [str(verification_context().abstract_syntax), *STORAGE_SOP_CLASSES]
                ),
            )
        self.server = ae.make_server(
            (options.bind_address, options.port),
            contexts=contexts,
            evt_handlers=handlers,
            server_class=server_class,
            **extra,
        )
        if options.fast_storage:
            self.server.store_services = services  # type: ignore[attr-defined]
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.2}, name="dicom-listener"
        )
        self._thread.daemon = True

    def start(self) -> None:
        self._thread.start()
        log.info(
            "listening as %s on %s:%d", self.options.ae_title, self.options.bind_address, self.port
        )

    @property
    def active_associations(self) -> int:
        return len(self.server.active_associations)

    def _established(self) -> list[Any]:
        return [a for a in self.server.active_associations if a.is_established]

    def stop(self, grace: float = 10.0) -> None:
        """Stop accepting, let associations finish for ``grace`` seconds, then close them.

        Stores in flight always finish and are acknowledged before their association is aborted.
        """
        self.server.shutdown()
        deadline = time.monotonic() + grace
        while self._established() and time.monotonic() < deadline:
            time.sleep(0.05)
        self.inflight.draining = True
        self.inflight.wait_idle(max(5.0, deadline - time.monotonic()))
        for assoc in self.server.active_associations:
            if assoc.is_established:
                assoc.abort()
            else:
                # A connection that never sent an A-ASSOCIATE-RQ (a port probe, a scanner) keeps
                # its thread waiting for the ACSE timeout, and its DUL thread (not a daemon)
                # would hold the process that long; nothing is in flight on it, so close its
                # transport (the DUL goes back to idle) and stop it now.
                if assoc.dul.socket is not None:
                    assoc.dul.socket.close()
                assoc.kill()
        for assoc in self.server.active_associations:
            if assoc.is_established:
                assoc.join(timeout=5)
        log.info("listener stopped")


def _log_assoc(event: evt.Event, what: str) -> None:
    requestor = event.assoc.requestor
    how = " (store acceptor)" if getattr(event.assoc, "fast", False) else ""
    log.info(
        "association %s: %s from %s:%s%s",
        what, requestor.ae_title, requestor.address, requestor.port, how,
    )
