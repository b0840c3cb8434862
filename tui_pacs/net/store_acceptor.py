"""The fast path: associations that only store, echo and query, served by one blocking thread.

pynetdicom runs two polling threads per association (its DUL reactor and its association
reactor, each waking every millisecond), reads PDUs in 4 KiB pieces and copies each data set
through PDV lists and a BytesIO: about 3 ms of CPU per 512x512 instance, more than everything
else the node does with it. What modalities and ``storescu`` open is far simpler: C-STOREs
(and a C-ECHO) on storage contexts. Such an association is served here by the thread that
pynetdicom would have used as its association reactor, with blocking reads straight into the
data set's buffer.

What stays pynetdicom's, so behaviour is identical:

- The association object itself (a :class:`pynetdicom.association.Association` subclass,
  named and attached like pynetdicom's): the listener's association count, the AE's limit on
  associations and :meth:`Listener.stop` see it like any other.
- Negotiation: the A-ASSOCIATE-RQ is decoded with pynetdicom's PDU classes and answered by
  pynetdicom's ACSE (calling AE check, association limit, presentation contexts and transfer
  syntaxes, maximum PDU, implementation UID and version), whose A-ASSOCIATE-AC/RJ primitives
  are encoded by pynetdicom's PDU classes. The accepted/rejected/released/aborted events fire
  through pynetdicom's event machinery, so the same handlers log them.
- Every association this module does not take: before anything is read, the A-ASSOCIATE-RQ is
  only peeked at (MSG_PEEK). Unless every proposed abstract syntax is Verification or a storage
  SOP class and no role, extended or user identity negotiation is proposed, the association
  runs pynetdicom's own reactor, exactly as without this module.

C-STORE and C-ECHO go to the same functions as pynetdicom's handlers (``receive_store``,
``echo_status`` in :mod:`tui_pacs.net.scp`): same permission check, shutdown refusal, durability
and status mapping. C-FIND (Query/Retrieve and Modality Worklist) is taken when the listener's
C-FIND handler is the node's own (:func:`tui_pacs.net.find_scp.handle_find`), and goes to the same
:func:`~tui_pacs.net.find_scp.find_responses`: each Pending response is encoded by hand and sent
before the next match is fetched (pynetdicom builds a DIMSE message, a Dataset and a queue entry
per match: two thirds of the CPU a match cost), and the socket is polled for a C-CANCEL between
matches.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import logging
import select
import socket
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from io import BytesIO
from typing import Any, Literal, cast

from pydicom.dataset import Dataset
from pydicom.uid import UID
from pynetdicom import evt
from pynetdicom.association import Association
from pynetdicom.dsutils import decode as decode_data_set
from pynetdicom.dsutils import encode as encode_data_set
from pynetdicom.pdu import (
    A_ABORT_RQ,
    A_ASSOCIATE_AC,
    A_ASSOCIATE_RJ,
    A_ASSOCIATE_RQ,
    A_RELEASE_RP,
    A_RELEASE_RQ,
)
from pynetdicom.pdu_primitives import (
    A_ABORT,
    A_ASSOCIATE,
    A_P_ABORT,
    A_RELEASE,
    ImplementationClassUIDNotification,
    ImplementationVersionNameNotification,
    MaximumLengthNotification,
)
from pynetdicom.service_class import StorageServiceClass, VerificationServiceClass
from pynetdicom.sop_class import uid_to_service_class
from pynetdicom.transport import AddressInformation, AssociationSocket, RequestHandler

from tui_pacs.net import status as st
from tui_pacs.net.dimse_wire import (
    A_ABORT_TYPE,
    A_ASSOCIATE_RQ_TYPE,
    A_RELEASE_RQ_TYPE,
    C_CANCEL_RQ,
    C_ECHO_RQ,
    C_FIND_RQ,
    C_STORE_RQ,
    KNOWN_PDU_TYPES,
    NO_DATA_SET,
    OTHER_REQUESTS,
    P_DATA_TF_TYPE,
    PDU_HEADER,
    PDV_HEADER,
    REASON_INVALID_PARAMETER,
    REASON_NOT_SPECIFIED,
    REASON_UNEXPECTED_PARAMETER,
    REASON_UNEXPECTED_PDU,
    REASON_UNRECOGNIZED_PDU,
    ProtocolError,
    decode_command,
    encode_response,
    p_data_pdus,
    status_details,
    ui_value,
    us_value,
)
from tui_pacs.net.find_scp import FIND_SOP_CLASSES, FindCall, find_responses, handle_find
from tui_pacs.net.mwl_scp import MWL_SOP_CLASS
from tui_pacs.net.scp import (
    AuthorizeCallable,
    InFlight,
    StoreCallable,
    echo_status,
    receive_store,
)

log = logging.getLogger(__name__)

#: Largest A-ASSOCIATE-RQ examined; a larger one (thousands of contexts) goes to pynetdicom.
PEEK_LIMIT = 256 * 1024
#: Largest command set accepted (a real one is ~200 bytes; hostile UIDs make it longer).
COMMAND_LIMIT = 1024 * 1024
#: How long to wait for the peer to close after our A-RELEASE-RP or A-ASSOCIATE-RJ (ARTIM).
ARTIM = 5.0
#: User information items the fast path knows; anything else goes to pynetdicom.
PLAIN_USER_ITEMS = (
    MaximumLengthNotification,
    ImplementationClassUIDNotification,
    ImplementationVersionNameNotification,
)



@dataclass(frozen=True)
class StoreServices:
    """What the fast path needs from the listener: the C-STORE/C-ECHO logic and what it takes."""

    store: StoreCallable
    inflight: InFlight
    authorize: AuthorizeCallable
    #: Abstract syntaxes an association may propose to be served here.
    abstract_syntaxes: frozenset[str]


class PeerGone(Exception):
    """The connection closed or failed under us (nothing more can be sent)."""


@functools.lru_cache(maxsize=512)
def _service_class(uid: str) -> type:
    return cast(type, uid_to_service_class(uid))


def _eligible(rq: A_ASSOCIATE_RQ, abstract_syntaxes: frozenset[str]) -> bool:
    """Whether an association request is only storage/verification with plain negotiation."""
    if rq.protocol_version != 0x0001:
        return False
    primitive = rq.to_primitive()
    contexts = primitive.presentation_context_definition_list
    if not contexts:
        return False
    if any(str(cx.abstract_syntax) not in abstract_syntaxes for cx in contexts):
        return False
    return all(isinstance(item, PLAIN_USER_ITEMS) for item in primitive.user_information)


class StoreAssociation(Association):
    """An acceptor association that serves storage-only associations itself.

    Created like pynetdicom's acceptor (same socket wrapper, same handlers); :meth:`run` peeks at
    the A-ASSOCIATE-RQ and either serves the association in this thread or runs pynetdicom's
    reactor unchanged.
    """

    def __init__(self, ae: Any, services: StoreServices) -> None:
        super().__init__(ae, "acceptor")
        self.services = services
        self.fast = False
        self._raw: socket.socket | None = None
        self._send_lock = threading.Lock()
        self._hint = 64 * 1024  # size of the last data set: the next buffer's first guess
        self._request_size = 0  # bytes of the A-ASSOCIATE-RQ peeked at
        #: The arguments of the listener's C-FIND handler when it is :func:`handle_find`.
        self._find_args: list[Any] | None = None
        #: An A-RELEASE-RQ is waiting in the socket (seen while a C-FIND was streaming).
        self._release_waiting = False

    # -- thread body -------------------------------------------------------------------------

    def run(self) -> None:
        sock = cast(AssociationSocket, self.dul.socket).socket
        if sock is None:
            return
        self._raw = sock
        self._find_args = self._bound_find()
        blocking = sock.gettimeout()
        try:
            decision = self._peek_request(sock)
        except (OSError, ValueError):
            decision = None  # closed under us (listener stopping)
        if decision is None:
            self._close()
            return
        if decision is False:
            # pynetdicom's own reactor, on the socket exactly as it would have had it, with its
            # own copy of the supported contexts (see contexts.cheap_to_copy).
            self.acceptor.supported_contexts = copy.deepcopy(self.acceptor.supported_contexts)
            with contextlib.suppress(OSError):
                sock.settimeout(blocking)
            self.run_reactor()
            return
        self.fast = True
        try:
            self._serve(sock, decision)
        except Exception:
            log.exception("store association from %s failed", self.requestor.address)
            self._abort_quietly(REASON_NOT_SPECIFIED)
        finally:
            self.is_established = False
            self._close()

    def _peek_request(self, sock: socket.socket) -> A_ASSOCIATE_RQ | Literal[False] | None:
        """Look at the A-ASSOCIATE-RQ without consuming it.

        Returns:
            The decoded request when this association is served here, False when pynetdicom
            serves it, None when no complete request came within the ACSE timeout (or the
            listener closed the connection): the connection is closed without a word, as
            pynetdicom does when nothing comes (a partial request would hold its reader).
        """
        timeout = self.acse_timeout or 30.0
        deadline = time.monotonic() + timeout
        seen = -1
        while not self._kill:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            # A short timeout so that a listener stopping (kill) is noticed; poll() inside,
            # so any descriptor number works (select() stops at 1024).
            sock.settimeout(min(left, 0.5))
            try:
                data = sock.recv(PEEK_LIMIT + 6, socket.MSG_PEEK)
            except TimeoutError:
                continue
            if not data:
                # Closed before a request (by the peer, or by Listener.stop): nothing to
                # answer, as in pynetdicom; starting its reactor now would only leave its DUL
                # thread (not a daemon) waiting for the ACSE timeout.
                return None
            if data[0] != A_ASSOCIATE_RQ_TYPE:
                return False
            if len(data) >= 6:
                _, length = PDU_HEADER.unpack_from(data)
                if length > PEEK_LIMIT:
                    return False
                if len(data) >= 6 + length:
                    try:
                        rq = A_ASSOCIATE_RQ()
                        rq.decode(data[: 6 + length])
                        self._request_size = 6 + length
                        return rq if _eligible(rq, self._servable()) else False
                    except Exception:
                        return False  # pynetdicom decides what a bad request gets
            if len(data) == seen:
                time.sleep(0.002)  # the rest of the request is on its way
            seen = len(data)
        return None

    def _bound_find(self) -> list[Any] | None:
        """The ``find, policy, authorize, mwl_find`` bound to :func:`handle_find`, if it is bound.

        C-FIND is served here only with the node's own handler, through the same
        :func:`find_responses`; any other handler keeps pynetdicom.
        """
        bound = self.get_handlers(evt.EVT_C_FIND)
        if isinstance(bound, tuple) and bound[0] is handle_find and bound[1]:
            return list(bound[1])
        return None

    def _servable(self) -> frozenset[str]:
        """Abstract syntaxes an association may propose to be served here."""
        syntaxes = self.services.abstract_syntaxes
        if self._find_args is None:
            return syntaxes
        find = set(FIND_SOP_CLASSES)
        if len(self._find_args) > 3 and self._find_args[3] is not None:
            find.add(MWL_SOP_CLASS)
        return syntaxes | find

    # -- sending -------------------------------------------------------------------------------

    def _send(self, data: bytes) -> None:
        sock = self._raw
        if sock is None:
            raise PeerGone("no connection")
        with self._send_lock:
            try:
                sock.sendall(data)
            except OSError as exc:
                raise PeerGone(str(exc)) from exc

    def _send_primitive(self, primitive: Any) -> None:
        """Stand-in for the DUL's ``send_pdu``: encode the primitive ACSE built and send it."""
        pdu: Any
        if isinstance(primitive, A_ASSOCIATE):
            accepted = primitive.result == 0x00
            pdu = A_ASSOCIATE_AC(primitive) if accepted else A_ASSOCIATE_RJ(primitive)
        elif isinstance(primitive, (A_ABORT, A_P_ABORT)):
            pdu = A_ABORT_RQ(primitive)
        elif isinstance(primitive, A_RELEASE):
            pdu = A_RELEASE_RP(primitive) if primitive.result else A_RELEASE_RQ(primitive)
        else:  # pragma: no cover - ACSE sends nothing else
            raise TypeError(f"unexpected primitive {type(primitive).__name__}")
        with contextlib.suppress(PeerGone):
            self._send(pdu.encode())

    def _abort_blocking(self, block: bool = True) -> None:
        """Send an A-ABORT (service user) and close, as pynetdicom's ``abort`` does.

        (pynetdicom's ACSE rebinds ``abort`` to this method or its non-blocking twin, which
        calls it: overriding it covers them all.)
        """
        if not self.fast:
            super()._abort_blocking(block)
            return
        with self._send_lock:
            if self._sent_abort or self.is_released:
                return
            self._sent_abort = True
        self.acse.send_abort(0x00)
        evt.trigger(self, evt.EVT_ABORTED, {})
        self._kill = True
        self._shutdown()

    def _abort_quietly(self, reason: int) -> None:
        """A-P-ABORT with ``reason`` (PS3.8 9.3.8), then the association is over."""
        with self._send_lock:
            if self._sent_abort or self.is_released or self.is_aborted:
                return
            self._sent_abort = True
        if self.is_established:
            self.acse.send_ap_abort(reason)
            evt.trigger(self, evt.EVT_ABORTED, {})
        self.is_aborted = True
        self.is_established = False

    def _peer_aborted(self) -> None:
        """The peer aborted or the connection dropped: an A-ABORT/A-P-ABORT indication."""
        with self._send_lock:
            if self._sent_abort or self.is_released or self.is_aborted:
                return
            self._sent_abort = True
        self.is_aborted = True
        self.is_established = False
        evt.trigger(self, evt.EVT_ABORTED, {})

    def _shutdown(self) -> None:
        sock = self._raw
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def _close(self) -> None:
        sock = self._raw
        self._raw = None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                sock.close()

    def _linger(self, sock: socket.socket) -> None:
        """After A-RELEASE-RP/A-ASSOCIATE-RJ let the peer close first, for at most ARTIM seconds."""
        with contextlib.suppress(OSError, ValueError):
            sock.settimeout(ARTIM)
            deadline = time.monotonic() + ARTIM
            while time.monotonic() < deadline and sock.recv(4096):
                pass

    # -- receiving -----------------------------------------------------------------------------

    def _read_into(self, sock: socket.socket, view: memoryview) -> None:
        while view:
            try:
                n = sock.recv_into(view)
            except TimeoutError:
                raise
            except OSError as exc:
                raise PeerGone(str(exc)) from exc
            if n == 0:
                raise PeerGone("connection closed")
            view = view[n:]

    def _pdv_item(self, sock: socket.socket, view: memoryview, left: int) -> tuple[int, int, int]:
        """Read the next PDV item header of a P-DATA-TF PDU with ``left`` bytes to go into the
        6-byte ``view``: its value's size, presentation context ID and message control header.

        Raises:
            ProtocolError: The item does not fit the PDU or is malformed (PS3.8 9.3.5.1).
        """
        if left < 6:
            raise ProtocolError(REASON_INVALID_PARAMETER, "PDV item cut short")
        self._read_into(sock, view)
        item_len, ctx, control = PDV_HEADER.unpack_from(view)
        if item_len < 2 or item_len + 4 > left or control & 0xFC:
            raise ProtocolError(REASON_INVALID_PARAMETER, "malformed PDV item")
        return item_len - 2, ctx, control

    def _read(self, sock: socket.socket, size: int) -> bytearray:
        buf = bytearray(size)
        self._read_into(sock, memoryview(buf))
        return buf

    # -- the association -----------------------------------------------------------------------

    def _serve(self, sock: socket.socket, rq: A_ASSOCIATE_RQ) -> None:
        sock.settimeout(self.network_timeout)
        # Consume the request we peeked at, then let pynetdicom's ACSE answer it.
        self._read(sock, self._request_size)
        self.dul.send_pdu = self._send_primitive  # type: ignore[method-assign]
        self.requestor.primitive = rq.to_primitive()
        evt.trigger(self, evt.EVT_REQUESTED, {})
        self.acse.negotiate_association()
        if not self.is_established:
            self._linger(sock)  # rejected: the requestor closes (PS3.8 9.1.4)
            return
        try:
            self._receive(sock)
        except TimeoutError:
            log.warning(
                "network timeout: aborting the association with %s (%s)",
                self.requestor.ae_title, self.requestor.address,
            )
            self.abort()
        except ProtocolError as exc:
            log.warning(
                "association with %s (%s): %s; aborting",
                self.requestor.ae_title, self.requestor.address, exc,
            )
            self._abort_quietly(exc.reason)
        except PeerGone:
            self._peer_aborted()

    def _receive(self, sock: socket.socket) -> None:
        """PDUs until release or abort; each complete DIMSE message is served as it arrives."""
        header = bytearray(6)
        header_view = memoryview(header)
        pdv_view = memoryview(bytearray(6))
        accepted = self._accepted_cx
        command = bytearray()
        command_ctx: int | None = None
        fields: dict[int, bytes] | None = None  # a decoded command waiting for its data set
        data: bytearray | None = None
        data_len = 0
        while not self._kill:
            self._read_into(sock, header_view)
            pdu_type, length = PDU_HEADER.unpack_from(header)
            if pdu_type == P_DATA_TF_TYPE:
                left = length
                while left > 0:
                    size, ctx, control = self._pdv_item(sock, pdv_view, left)
                    left -= size + 6
                    if ctx not in accepted:
                        raise ProtocolError(
                            REASON_INVALID_PARAMETER,
                            f"P-DATA on presentation context {ctx}, which is not accepted",
                        )
                    if command_ctx is not None and ctx != command_ctx:
                        raise ProtocolError(
                            REASON_UNEXPECTED_PARAMETER,
                            "presentation context changed inside a message",
                        )
                    if control & 0x01:  # command fragment
                        if fields is not None:
                            raise ProtocolError(
                                REASON_UNEXPECTED_PARAMETER,
                                "command fragment while a data set was expected",
                            )
                        if len(command) + size > COMMAND_LIMIT:
                            raise ProtocolError(REASON_INVALID_PARAMETER, "command set too long")
                        command_ctx = ctx
                        command += self._read(sock, size)
                        if not control & 0x02:
                            continue
                        fields = decode_command(command)
                        command = bytearray()
                        if us_value(fields, 0x0800) == NO_DATA_SET:
                            self._dispatch(ctx, fields, None)
                            fields, command_ctx = None, None
                        continue
                    # data set fragment
                    if fields is None:
                        raise ProtocolError(
                            REASON_UNEXPECTED_PARAMETER, "data set fragment without a command"
                        )
                    if data is None:
                        data = bytearray(max(self._hint, size))
                    elif data_len + size > len(data):
                        grown = bytearray(max(2 * len(data), data_len + size))
                        memoryview(grown)[:data_len] = memoryview(data)[:data_len]
                        data = grown
                    self._read_into(sock, memoryview(data)[data_len : data_len + size])
                    data_len += size
                    if control & 0x02:
                        self._hint = data_len
                        received = memoryview(data)[:data_len]
                        data, data_len = None, 0
                        self._dispatch(ctx, fields, received)
                        fields, command_ctx = None, None
            elif pdu_type == A_RELEASE_RQ_TYPE:
                if length != 4:
                    raise ProtocolError(REASON_INVALID_PARAMETER, "malformed A-RELEASE-RQ")
                self._read(sock, length)
                self.acse.send_release(is_response=True)
                self.is_released = True
                self.is_established = False
                evt.trigger(self, evt.EVT_RELEASED, {})
                self._linger(sock)
                return
            elif pdu_type == A_ABORT_TYPE:
                with contextlib.suppress(PeerGone, OSError):
                    if length <= 64:
                        self._read(sock, length)
                self._peer_aborted()
                return
            elif pdu_type in KNOWN_PDU_TYPES:
                raise ProtocolError(REASON_UNEXPECTED_PDU, f"unexpected PDU type 0x{pdu_type:02X}")
            else:
                raise ProtocolError(
                    REASON_UNRECOGNIZED_PDU, f"unrecognised PDU type 0x{pdu_type:02X}"
                )

    # -- DIMSE -------------------------------------------------------------------------------

    def _dispatch(self, ctx: int, fields: dict[int, bytes], data: memoryview | None) -> None:
        """Serve one complete DIMSE request and send its response."""
        command_field = cast(int, us_value(fields, 0x0100))
        message_id = us_value(fields, 0x0110)
        sop_class = ui_value(fields, 0x0002)
        requestor = self.requestor
        if command_field == C_CANCEL_RQ:
            return  # nothing here runs long enough to be cancelled
        if command_field & 0x8000:
            log.warning(
                "unexpected DIMSE response 0x%04X from %s; ignored",
                command_field, requestor.ae_title,
            )
            return
        if message_id is None:
            raise ProtocolError(REASON_INVALID_PARAMETER, "request without a Message ID")
        if command_field == C_STORE_RQ:
            if sop_class is None or not issubclass(_service_class(sop_class), StorageServiceClass):
                raise ProtocolError(
                    REASON_NOT_SPECIFIED, f"C-STORE of a SOP class we do not store: {sop_class!r}"
                )
            sop_instance = ui_value(fields, 0x1000)
            # Counted in flight until the response is out: Listener.stop aborts only after it.
            with self.services.inflight:
                status = receive_store(
                    self.services.store,
                    self.services.inflight,
                    self.services.authorize,
                    calling=requestor.ae_title,
                    address=requestor.address,
                    port=requestor.port,
                    sop_class_uid=sop_class,
                    sop_instance_uid=sop_instance or "",
                    transfer_syntax_uid=str(self._accepted_cx[ctx].transfer_syntax[0]),
                    dataset=lambda: data,
                )
                response = encode_response(0x8001, message_id, status, sop_class, sop_instance)
                self._respond(ctx, response)
            return
        elif command_field == C_FIND_RQ and self._find_args is not None and sop_class == str(
            self._accepted_cx[ctx].abstract_syntax
        ) and sop_class in self._servable():
            if data is None:
                raise ProtocolError(REASON_INVALID_PARAMETER, "C-FIND-RQ without an identifier")
            self._serve_find(ctx, message_id, sop_class, data)
            return
        elif command_field == C_ECHO_RQ:
            if sop_class is None or _service_class(sop_class) is not VerificationServiceClass:
                raise ProtocolError(REASON_NOT_SPECIFIED, f"C-ECHO of SOP class {sop_class!r}")
            status = echo_status(self.services.authorize, requestor.ae_title, requestor.address)
            response = encode_response(0x8030, message_id, status, sop_class, None)
        elif command_field in OTHER_REQUESTS:
            log.warning(
                "DIMSE request 0x%04X from %s on a storage association: unrecognized operation",
                command_field, requestor.ae_title,
            )
            response = encode_response(
                command_field | 0x8000, message_id, st.UNRECOGNIZED_OPERATION, sop_class, None
            )
        else:
            raise ProtocolError(
                REASON_INVALID_PARAMETER, f"unknown DIMSE command field 0x{command_field:04X}"
            )
        self._respond(ctx, response)

    def _respond(self, ctx: int, response: bytes) -> None:
        if not self.is_established:
            return  # aborted (listener stopping) while the request was handled
        self._send(p_data_pdus(ctx, response, self.requestor.maximum_length))

    # -- C-FIND ------------------------------------------------------------------------------

    def _serve_find(self, ctx: int, message_id: int, sop_class: str, data: memoryview) -> None:
        """Answer a C-FIND-RQ (PS3.4 C.4.1, K.4.1): Pending responses with an identifier each,
        then Success, or the Cancel / failure status :func:`find_responses` yields.

        Each response is sent before the next match is fetched (``sendall`` blocks while the
        peer's window is full), and the socket is polled for a C-CANCEL between them.
        """
        syntax = UID(str(self._accepted_cx[ctx].transfer_syntax[0]))
        requestor = self.requestor
        max_length = requestor.maximum_length
        raw = bytes(data)

        def identifier() -> Dataset:
            ds = decode_data_set(
                BytesIO(raw), syntax.is_implicit_VR, syntax.is_little_endian, syntax.is_deflated
            )
            ds.set_original_encoding(syntax.is_implicit_VR, syntax.is_little_endian)
            return ds

        call = FindCall(
            sop_class_uid=sop_class,
            calling_ae_title=requestor.ae_title,
            address=requestor.address,
            transfer_syntax=str(syntax),
            identifier=identifier,
            extended=None,  # an association with extended negotiation is pynetdicom's
            is_cancelled=lambda: self._cancel_arrived(message_id),
        )
        responses = find_responses(call, *cast(list[Any], self._find_args))
        try:
            while self.is_established:
                try:
                    status, match = next(responses)
                except StopIteration:
                    status, match = st.SUCCESS, None
                except (PeerGone, ProtocolError):
                    raise  # from the C-CANCEL check: the association ends
                except Exception as exc:
                    log.exception("C-FIND from %s: the query failed", requestor.ae_title)
                    status, match = st.failure(st.UNABLE_TO_PROCESS, f"query failed: {exc}"), None
                encoded = None
                if match is not None:
                    encoded = encode_data_set(
                        match, syntax.is_implicit_VR, syntax.is_little_endian, syntax.is_deflated
                    )
                    if not encoded:
                        log.error("C-FIND from %s: a match cannot be encoded", requestor.ae_title)
                        status = st.failure(st.UNABLE_TO_PROCESS, "a match cannot be encoded")
                code, details = _status_parts(status)
                if not encoded:
                    # Success, Cancel or a failure: the last response of the operation.
                    command = encode_response(
                        0x8020, message_id, code, sop_class, None, details=details
                    )
                    self._respond(ctx, command)
                    return
                command = encode_response(0x8020, message_id, code, sop_class, None, data_set=True)
                self._send(
                    p_data_pdus(ctx, command, max_length)
                    + p_data_pdus(ctx, encoded, max_length, is_command=False)
                )
        finally:
            responses.close()
            self._release_waiting = False

    def _cancel_arrived(self, message_id: int) -> bool:
        """Whether the peer sent a C-CANCEL-RQ for ``message_id`` (PS3.7 9.3.2.3); never blocks
        unless a PDU has started to arrive.

        Only a C-CANCEL may come while a C-FIND runs (asynchronous operations are not
        negotiated here): an A-ABORT ends the association, an A-RELEASE-RQ is left for the
        receive loop once the C-FIND is over, anything else is a protocol error.
        """
        sock = self._raw
        if sock is None or self._release_waiting:
            return False
        poller = select.poll()
        poller.register(sock, select.POLLIN)
        if not poller.poll(0):
            return False
        try:
            head = sock.recv(6, socket.MSG_PEEK)
        except OSError as exc:
            raise PeerGone(str(exc)) from exc
        if not head:
            raise PeerGone("connection closed")
        if head[0] == A_RELEASE_RQ_TYPE:
            self._release_waiting = True
            return False
        header = self._read(sock, 6)
        pdu_type, length = PDU_HEADER.unpack_from(header)
        if pdu_type == A_ABORT_TYPE:
            with contextlib.suppress(PeerGone, OSError):
                if length <= 64:
                    self._read(sock, length)
            raise PeerGone("the peer aborted")
        if pdu_type != P_DATA_TF_TYPE:
            raise ProtocolError(REASON_UNEXPECTED_PDU, f"PDU type 0x{pdu_type:02X} during a C-FIND")
        command = bytearray()
        while True:
            left = length
            last = False
            while left > 0:
                size, ctx, control = self._pdv_item(sock, memoryview(bytearray(6)), left)
                if ctx not in self._accepted_cx or not control & 0x01:
                    raise ProtocolError(
                        REASON_UNEXPECTED_PARAMETER, "only a C-CANCEL may come during a C-FIND"
                    )
                left -= size + 6
                if len(command) + size + 2 > COMMAND_LIMIT:
                    raise ProtocolError(REASON_INVALID_PARAMETER, "command set too long")
                command += self._read(sock, size)
                last = bool(control & 0x02)
            if last:
                break
            pdu_type, length = PDU_HEADER.unpack_from(self._read(sock, 6))
            if pdu_type != P_DATA_TF_TYPE:
                raise ProtocolError(REASON_UNEXPECTED_PDU, "command set cut by another PDU")
        fields = decode_command(command)
        if us_value(fields, 0x0100) != C_CANCEL_RQ:
            raise ProtocolError(
                REASON_UNEXPECTED_PARAMETER, "only a C-CANCEL may come during a C-FIND"
            )
        if us_value(fields, 0x0120) != message_id:
            log.warning("C-CANCEL for message %s, not the C-FIND running; ignored",
                        us_value(fields, 0x0120))
            return False
        return True


def _status_parts(status: int | Dataset) -> tuple[int, bytes]:
    """A yielded status as its code and its encoded further elements (Error Comment ...)."""
    if isinstance(status, Dataset):
        offending = status.get("OffendingElement") or []
        if not isinstance(offending, list | tuple):
            offending = [offending]
        return int(status.Status), status_details(
            offending=[int(tag) for tag in offending],
            error_comment=status.get("ErrorComment"),
            error_id=status.get("ErrorID"),
        )
    return int(status), b""


def numeric_address(address: tuple[Any, ...]) -> AddressInformation:
    """``AddressInformation`` of a numeric socket address, without its resolver.

    pynetdicom's constructor passes every address through ``getaddrinfo``, which sorts its
    answers by RFC 6724 (reading /etc/gai.conf, probing routes): about 0.3 ms per call, twice
    per association, for addresses that an accepted socket already gives in numeric form.
    """
    info = AddressInformation.__new__(AddressInformation)
    info._addr = str(address[0])
    info.port = int(address[1])
    info.flowinfo = int(address[2]) if len(address) > 2 else 0
    info.scope_id = int(address[3]) if len(address) > 3 else 0
    return info


class StoreRequestHandler(RequestHandler):
    """pynetdicom's request handler, creating :class:`StoreAssociation` acceptors."""

    @property
    def local(self) -> AddressInformation:
        return numeric_address(self.server.server_address)

    @property
    def remote(self) -> AddressInformation:
        return numeric_address(self.client_address)

    def _create_association(self) -> Association:
        services = cast(StoreServices, self.server.store_services)  # type: ignore[attr-defined]
        assoc = StoreAssociation(self.ae, services)
        assoc._server = self.server
        timestamp = datetime.strftime(datetime.now(), "%Y%m%d%H%M%S")
        assoc.name = f"AcceptorThread@{timestamp}"
        sock = AssociationSocket(assoc, client_socket=self.request)
        assoc.set_socket(sock)
        assoc.acceptor.maximum_length = self.ae.maximum_pdu_size
        assoc.acceptor.ae_title = self.server.ae_title
        assoc.acceptor.address_info = self.local
        assoc.acceptor.implementation_class_uid = self.ae.implementation_class_uid
        assoc.acceptor.implementation_version_name = self.ae.implementation_version_name
        # The listener's own list, shared: the acceptor's negotiation only reads it. Associations
        # left to pynetdicom get their copy in StoreAssociation.run (as pynetdicom does).
        assoc.acceptor.supported_contexts = self.server.contexts
        assoc.requestor.address_info = self.remote
        bound: dict[Any, Any] = self.server._handlers
        for event, handlers in bound.items():
            if event.is_intervention and handlers:
                assoc.bind(event, *handlers)
            elif isinstance(event, evt.NotificationEvent):
                for handler in handlers:
                    assoc.bind(event, handler[0], handler[1])
        return assoc
