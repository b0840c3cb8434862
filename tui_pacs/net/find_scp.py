"""The C-FIND SCP of the Patient Root and Study Root Query/Retrieve information models.

The handler is a plain function taking its dependency, a ``find`` callable from the services
layer, as an extra argument (the pynetdicom qrscp way). :func:`find_responses` maps what
``find`` raises to the C-FIND failure statuses of PS3.4 C.4.1.1.4, streams the matches as Pending
responses, checks for a C-CANCEL between them and stops with Cancel (0xFE00) when the result cap
is reached, as Orthanc does. Two receivers call it: pynetdicom's (:func:`handle_find`, paced to
what pynetdicom has actually sent by ``_pace``, so a long result set neither piles up in memory
nor hides a C-CANCEL behind queued responses) and the store acceptor, which serves plain C-FIND
associations itself. SOP Class Extended Negotiation (PS3.4 C.5.1) offers relational queries and
combined date-time matching.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from pydicom.dataset import Dataset
from pydicom.uid import (
    UID,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
)
from pynetdicom import _config as pynetdicom_config
from pynetdicom import evt
from pynetdicom.presentation import PresentationContext, build_context
from pynetdicom.sop_class import (  # type: ignore[attr-defined]
    PatientRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelFind,
)

from tui_pacs.errors import IdentifierMismatchError, PacsError, QueryError, StoreError
from tui_pacs.model import DimseService
from tui_pacs.net import status as st
from tui_pacs.net.mwl_scp import MWL_MODEL, MWL_SOP_CLASS
from tui_pacs.net.scp import AuthorizeCallable, allow_all, refused_caller

log = logging.getLogger(__name__)

#: The C-FIND SOP classes served, and the information model of each (the values of
#: ``tui_pacs.store.retrieve.InformationModel``).
FIND_SOP_CLASSES: dict[str, str] = {
    str(PatientRootQueryRetrieveInformationModelFind): "patient-root",
    str(StudyRootQueryRetrieveInformationModelFind): "study-root",
}

#: Identifiers are small: the uncompressed transfer syntaxes and deflate are all that is needed.
#: pynetdicom picks the first of ours the requestor proposed: Explicit VR Little Endian leads, as
#: for storage (net/contexts.py).
FIND_TRANSFER_SYNTAXES: list[str] = [
    str(ExplicitVRLittleEndian),
    str(ImplicitVRLittleEndian),
    str(DeflatedExplicitVRLittleEndian),
    str(ExplicitVRBigEndian),
]


def find_contexts() -> list[PresentationContext]:
    """Presentation contexts of the C-FIND SCP."""
    return [build_context(uid, FIND_TRANSFER_SYNTAXES) for uid in FIND_SOP_CLASSES]


@dataclass(frozen=True, slots=True)
class FindRequest:
    """One C-FIND request as the services layer needs it.

    Attributes:
        identifier: The decoded request identifier.
        information_model: "patient-root", "study-root" or "modality-worklist".
        calling_ae_title: Who asks.
        implicit_vr: The negotiated transfer syntax is implicit VR.
        little_endian: The negotiated transfer syntax is little endian.
        relational: Relational queries were agreed in extended negotiation.
        combined_datetime: Combined date-time matching was agreed in extended negotiation.
    """

    identifier: Dataset
    information_model: str
    calling_ae_title: str
    implicit_vr: bool
    little_endian: bool
    relational: bool = False
    combined_datetime: bool = False


class FindMatches(Protocol):
    """What ``find`` returns: the response identifiers, streamed.

    Attributes:
        warning: Some optional keys could not be matched (Pending 0xFF01 instead of 0xFF00).
        limit: The result cap applied (0: none).
        truncated: The cap cut the matches short (known once iteration has ended).
    """

    warning: bool
    limit: int
    truncated: bool

    def __iter__(self) -> Iterator[Dataset]: ...

    def close(self) -> None: ...


FindCallable = Callable[[FindRequest], FindMatches]


@dataclass(frozen=True, slots=True)
class ExtendedNegotiationPolicy:
    """Which C-FIND extended behaviours (PS3.4 C.5.1.1) the SCP agrees to when asked."""

    relational: bool = True
    combined_datetime: bool = True


def agreed_options(requested: bytes | None, policy: ExtendedNegotiationPolicy) -> bytes:
    """The Service Class Application Information we answer to a C-FIND extended negotiation.

    Byte 1 relational-queries, byte 2 combined date-time matching, byte 3 fuzzy semantic matching
    of person names (never), byte 4 timezone query adjustment (never), byte 5 enhanced
    multi-frame image conversion (never).
    """
    if not requested:
        return b""
    agreed = bytearray(len(requested))
    if requested[0:1] == b"\x01" and policy.relational:
        agreed[0] = 1
    if len(requested) > 1 and requested[1] == 1 and policy.combined_datetime:
        agreed[1] = 1
    return bytes(agreed)


def handle_sop_extended(event: evt.Event, policy: ExtendedNegotiationPolicy) -> dict[str, bytes]:
    """EVT_SOP_EXTENDED: answer C-FIND SOP Class Extended Negotiation items.

    Items for other SOP classes are left unanswered (pynetdicom then sends no reply for them),
    which tells the requestor their extended behaviour is not supported.
    """
    answers: dict[str, bytes] = {}
    for uid, data in (getattr(event, "app_info", None) or {}).items():
        if str(uid) in FIND_SOP_CLASSES:
            answers[str(uid)] = agreed_options(bytes(data), policy)
    return answers


def find_handlers(
    find: FindCallable,
    policy: ExtendedNegotiationPolicy | None = None,
    authorize: AuthorizeCallable = allow_all,
    mwl_find: FindCallable | None = None,
) -> list[tuple]:
    """Event bindings for the listener's ``extra_handlers``.

    Args:
        mwl_find: Answers Modality Worklist queries (pynetdicom binds one C-FIND handler, so
            this one serves them too); None: the worklist SOP class is refused.
    """
    policy = policy or ExtendedNegotiationPolicy()
    return [
        (evt.EVT_C_FIND, handle_find, [find, policy, authorize, mwl_find]),
        (evt.EVT_SOP_EXTENDED, handle_sop_extended, [policy]),
    ]


@dataclass(frozen=True, slots=True)
class FindCall:
    """One C-FIND-RQ as it came off the wire, from either receiver (pynetdicom or the acceptor).

    Attributes:
        sop_class_uid: Affected SOP Class UID of the request.
        calling_ae_title: Who asks.
        address: The caller's IP address (for the log).
        transfer_syntax: The presentation context's transfer syntax.
        identifier: Decodes the request identifier; raises when it cannot be decoded.
        extended: The requestor's SOP Class Extended Negotiation item for this SOP class.
        is_cancelled: Whether a C-CANCEL for this request has arrived (asked between matches).
    """

    sop_class_uid: str
    calling_ae_title: str
    address: str
    transfer_syntax: str
    identifier: Callable[[], Dataset]
    extended: bytes | None
    is_cancelled: Callable[[], bool]


def handle_find(
    event: evt.Event,
    find: FindCallable,
    policy: ExtendedNegotiationPolicy,
    authorize: AuthorizeCallable = allow_all,
    mwl_find: FindCallable | None = None,
) -> Iterator[tuple[int | Dataset, Dataset | None]]:
    """EVT_C_FIND: answer a Patient Root or Study Root query (PS3.4 C.4.1), or a Modality
    Worklist query (PS3.4 K.4.1) with ``mwl_find``; see :func:`find_responses`.

    The store acceptor (net/store_acceptor.py) serves plain C-FIND associations itself, with the
    ``find``, ``policy``, ``authorize`` and ``mwl_find`` bound here.
    """
    assoc = event.assoc
    sop_class = str(event.request.AffectedSOPClassUID)
    requested = (assoc.requestor.sop_class_extended or {}).get(UID(sop_class))

    def is_cancelled() -> bool:
        _pace(assoc)
        return bool(event.is_cancelled)

    call = FindCall(
        sop_class_uid=sop_class,
        calling_ae_title=assoc.requestor.ae_title,
        address=assoc.requestor.address,
        transfer_syntax=str(event.context.transfer_syntax),
        identifier=lambda: event.identifier,
        extended=bytes(requested) if requested else None,
        is_cancelled=is_cancelled,
    )
    yield from find_responses(call, find, policy, authorize, mwl_find)


def find_responses(
    call: FindCall,
    find: FindCallable,
    policy: ExtendedNegotiationPolicy,
    authorize: AuthorizeCallable = allow_all,
    mwl_find: FindCallable | None = None,
) -> Generator[tuple[int | Dataset, Dataset | None], None, None]:
    """The responses to one C-FIND request.

    Yields:
        ``(status, identifier)`` pairs: Pending 0xFF00/0xFF01 with each match, then nothing
        (the receiver sends the final Success), or a Cancel / failure status with no identifier.
    """
    calling = call.calling_ae_title
    sop_class = call.sop_class_uid
    model = FIND_SOP_CLASSES.get(sop_class)
    service = DimseService.FIND
    if sop_class == MWL_SOP_CLASS and mwl_find is not None:
        model, service, find = MWL_MODEL, DimseService.MWL, mwl_find
    if model is None:
        yield st.failure(st.UNABLE_TO_PROCESS, f"SOP class {sop_class} is not a C-FIND model"), None
        return
    if refused_caller(authorize, calling, call.address, service):
        yield st.REFUSED_NOT_AUTHORIZED, None
        return
    try:
        identifier = call.identifier()
    except Exception as exc:
        log.warning("C-FIND from %s: identifier cannot be decoded: %s", calling, exc)
        yield st.failure(st.UNABLE_TO_PROCESS, "identifier cannot be decoded"), None
        return
    transfer_syntax = call.transfer_syntax
    # Worklist queries get no extended behaviour (handle_sop_extended never agreed to any).
    agreed = agreed_options(call.extended if model != MWL_MODEL else None, policy)
    request = FindRequest(
        identifier=identifier,
        information_model=model,
        calling_ae_title=calling,
        implicit_vr=transfer_syntax == ImplicitVRLittleEndian,
        little_endian=transfer_syntax != ExplicitVRBigEndian,
        relational=agreed[0:1] == b"\x01",
        combined_datetime=agreed[1:2] == b"\x01",
    )
    try:
        matches = find(request)
    except IdentifierMismatchError as exc:
        log.warning("C-FIND from %s refused: %s", calling, exc)
        yield st.failure(
            st.IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS, str(exc), offending=exc.offending_tags
        ), None
        return
    except QueryError as exc:
        log.warning("C-FIND from %s: unable to process: %s", calling, exc)
        yield st.failure(st.UNABLE_TO_PROCESS, str(exc), offending=exc.offending_tags), None
        return
    except PacsError as exc:
        log.error("C-FIND from %s failed: %s", calling, exc)
        yield st.failure(st.UNABLE_TO_PROCESS, str(exc)), None
        return
    except Exception as exc:
        log.exception("C-FIND from %s: unexpected failure", calling)
        yield st.failure(st.UNABLE_TO_PROCESS, f"query failed: {exc}"), None
        return
    try:
        yield from _stream(call.is_cancelled, matches, calling)
    finally:
        matches.close()


#: Responses queued for pynetdicom's reactor before the next match waits for it to send them.
MAX_QUEUED_RESPONSES = 32
#: Seconds the stream waits for the reactor to read what the peer sent (a C-CANCEL) before it
#: goes on.
PEER_READ_WAIT = 1.0
_PACE_SLEEP = 0.0005


def _pace(assoc: Any) -> None:
    """Hold the next match until pynetdicom's reactor has caught up.

    pynetdicom's reactor (``DULServiceProvider.run_reactor``) sends every queued PDU before it
    next reads the socket, and ``send_msg`` only queues. A generator that outruns the reactor
    would queue the whole result set in memory and leave a C-CANCEL (PS3.7 9.1.2.1.6) unread
    until all of it had gone out. So: at most ``MAX_QUEUED_RESPONSES`` in the queue, and when
    the peer has sent something, no new match until the reactor has read and handled it.
    """
    dul = getattr(assoc, "dul", None)
    queue = getattr(dul, "to_provider_queue", None)
    sock = getattr(dul, "socket", None)
    if dul is None or queue is None or sock is None:
        return
    while queue.qsize() > MAX_QUEUED_RESPONSES and assoc.is_established:
        time.sleep(_PACE_SLEEP)
    if not sock.ready:
        return
    deadline = time.monotonic() + PEER_READ_WAIT
    while assoc.is_established and time.monotonic() < deadline:
        if not sock.ready and dul.event_queue.empty():
            return
        time.sleep(_PACE_SLEEP)


def _stream(
    is_cancelled: Callable[[], bool], matches: FindMatches, calling: str
) -> Iterator[tuple[int | Dataset, Dataset | None]]:
    pending = st.PENDING_WARNING if matches.warning else st.PENDING
    count = 0
    iterator = iter(matches)
    while True:
        if is_cancelled():
            log.info("C-FIND from %s cancelled after %d match(es)", calling, count)
            yield st.CANCEL, None
            return
        try:
            identifier = next(iterator)
        except StopIteration:
            break
        except StoreError as exc:
            log.error("C-FIND from %s failed after %d match(es): %s", calling, count, exc)
            yield st.failure(st.REFUSED_OUT_OF_RESOURCES, str(exc)), None
            return
        except Exception as exc:
            log.exception("C-FIND from %s failed after %d match(es)", calling, count)
            yield st.failure(st.UNABLE_TO_PROCESS, f"query failed: {exc}"), None
            return
        count += 1
        yield pending, identifier
    if matches.truncated:
        log.warning(
            "C-FIND from %s: more than %d matches; stopped at the limit ([query] max_results)",
            calling,
            matches.limit,
        )
        yield st.failure(st.CANCEL, f"too many matches: stopped after {matches.limit}"), None
        return
    log.info("C-FIND from %s: %d match(es)", calling, count)


def quiet_identifier_logging(debug: bool) -> None:
    """Have pynetdicom format request/response identifiers for its log only when debugging.

    pynetdicom renders every C-FIND response identifier as text for a DEBUG log line even when
    DEBUG is off, which costs about a fifth of the time spent per match. Its documented
    configuration switches this off.
    """
    pynetdicom_config.LOG_RESPONSE_IDENTIFIERS = debug
    pynetdicom_config.LOG_REQUEST_IDENTIFIERS = debug
