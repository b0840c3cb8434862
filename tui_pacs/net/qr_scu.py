"""Query/Retrieve as SCU: C-FIND, C-MOVE and C-GET against a remote node, as generators.

Each call opens its own association, yields results or progress as responses arrive and honours
a ``should_stop`` callable: a watcher thread polls it and sends a C-CANCEL (PS3.7 9.3.2.3) as
soon as it turns true, so a cancel works even while the peer is busy between responses. A C-GET
receives its instances over the same association and hands each to a ``store`` callable (the
node's ingestor), answering success only once that callable has returned.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Literal, cast

from pydicom.dataset import Dataset
from pydicom.uid import (
    JPEG2000,
    UID,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGExtended12Bit,
    JPEGLosslessSV1,
    JPEGLSLossless,
    JPEGLSNearLossless,
    RLELossless,
)
from pynetdicom import AE, StoragePresentationContexts, build_context, build_role, evt
from pynetdicom.association import Association
from pynetdicom.dimse_primitives import C_STORE
from pynetdicom.presentation import PresentationContext
from pynetdicom.sop_class import (  # type: ignore[attr-defined]  # generated at import
    PatientRootQueryRetrieveInformationModelFind,
    PatientRootQueryRetrieveInformationModelGet,
    PatientRootQueryRetrieveInformationModelMove,
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelGet,
    StudyRootQueryRetrieveInformationModelMove,
)

from tui_pacs.errors import NetworkError
from tui_pacs.model import RemoteNode, RetrieveProgress
from tui_pacs.net import status as st
from tui_pacs.net.scp import StoreCallable, StoreRequest, store_status
from tui_pacs.net.scu import association_failure

log = logging.getLogger(__name__)

QueryRoot = Literal["patient", "study"]

FIND_MODELS = {
    "patient": PatientRootQueryRetrieveInformationModelFind,
    "study": StudyRootQueryRetrieveInformationModelFind,
}
MOVE_MODELS = {
    "patient": PatientRootQueryRetrieveInformationModelMove,
    "study": StudyRootQueryRetrieveInformationModelMove,
}
GET_MODELS = {
    "patient": PatientRootQueryRetrieveInformationModelGet,
    "study": StudyRootQueryRetrieveInformationModelGet,
}

#: PS3.8 9.3.2.2: an association holds at most 128 presentation contexts.
MAX_CONTEXTS = 128
UNCOMPRESSED = [str(ExplicitVRLittleEndian), str(ImplicitVRLittleEndian)]
#: Extra contexts proposed per known SOP class of a C-GET, preferred first, so instances archived
#: compressed by the peer come to us as they are instead of being decompressed for us.
COMPRESSED_PREFERENCE = [
    str(JPEGLosslessSV1),
    str(JPEG2000Lossless),
    str(JPEGBaseline8Bit),
    str(RLELossless),
    str(JPEGLSLossless),
    str(JPEG2000),
    str(JPEGExtended12Bit),
    str(JPEGLSNearLossless),
    str(DeflatedExplicitVRLittleEndian),
    str(ExplicitVRBigEndian),
]
#: Seconds to wait for the peer's final response after a C-CANCEL before aborting.
CANCEL_GRACE = 10.0
#: How often the watcher asks ``should_stop``.
POLL_INTERVAL = 0.2


def _never() -> bool:
    return False


def _associate(
    own_ae_title: str,
    node: RemoteNode,
    contexts: Sequence[PresentationContext],
    *,
    timeout: float,
    response_timeout: float | None,
    ext_neg: list | None = None,
    evt_handlers: list | None = None,
    what: str,
) -> Association:
    ae = AE(ae_title=own_ae_title)
    ae.acse_timeout = timeout
    ae.network_timeout = max(timeout, response_timeout or 0, 30)
    ae.dimse_timeout = response_timeout
    ae.connection_timeout = timeout
    ae.maximum_pdu_size = 0
    ae.requested_contexts = list(contexts)
    assoc = ae.associate(
        node.host,
        node.port,
        ae_title=node.ae_title,
        ext_neg=ext_neg,
        evt_handlers=evt_handlers,
    )
    if not assoc.is_established:
        raise NetworkError(association_failure(assoc, own_ae_title, node), f"{what} failed")
    # Small PDUs (C-CANCEL, C-STORE responses of a C-GET) must not wait for Nagle.
    with contextlib.suppress(AttributeError, OSError):
        cast(Any, assoc).dul.socket.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return assoc


def _model_context(assoc: Association, model: str, node: RemoteNode, what: str) -> None:
    accepted = [cx for cx in assoc.accepted_contexts if cx.abstract_syntax == model]
    if not accepted:
        assoc.release()
        raise NetworkError(
            f"{node.ae_title} does not support the {what} ({UID(model).name})",
            f"{what.split()[-1]} failed",
        )


class _CancelWatch:
    """Polls ``should_stop`` in a thread and sends one C-CANCEL when it turns true.

    If the peer has not ended the operation ``CANCEL_GRACE`` seconds after the C-CANCEL, the
    association is aborted so the caller is never stuck on a peer that ignores cancels.
    """

    def __init__(
        self, assoc: Association, msg_id: int, model: str, should_stop: Callable[[], bool]
    ) -> None:
        self.assoc = assoc
        self.msg_id = msg_id
        self.model = model
        self.should_stop = should_stop
        self.cancelled = False
        #: The peer sent its final response: the association is released, not aborted.
        self.finished = False
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="qr-cancel-watch", daemon=True)

    def __enter__(self) -> _CancelWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()

    def check(self) -> bool:
        """Ask ``should_stop`` now (between responses); send the C-CANCEL if it says so."""
        if not self.cancelled and self._ask():
            self._cancel()
        return self.cancelled

    def _ask(self) -> bool:
        try:
            return bool(self.should_stop())
        except Exception:  # a broken callback must not kill the transfer
            log.exception("should_stop raised; not cancelling")
            return False

    def _cancel(self) -> None:
        self.cancelled = True
        try:
            if self.assoc.is_established:
                self.assoc.send_c_cancel(self.msg_id, query_model=self.model)
                log.info("sent C-CANCEL for message %d", self.msg_id)
        except Exception as exc:  # the association may be going down at the same moment
            log.warning("could not send C-CANCEL: %s", exc)

    def _run(self) -> None:
        while not self._done.wait(POLL_INTERVAL):
            if self.cancelled or self._ask():
                if not self.cancelled:
                    self._cancel()
                if not self._done.wait(CANCEL_GRACE) and self.assoc.is_established:
                    log.warning("peer ignored the C-CANCEL for %.0f s; aborting", CANCEL_GRACE)
                    self.assoc.abort()
                return


def _status_of(rsp: Dataset | None) -> int | None:
    if rsp is None or "Status" not in rsp:
        return None
    return int(rsp.Status)


@contextlib.contextmanager
def _operation(
    assoc: Association, model: str, node: RemoteNode, what: str, should_stop: Callable[[], bool]
) -> Iterator[_CancelWatch]:
    """Check the peer accepted ``model``, watch for a cancel, and close the association after.

    The association is released if the caller set ``finished`` on the watch, else aborted (the
    caller stopped half-way or the peer failed).
    """
    watch: _CancelWatch | None = None
    try:
        _model_context(assoc, model, node, what)
        with _CancelWatch(assoc, 1, model, should_stop) as watch:
            yield watch
    finally:
        _close(assoc, watch is not None and watch.finished)


def find(
    own_ae_title: str,
    node: RemoteNode,
    identifier: Dataset,
    *,
    root: QueryRoot = "study",
    should_stop: Callable[[], bool] = _never,
    timeout: float = 30.0,
    response_timeout: float = 120.0,
) -> Iterator[Dataset]:
    """C-FIND ``identifier`` on ``node`` and yield each matching identifier (PS3.4 C.4.1).

    Args:
        own_ae_title: Our calling AE title.
        node: The peer to query.
        identifier: The query, with QueryRetrieveLevel and the keys to match and return.
        root: ``"patient"`` or ``"study"`` root information model.
        should_stop: When it returns true, a C-CANCEL is sent and no more results are yielded.
        timeout: Seconds to connect and to negotiate the association.
        response_timeout: Seconds to wait for each response.

    Raises:
        NetworkError: No association, the model is not supported, the peer answered with a
            failure status or stopped answering.
    """
    model = FIND_MODELS[root]
    assoc = _associate(
        own_ae_title,
        node,
        [build_context(model, UNCOMPRESSED)],
        timeout=timeout,
        response_timeout=response_timeout,
        what="Query",
    )
    with _operation(assoc, model, node, f"{root} root C-FIND", should_stop) as watch:
        for rsp, result in assoc.send_c_find(identifier, model, msg_id=1):
            status = _status_of(rsp)
            if status is None:
                if watch.cancelled:
                    watch.finished = True
                    return
                raise NetworkError(
                    f"{node.ae_title} stopped answering the C-FIND (association aborted "
                    "or timed out)",
                    "Query failed",
                )
            if st.is_pending(status):
                if watch.check():
                    continue  # drain until the peer confirms the cancel
                if result is not None:
                    yield result
                continue
            watch.finished = True
            if status == st.SUCCESS or status == st.CANCEL or watch.cancelled:
                return
            if st.is_warning(status):
                log.warning("C-FIND on %s ended with %s", node.ae_title, st.describe(status))
                return
            comment = str(rsp.get("ErrorComment", "") or "")
            raise NetworkError(
                f"{node.ae_title} refused the query: {st.describe(status)}"
                + (f" ({comment})" if comment else ""),
                "Query failed",
                status=status,
            )


def _close(assoc: Association, finished: bool) -> None:
    """Release after a completed operation; abort one left half-way (the caller stopped early)."""
    if not assoc.is_established:
        return
    if finished:
        assoc.release()
    else:
        assoc.abort()


def _progress(rsp: Dataset, result: Dataset | None, status: int, done: bool) -> RetrieveProgress:
    def count(keyword: str) -> int | None:
        value = rsp.get(keyword)
        return int(value) if value is not None and value != "" else None

    failed_uids: tuple[str, ...] = ()
    if result is not None and "FailedSOPInstanceUIDList" in result:
        value = result.FailedSOPInstanceUIDList
        if isinstance(value, str):
            failed_uids = tuple(v for v in value.split("\\") if v)
        elif value:
            failed_uids = tuple(str(v) for v in value)
    return RetrieveProgress(
        status=status,
        remaining=count("NumberOfRemainingSuboperations"),
        completed=count("NumberOfCompletedSuboperations") or 0,
        failed=count("NumberOfFailedSuboperations") or 0,
        warning=count("NumberOfWarningSuboperations") or 0,
        failed_uids=failed_uids,
        done=done,
    )


def _retrieve_responses(
    responses: Iterator[tuple[Dataset, Dataset | None]],
    watch: _CancelWatch,
    node: RemoteNode,
    what: str,
) -> Iterator[RetrieveProgress]:
    """The progress of a C-MOVE or C-GET (``what``), one item a response, the last one done.

    Marks ``watch`` finished with the final response; asks it for a cancel between responses.
    """
    last: RetrieveProgress | None = None
    for rsp, result in responses:
        status = _status_of(rsp)
        if status is None:
            if watch.cancelled:
                # The peer ignored the cancel and we aborted: report it as cancelled.
                base = last or RetrieveProgress(st.CANCEL, None, 0, 0, 0)
                watch.finished = True
                yield RetrieveProgress(
                    st.CANCEL, base.remaining, base.completed, base.failed, base.warning, done=True
                )
                return
            raise NetworkError(
                f"{node.ae_title} stopped answering the {what} (association aborted or timed out)",
                f"{what} failed",
            )
        done = not st.is_pending(status)
        last = _progress(rsp, result, status, done)
        watch.finished = done
        yield last
        if done:
            return
        watch.check()
    raise NetworkError(
        f"{node.ae_title} ended the {what} without a final response", f"{what} failed"
    )


def move(
    own_ae_title: str,
    node: RemoteNode,
    identifier: Dataset,
    destination: str,
    *,
    root: QueryRoot = "study",
    should_stop: Callable[[], bool] = _never,
    timeout: float = 30.0,
    response_timeout: float = 600.0,
) -> Iterator[RetrieveProgress]:
    """C-MOVE ``identifier`` from ``node`` to ``destination`` and yield its progress (PS3.4 C.4.2).

    The instances travel over a separate association from the peer to ``destination`` (our own
    AE title, for a retrieve: they arrive at the node's listener). The last item has
    ``done=True`` and the final status; a failure status is yielded, not raised, so the caller
    can record it with the counts and the failed UIDs.

    Raises:
        NetworkError: No association, the model is not supported, or the peer stopped answering.
    """
    model = MOVE_MODELS[root]
    assoc = _associate(
        own_ae_title,
        node,
        [build_context(model, UNCOMPRESSED)],
        timeout=timeout,
        response_timeout=response_timeout,
        what="Retrieve",
    )
    with _operation(assoc, model, node, f"{root} root C-MOVE", should_stop) as watch:
        responses = assoc.send_c_move(identifier, destination, model, msg_id=1)
        yield from _retrieve_responses(responses, watch, node, "C-MOVE")


def get_contexts(
    sop_classes: Sequence[str] | None, root: QueryRoot = "study"
) -> list[PresentationContext]:
    """Presentation contexts of a C-GET: the model, then storage contexts for what may come back.

    With the SOP classes known (the study's SOPClassesInStudy), each gets an uncompressed context
    and, as far as the 128-context limit allows, one context per common compressed syntax. Not
    knowing them, the 120 common storage classes of pynetdicom are proposed uncompressed (the
    peer converts what it holds compressed, or reports those sub-operations failed).
    """
    contexts = [build_context(GET_MODELS[root], UNCOMPRESSED)]
    budget = MAX_CONTEXTS - len(contexts)
    classes = list(dict.fromkeys(c for c in (sop_classes or ()) if c))
    if not classes:
        for cx in StoragePresentationContexts[:budget]:
            contexts.append(build_context(str(cx.abstract_syntax), UNCOMPRESSED))
        return contexts
    classes = classes[:budget]
    per_class = max(1, budget // len(classes))
    for sop_class in classes:
        contexts.append(build_context(sop_class, UNCOMPRESSED))
        for ts in COMPRESSED_PREFERENCE[: per_class - 1]:
            contexts.append(build_context(sop_class, [ts]))
    return contexts


def get(
    own_ae_title: str,
    node: RemoteNode,
    identifier: Dataset,
    store: StoreCallable,
    *,
    sop_classes: Sequence[str] | None = None,
    root: QueryRoot = "study",
    should_stop: Callable[[], bool] = _never,
    timeout: float = 30.0,
    response_timeout: float = 600.0,
) -> Iterator[RetrieveProgress]:
    """C-GET ``identifier`` from ``node``, storing what arrives, and yield progress (PS3.4 C.4.3).

    Args:
        store: Called with a :class:`StoreRequest` for every instance the peer sends; it must
            return once the instance is durable and indexed (``Ingestor.store_request``): only
            then is the C-STORE answered with success.
        sop_classes: Storage SOP classes to accept (the study's SOPClassesInStudy from an
            earlier C-FIND); a broad default set when unknown.

    Raises:
        NetworkError: No association, the model is not supported, or the peer stopped answering.
    """
    model = GET_MODELS[root]
    contexts = get_contexts(sop_classes, root)
    storage_classes = list(dict.fromkeys(str(cx.abstract_syntax) for cx in contexts[1:]))
    roles = [build_role(uid, scp_role=True) for uid in storage_classes]

    def handle_store(event: evt.Event) -> int:
        request = cast(C_STORE, event.request)
        data = request.DataSet
        if data is None:
            return st.ERROR_CANNOT_UNDERSTAND
        acceptor = event.assoc.acceptor
        req = StoreRequest(
            sop_class_uid=str(request.AffectedSOPClassUID or ""),
            sop_instance_uid=str(request.AffectedSOPInstanceUID or ""),
            transfer_syntax_uid=str(event.context.transfer_syntax),
            dataset=memoryview(data.getvalue()),
            calling_ae_title=node.ae_title,
            peer_address=f"{acceptor.address}:{acceptor.port}",
        )
        return store_status(store, req)

    assoc = _associate(
        own_ae_title,
        node,
        contexts,
        timeout=timeout,
        response_timeout=response_timeout,
        ext_neg=roles,
        evt_handlers=[(evt.EVT_C_STORE, handle_store)],
        what="Retrieve",
    )
    with _operation(assoc, model, node, f"{root} root C-GET", should_stop) as watch:
        responses = assoc.send_c_get(identifier, model, msg_id=1)
        yield from _retrieve_responses(responses, watch, node, "C-GET")
