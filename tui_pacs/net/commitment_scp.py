"""The Storage Commitment Push Model SCP (PS3.4 J.3): N-ACTION in, N-EVENT-REPORT out.

The N-ACTION handler checks the request (action type 1, a Transaction UID, a non-empty Referenced
SOP Sequence addressed to the well-known SOP Instance) and hands it to the services layer, which
records it durably before the handler returns (so the success response only goes back for a
request a restart cannot lose), checks the instances afterwards and reports with :func:`deliver`:

- on the same association when the requester keeps it open (it waits for the report there);
- else on a new association to the requester, found in the node registry by its AE title, on
  which we propose the Storage Commitment Push Model SOP class in the SCP role (SCP/SCU Role
  Selection, PS3.7 D.3.3.4), as PS3.4 J.3.3 asks.

A requester that releases its association right after the N-ACTION response tells us it wants
the report on a new one; :func:`deliver` waits a moment for that release before it decides.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom import AE, build_role, evt
from pynetdicom.presentation import PresentationContext, build_context
from pynetdicom.sop_class import StorageCommitmentPushModel  # type: ignore[attr-defined]

from tui_pacs.model import CommitmentItem, DimseService, RemoteNode
from tui_pacs.net import status as st
from tui_pacs.net.scp import AuthorizeCallable, allow_all, refuse_n_request

log = logging.getLogger(__name__)

#: Storage Commitment Push Model SOP Class (PS3.4 J.3.1).
COMMITMENT_SOP_CLASS = str(StorageCommitmentPushModel)
#: Its well-known SOP Instance (PS3.4 J.3.5).
COMMITMENT_SOP_INSTANCE = "1.2.840.10008.1.20.1.1"
#: Action Type ID of "Request Storage Commitment" (PS3.4 J.3.2.1).
REQUEST_COMMITMENT = 1
#: Event Type IDs of the report (PS3.4 J.3.3.1): all committed / some failed.
ALL_COMMITTED = 1
SOME_FAILED = 2
#: How long the requester has, after the N-ACTION response, to release its association if it
#: wants the report on a new one.
RELEASE_GRACE = 1.0
_TRANSFER_SYNTAXES = [str(ExplicitVRLittleEndian), str(ImplicitVRLittleEndian)]


def commitment_contexts() -> list[PresentationContext]:
    """Presentation contexts of the SCP; either role may be negotiated (the requester may ask to
    receive the report on this association)."""
    cx = build_context(COMMITMENT_SOP_CLASS, _TRANSFER_SYNTAXES)
    cx.scu_role = True
    cx.scp_role = True
    return [cx]


@dataclass(frozen=True, slots=True)
class CommitmentRequest:
    """A storage commitment request as received.

    Attributes:
        transaction_uid: Transaction UID (0008,1195).
        items: ``(Referenced SOP Class UID, Referenced SOP Instance UID)`` of each instance.
        calling_ae_title: The requester.
        association: The association it came on (to report on it if still open).
    """

    transaction_uid: str
    items: tuple[tuple[str, str], ...]
    calling_ae_title: str
    association: Any = None


#: Takes the request over (records it, checks and reports later); raising refuses it (0x0110).
RequestCallable = Callable[[CommitmentRequest], None]


def parse_request(action: Dataset) -> tuple[str, tuple[tuple[str, str], ...]]:
    """The Transaction UID and the referenced instances of an N-ACTION Action Information.

    Raises:
        ValueError: Either is missing or malformed.
    """
    transaction = str(action.get("TransactionUID", "") or "").strip()
    if not transaction:
        raise ValueError("Transaction UID is missing")
    items: list[tuple[str, str]] = []
    for item in action.get("ReferencedSOPSequence") or []:
        sop_class = str(item.get("ReferencedSOPClassUID", "") or "").strip()
        sop_uid = str(item.get("ReferencedSOPInstanceUID", "") or "").strip()
        if not sop_class or not sop_uid:
            raise ValueError("a Referenced SOP Sequence item lacks its class or instance UID")
        items.append((sop_class, sop_uid))
    if not items:
        raise ValueError("Referenced SOP Sequence is missing or empty")
    return transaction, tuple(items)


def handle_n_action(
    event: evt.Event, request_commitment: RequestCallable, authorize: AuthorizeCallable = allow_all
) -> tuple[int | Dataset, Dataset | None]:
    """EVT_N_ACTION: accept a storage commitment request (PS3.4 J.3.2)."""
    calling = event.assoc.requestor.ae_title
    request: Any = event.request
    sop_class = str(request.RequestedSOPClassUID or "")
    refusal = refuse_n_request(
        event, sop_class, COMMITMENT_SOP_CLASS, "N-ACTION", DimseService.COMMIT, authorize
    )
    if refusal is not None:
        return refusal, None
    if str(request.RequestedSOPInstanceUID or "") != COMMITMENT_SOP_INSTANCE:
        return st.failure(
            st.NO_SUCH_SOP_INSTANCE, f"use the well-known instance {COMMITMENT_SOP_INSTANCE}"
        ), None
    if request.ActionTypeID != REQUEST_COMMITMENT:
        return st.failure(st.NO_SUCH_ACTION_TYPE, f"action type {request.ActionTypeID}"), None
    try:
        action = event.action_information
        transaction, items = parse_request(action if action is not None else Dataset())
    except Exception as exc:
        log.warning("storage commitment from %s refused: %s", calling, exc)
        return st.failure(st.INVALID_ARGUMENT_VALUE, str(exc)), None
    try:
        request_commitment(CommitmentRequest(transaction, items, calling, event.assoc))
    except Exception as exc:
        log.error("storage commitment from %s failed: %s", calling, exc)
        return st.failure(st.PROCESSING_FAILURE, str(exc)), None
    log.info(
        "storage commitment %s from %s: %d instance(s) to check", transaction, calling, len(items)
    )
    return st.SUCCESS, None


def commitment_handlers(
    request_commitment: RequestCallable, authorize: AuthorizeCallable = allow_all
) -> list[tuple]:
    """Event bindings of the storage commitment SCP for the listener's ``extra_handlers``."""
    return [(evt.EVT_N_ACTION, handle_n_action, [request_commitment, authorize])]


def event_report(
    transaction_uid: str, items: Sequence[CommitmentItem], retrieve_ae_title: str = ""
) -> tuple[int, Dataset]:
    """The Event Type ID and Event Information of the report (PS3.4 J.3.3.1)."""
    ds = Dataset()
    ds.TransactionUID = transaction_uid
    if retrieve_ae_title:
        ds.RetrieveAETitle = retrieve_ae_title
    committed, failed = [], []
    for item in items:
        ref = Dataset()
        ref.ReferencedSOPClassUID = item.sop_class_uid
        ref.ReferencedSOPInstanceUID = item.sop_instance_uid
        if item.failure_reason:
            ref.FailureReason = item.failure_reason
            failed.append(ref)
        else:
            committed.append(ref)
    if committed:
        ds.ReferencedSOPSequence = committed
    if failed:
        ds.FailedSOPSequence = failed
    return (SOME_FAILED if failed else ALL_COMMITTED), ds


def wait_for_release(association: Any, grace: float = RELEASE_GRACE) -> bool:
    """True when the association is still established after ``grace`` seconds."""
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if not association.is_established:
            return False
        time.sleep(0.02)
    return bool(association.is_established)


def report_on_association(association: Any, event_type: int, info: Dataset) -> bool:
    """Send the N-EVENT-REPORT on the requester's own association; True when it answered
    Success. Call it from a thread other than the association's (its reactor must pause)."""
    try:
        rsp, _reply = association.send_n_event_report(
            info, event_type, COMMITMENT_SOP_CLASS, COMMITMENT_SOP_INSTANCE
        )
    except Exception as exc:
        log.warning("storage commitment report on the open association failed: %s", exc)
        return False
    status = rsp.get("Status") if rsp else None
    if status != st.SUCCESS:
        log.warning("storage commitment report on the open association: %s", st.describe(status))
    return status is not None


def report_to_node(
    own_ae_title: str, node: RemoteNode, event_type: int, info: Dataset, timeout: float = 30.0
) -> bool:
    """Open an association to the requester and send the N-EVENT-REPORT there (SCP role).

    A peer that refuses the role selection is asked once more without it (some SCUs accept
    the report in their default role only). True when the peer answered.
    """
    for with_role in (True, False):
        ae = AE(ae_title=own_ae_title)
        ae.acse_timeout = timeout
        ae.dimse_timeout = timeout
        ae.network_timeout = timeout
        ae.add_requested_context(COMMITMENT_SOP_CLASS, _TRANSFER_SYNTAXES)
        ext: list[Any] = (
            [build_role(COMMITMENT_SOP_CLASS, scu_role=False, scp_role=True)] if with_role else []
        )
        assoc = ae.associate(node.host, node.port, ae_title=node.ae_title, ext_neg=ext)
        if not assoc.is_established:
            log.warning(
                "storage commitment report: no association with %s@%s:%d%s",
                node.ae_title,
                node.host,
                node.port,
                " (role selection)" if with_role else "",
            )
            continue
        try:
            if not any(
                cx.abstract_syntax == COMMITMENT_SOP_CLASS for cx in assoc.accepted_contexts
            ):
                continue
            rsp, _reply = assoc.send_n_event_report(
                info, event_type, COMMITMENT_SOP_CLASS, COMMITMENT_SOP_INSTANCE
            )
            status = rsp.get("Status") if rsp else None
            if status is None:
                log.warning("storage commitment report to %s: no response", node.ae_title)
                return False
            if status != st.SUCCESS:
                log.warning(
                    "storage commitment report to %s: %s", node.ae_title, st.describe(status)
                )
            return True
        finally:
            if assoc.is_established:
                assoc.release()
    return False


def deliver(
    association: Any,
    own_ae_title: str,
    find_node: Callable[[str], RemoteNode | None],
    calling_ae_title: str,
    event_type: int,
    info: Dataset,
    grace: float = RELEASE_GRACE,
) -> str:
    """Send the report the way the requester asks (see the module docstring).

    Returns:
        How it went: "same-association", "new-association", or "undelivered: <why>".
    """
    if association is not None and wait_for_release(association, grace):
        if report_on_association(association, event_type, info):
            return "same-association"
        log.info("storage commitment: falling back to a new association to %s", calling_ae_title)
    node = find_node(calling_ae_title)
    if node is None:
        return f"undelivered: {calling_ae_title} is not in the node registry"
    if report_to_node(own_ae_title, node, event_type, info):
        return "new-association"
    return f"undelivered: {node.ae_title}@{node.host}:{node.port} did not take the report"
